"""Distillation losses: from a frozen copy of the original model (legacy KD) and in-place from the maximum subnet.

Legacy formulas (NNCF 2.x ``KnowledgeDistillationLoss``): ``mse``: ``scale * MSE(teacher, student)``; ``softmax``:
``scale * T^2 * CE(softmax(teacher / T), log_softmax(student / T))`` averaged over samples. Outputs may be nested
(tuples, lists, dicts); matching tensors are compared pairwise and summed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nncf_bootstrapnas.config import ConfigError

KD_TYPES = ("mse", "softmax")
_PATH = "bootstrapNAS.training.compression"


def flatten_tensors(obj: Any) -> list[torch.Tensor]:
    """Tensors of a nested output in a deterministic order (dicts by insertion order)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, Mapping):
        return [t for v in obj.values() for t in flatten_tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in flatten_tensors(v)]
    if hasattr(obj, "logits") and isinstance(obj.logits, torch.Tensor):  # e.g. model output dataclasses
        return [obj.logits]
    return []


def soft_cross_entropy(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * E[-sum_c p_teacher log p_student]`` over every position; class axis 1 (N, C, ...)."""
    log_p = F.log_softmax(student / temperature, dim=1)
    q = F.softmax(teacher / temperature, dim=1)
    return -(q * log_p).sum(dim=1).mean() * temperature * temperature


def inplace_distillation_loss(student: Any, teacher: Any, temperature: float) -> torch.Tensor:
    """KL(teacher || student) with temperature; the teacher (maximum subnet) output must already be detached.

    KL and soft cross-entropy differ by the teacher's entropy, a constant for the student; KL is used so that the loss
    is 0 when the student matches its teacher. Outputs with fewer than 2 dimensions fall back to MSE.
    """
    total: torch.Tensor | None = None
    for s, t in zip(flatten_tensors(student), flatten_tensors(teacher)):
        if not s.is_floating_point():
            continue
        if s.dim() >= 2:
            log_p = F.log_softmax(s / temperature, dim=1)
            log_q = F.log_softmax(t / temperature, dim=1)
            term = (log_q.exp() * (log_q - log_p)).sum(dim=1).mean() * temperature * temperature
        else:
            term = F.mse_loss(s, t)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("in-place distillation found no floating-point output tensors to distil")
    return total


def make_kd_fn(kind: str, scale: float, temperature: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if kind == "mse":
        return lambda teacher, student: scale * F.mse_loss(student, teacher)
    if kind == "softmax":

        def softmax_kd(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
            if student.dim() != 2:  # legacy: softmax KD only for (N, classes) outputs
                return student.new_zeros(())
            return scale * soft_cross_entropy(student, teacher, temperature)

        return softmax_kd
    raise ConfigError(f"{_PATH}.type", f"{kind!r} is not one of {', '.join(KD_TYPES)}", kind, KD_TYPES)


@dataclass(frozen=True)
class KDSettings:
    kind: str = "mse"
    scale: float = 1.0
    temperature: float = 1.0

    @classmethod
    def from_config(cls, section: Any) -> KDSettings | None:
        """Parse ``training.compression``: a list of ``{"algorithm": ...}`` entries (legacy) or one such object.

        Returns None when no knowledge distillation is configured.
        """
        if section is None or section == {} or section == []:
            return None
        entries = section if isinstance(section, list) else [section]
        kd: Mapping[str, Any] = {}
        for i, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                raise ConfigError(f"{_PATH}[{i}]", f"expected an object, got {entry!r}", entry)
            algo = entry.get("algorithm")
            if algo != "knowledge_distillation":
                reason = (
                    f"{algo!r} is not allowed inside the training section; allowed: knowledge_distillation "
                    "(quantization goes to the top-level compression list)"
                )
                raise ConfigError(f"{_PATH}[{i}].algorithm", reason, algo, ["knowledge_distillation"])
            kd = entry
        kind = kd.get("type", "mse")
        if kind not in KD_TYPES:
            raise ConfigError(f"{_PATH}.type", f"{kind!r} is not one of {', '.join(KD_TYPES)}", kind, KD_TYPES)
        scale, temperature = kd.get("scale", 1.0), kd.get("temperature", 1.0)
        for name, value in (("scale", scale), ("temperature", temperature)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{_PATH}.{name}", f"{value!r} must be a positive number", value)
        return cls(kind, float(scale), float(temperature))

    def to_json(self) -> dict[str, Any]:
        return {
            "algorithm": "knowledge_distillation",
            "type": self.kind,
            "scale": self.scale,
            "temperature": self.temperature,
        }


class FrozenTeacher:
    """A frozen, eval-mode copy of the original model (not a submodule: it stays out of state_dict and DDP).

    Eval mode (unlike legacy, which left the teacher in train mode) keeps the teacher deterministic and stateless, so
    resuming does not need its BN statistics. The last output is cached so a sandwich step runs the teacher once.
    """

    def __init__(self, model: nn.Module, settings: KDSettings) -> None:
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.settings = settings
        self.kd_fn = make_kd_fn(settings.kind, settings.scale, settings.temperature)
        self._cache_inputs: list[tuple[torch.Tensor, int]] | None = None
        self._cache_out: Any = None

    def _same_inputs(self, tensors: list[torch.Tensor]) -> bool:
        # Identity, not id(): the cache holds the inputs alive, so a new batch can never alias the cached one.
        cached = self._cache_inputs
        return (
            cached is not None
            and len(cached) == len(tensors)
            and all(a is b and a._version == v for (a, v), b in zip(cached, tensors))
        )

    @torch.no_grad()
    def outputs(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        tensors = flatten_tensors(list(args) + list(kwargs.values()))
        if not self._same_inputs(tensors):
            if tensors:
                self.model.to(tensors[0].device)
            self._cache_out = self.model(*args, **kwargs)
            self._cache_inputs = [(t, t._version) for t in tensors]
        return self._cache_out

    def loss(self, student_out: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> torch.Tensor:
        teacher_out = self.outputs(args, kwargs)
        total: torch.Tensor | None = None
        for s, t in zip(flatten_tensors(student_out), flatten_tensors(teacher_out)):
            if not s.is_floating_point() or not s.requires_grad:  # legacy: distil the differentiable outputs only
                continue
            term = self.kd_fn(t, s)
            total = term if total is None else total + term
        if total is None:
            return torch.zeros((), device=flatten_tensors(student_out)[0].device)
        return total

    def clear(self) -> None:
        self._cache_inputs, self._cache_out = None, None
