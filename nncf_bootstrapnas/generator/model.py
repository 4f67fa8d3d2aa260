"""The architecture generator network: constraint value -> per-variable choice logits -> subnet config (argmax).

Input features of a normalised constraint ``t`` in [0, 1] (0 = minimum subnet's cost, 1 = maximum's): ``t``, ``t^2``,
``sqrt(t)`` and, optionally, ``noise_dim`` prior-noise inputs (SGNAS feeds a random prior; here the noise is zero at
inference, so generation is deterministic). State is plain data: a ``state_dict`` and JSON meta.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nncf_bootstrapnas.config.constraints import parse_budget
from nncf_bootstrapnas.utils.io import atomic_write, atomic_write_text, dumps_json

STATE_FORMAT = "nncf_bootstrapnas.generator/1"


class GeneratorError(ValueError):
    """A constraint value or state the generator cannot use."""


class ArchitectureGenerator(nn.Module):
    """``generator(constraint_value) -> subnet config``; ``logits(t)`` is the differentiable part used in training."""

    def __init__(
        self,
        space: Any,
        constraint: str,
        cost_lo: float,
        cost_hi: float,
        hidden_dim: int = 64,
        noise_dim: int = 0,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if hidden_dim < 1 or noise_dim < 0:
            raise GeneratorError(
                f"generator: hidden_dim must be >= 1 (got {hidden_dim}), noise_dim >= 0 (got {noise_dim})"
            )
        if not cost_hi > cost_lo:
            raise GeneratorError(f"generator: the {constraint} range of the space is empty ({cost_lo} .. {cost_hi})")
        self.space = space
        self.constraint = constraint
        self.cost_lo, self.cost_hi = float(cost_lo), float(cost_hi)
        self.hidden_dim, self.noise_dim = int(hidden_dim), int(noise_dim)
        self.sizes = [len(v.choices) for v in space.variables]
        self.net = nn.Sequential(
            nn.Linear(3 + noise_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, sum(self.sizes)),
        )
        self.meta: dict[str, Any] = dict(meta or {})

    # ---- differentiable part ------------------------------------------------------------------------------------------
    def normalise(self, value: float) -> float:
        return (value - self.cost_lo) / (self.cost_hi - self.cost_lo)

    def logits(self, t: torch.Tensor, noise: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Per-variable logits ``(B, C_v)`` for normalised constraints ``t`` of shape ``(B,)``."""
        t = t.reshape(-1, 1).to(torch.float32)
        feats = [t, t * t, torch.sqrt(t.clamp_min(0.0))]
        if self.noise_dim:
            feats.append(noise if noise is not None else torch.zeros(t.shape[0], self.noise_dim))
        return list(torch.split(self.net(torch.cat(feats, dim=1)), self.sizes, dim=1))

    # ---- generation ---------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_value(self, value: float | int | str) -> np.ndarray:
        """Argmax choice indices for one constraint value (deterministic: no noise, no sampling)."""
        v = parse_budget(value, self.constraint)
        if v < self.cost_lo:
            raise GeneratorError(
                f"{self.constraint}={v:g} is below the minimum subnet's {self.constraint} ({self.cost_lo:g}); "
                f"allowed: {self.cost_lo:g} .. {self.cost_hi:g}"
            )
        t = min(self.normalise(v), 1.0)
        return np.array([int(lg.argmax(dim=1)[0]) for lg in self.logits(torch.tensor([t]))], dtype=int)

    def forward(self, value: float | int | str) -> dict[str, dict[str, int]]:  # type: ignore[override]
        """A valid subnet config of the space for the constraint value (e.g. ``40e6`` or ``"macs=40e6"``)."""
        return self.space.validate(self.space.decode(self.encode_value(value)))

    # ---- state --------------------------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """``{"format", "meta", "space", "state_dict"}``: JSON meta and a tensor state dict (``torch.save``-able with
        ``weights_only=True``); ``to_json()`` gives the same with lists instead of tensors."""
        return {
            "format": STATE_FORMAT,
            "meta": {
                "constraint": self.constraint,
                "cost_lo": self.cost_lo,
                "cost_hi": self.cost_hi,
                "hidden_dim": self.hidden_dim,
                "noise_dim": self.noise_dim,
                **copy.deepcopy(self.meta),
            },
            "space": self.space.to_json(),
            "state_dict": {k: v.detach().clone() for k, v in self.state_dict().items()},
        }

    def to_json(self) -> dict[str, Any]:
        state = self.get_state()
        state["state_dict"] = {k: v.tolist() for k, v in state["state_dict"].items()}
        return state

    @classmethod
    def from_state(cls, space: Any, state: Mapping[str, Any]) -> ArchitectureGenerator:
        """Rebuild from ``get_state()``/``to_json()``; ``space`` must equal the one the generator was trained on."""
        if state.get("format") != STATE_FORMAT:
            raise GeneratorError(f"generator state: format {state.get('format')!r} is not {STATE_FORMAT!r}")
        theirs, ours = state["space"], space.to_json()
        if theirs != ours:
            t = {v["dim"] + "/" + v["key"]: v["choices"] for v in theirs["variables"]}
            o = {v["dim"] + "/" + v["key"]: v["choices"] for v in ours["variables"]}
            diff = [k for k in sorted(set(t) | set(o)) if t.get(k) != o.get(k)][:5] or ["fixed values"]
            raise GeneratorError(f"generator state does not match this search space: differs at {diff}")
        meta = dict(state["meta"])
        keys = ("constraint", "cost_lo", "cost_hi", "hidden_dim", "noise_dim")
        gen = cls(space, *(meta.pop(k) for k in keys), meta=meta)
        sd = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in state["state_dict"].items()}
        gen.load_state_dict(sd)
        return gen.eval()

    def save(self, path: str | Path) -> Path:
        """``*.json``: plain JSON (weights as lists); anything else: ``torch.save(get_state())``."""
        if Path(path).suffix == ".json":
            return atomic_write_text(path, dumps_json(self.to_json(), indent=None))
        return atomic_write(path, lambda f: torch.save(self.get_state(), f))

    @classmethod
    def load(cls, path: str | Path, space: Any) -> ArchitectureGenerator:
        path = Path(path)
        if path.suffix == ".json":
            return cls.from_state(space, json.loads(path.read_text()))
        return cls.from_state(space, torch.load(path, map_location="cpu", weights_only=True))

    def extra_repr(self) -> str:
        return f"constraint={self.constraint!r}, range={self.cost_lo:g}..{self.cost_hi:g}, variables={len(self.sizes)}"


def gumbel_hard(logits: list[torch.Tensor], tau: float, generator: torch.Generator) -> list[torch.Tensor]:
    """Straight-through Gumbel-softmax: hard one-hot forward, softmax(tau) gradient backward (seeded noise)."""
    out = []
    for lg in logits:
        u = torch.rand(lg.shape, generator=generator).clamp(1e-10, 1.0 - 1e-10)
        soft = torch.softmax((lg - torch.log(-torch.log(u))) / tau, dim=1)
        hard = torch.zeros_like(soft).scatter_(1, soft.argmax(dim=1, keepdim=True), 1.0)
        out.append(hard - soft.detach() + soft)
    return out


def log_prob(logits: list[torch.Tensor], hard: list[torch.Tensor]) -> torch.Tensor:
    """``log p(a)`` of the sampled choices under the categorical distributions (for REINFORCE)."""
    return sum((torch.log_softmax(lg, dim=1) * h.detach()).sum(dim=1) for lg, h in zip(logits, hard))  # type: ignore[return-value]


__all__ = ["ArchitectureGenerator", "GeneratorError", "STATE_FORMAT", "gumbel_hard", "log_prob"]
