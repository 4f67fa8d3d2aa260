"""Helpers of the supernet artifact and training checkpoints: plain data, RNG states, compatibility checks.

Everything a checkpoint holds is plain data (dicts, lists, numbers, strings, tensors), so ``torch.load(path,
weights_only=True)`` reads it; files are written atomically (``utils.io.atomic_write``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nncf_bootstrapnas.models.ref import describe_mismatch
from nncf_bootstrapnas.utils.io import atomic_write, json_safe

LAST = "supernet_last.pth"
BEST = "supernet_best.pth"


class CheckpointError(RuntimeError):
    """A supernet artifact or checkpoint that cannot be read or does not fit the model / config it is loaded into."""


def plain(obj: Any) -> Any:
    """Plain JSON data only (``utils.io.json_safe``: enum members such as NNCF's quantization schemes become plain
    strings), so ``torch.load(weights_only=True)`` reads every checkpoint."""
    return json_safe(obj)


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` through ``utils.io.atomic_write``: a reader (or a crash) never sees a partial file."""
    return atomic_write(path, lambda f: torch.save(obj, f))


# ---- RNG ----------------------------------------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    out: dict[str, Any] = {
        "python": {"version": version, "state": list(state), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: Mapping[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    nps = state["numpy"]
    keys = nps["keys"].numpy().astype(np.uint32)
    np.random.set_state((nps["kind"], keys, nps["pos"], nps["has_gauss"], nps["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def rank_rng(states: Sequence[Mapping[str, Any]] | None, rank: int) -> Mapping[str, Any] | None:
    """This rank's saved RNG state (rank 0's when the checkpoint came from fewer ranks)."""
    if not states:
        return None
    return states[rank] if rank < len(states) else states[0]


# ---- compatibility checks -----------------------------------------------------------------------------------------------
def _listing(items: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def check_search_space(saved_space: Mapping[str, Any], supernet: nn.Module, where: str = "checkpoint") -> None:
    """Raise CheckpointError naming the variables whose choices differ (another elasticity config)."""
    saved = {f"{v['dim']}/{v['key']}": list(v["choices"]) for v in saved_space["variables"]}
    current = {v.name: list(v.choices) for v in supernet.search_space.variables}
    problems = [f"{n}: only in the {where}" for n in sorted(set(saved) - set(current))]
    problems += [f"{n}: only in the model's search space" for n in sorted(set(current) - set(saved))]
    problems += [
        f"{n}: {where} choices {saved[n]} vs model {current[n]}"
        for n in sorted(set(saved) & set(current))
        if saved[n] != current[n]
    ]
    if problems:
        raise CheckpointError(
            f"the {where} was made with a different elasticity config ({len(problems)} difference(s)): "
            + _listing(problems)
        )


def check_state_dict(state: Mapping[str, torch.Tensor], model: nn.Module, where: str = "checkpoint") -> None:
    """Raise CheckpointError listing missing / unexpected keys and shape mismatches (another model)."""
    problem = describe_mismatch(state, model, where)
    if problem is not None:
        raise CheckpointError(f"the {where} does not fit this model (another architecture?); {problem}")


def load_optimizer_state(state: Mapping[str, Any] | None, optimizer: torch.optim.Optimizer | None) -> None:
    if optimizer is None or state is None:
        return
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"the checkpoint's optimizer state does not fit this optimizer: {exc}") from exc
