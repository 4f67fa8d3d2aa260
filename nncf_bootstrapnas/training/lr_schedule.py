"""Learning-rate schedules of progressive shrinking, as pure functions of (epoch, batch) so that resuming is exact.

Two legacy modes (NNCF 2.x ``GlobalLRScheduler`` / ``StageLRScheduler``):

* global: ``lr_schedule.params.base_lr`` is set -> linear warm-up from ``warmup_lr`` over ``warmup_epochs``, then a cosine
  from ``base_lr`` to 0 over ``num_epochs`` (default: the total number of training epochs), stepped per iteration
  (our additions: ``type`` ``constant`` keeps ``base_lr``; ``multistep`` multiplies it by ``gamma`` at each epoch in
  ``milestones``);
* stage: stage descriptors carry ``init_lr`` -> every stage restarts a cosine from ``init_lr`` over ``epochs_lr`` epochs
  (default: the stage's epochs).

Unlike the legacy classes nothing here accumulates state: the rate is recomputed from the scheduler's counters, so a
checkpoint needs only those counters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from nncf_bootstrapnas.config import ConfigError

DEFAULT_STAGE_LR = 3.5e-6  # legacy DEFAULT_STAGE_LR_RATE, used for stages without init_lr in stage mode
DEFAULT_WARMUP_LR = 3.4e-4  # legacy default of lr_schedule.params.warmup_lr
LR_TYPES = ("cosine", "multistep", "constant")
_PATH = "bootstrapNAS.training.lr_schedule"


def cosine_lr(init_lr: float, t_cur: float, t_total: float) -> float:
    """Half-cosine from ``init_lr`` at ``t_cur=0`` to 0 at ``t_total`` (clamped there, not periodic)."""
    if t_total <= 0:
        return init_lr
    t = min(max(t_cur, 0.0), t_total)
    return 0.5 * init_lr * (1.0 + math.cos(math.pi * t / t_total))


def warmup_lr(init_lr: float, warmup_from: float, t_cur: float, t_total: float) -> float:
    """Linear warm-up, legacy formula: the first step already moves one increment away from ``warmup_from``."""
    if t_total <= 0:
        return init_lr
    return (t_cur + 1) / t_total * (init_lr - warmup_from) + warmup_from


@dataclass(frozen=True)
class GlobalLRSchedule:
    """Warm-up then one schedule over the whole training (legacy ``lr_schedule`` section)."""

    base_lr: float
    num_epochs: float
    warmup_epochs: float = 0.0
    warmup_lr: float = DEFAULT_WARMUP_LR
    kind: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1

    def lr(self, epoch: int, batch: int, steps_per_epoch: int) -> float:
        if epoch < self.warmup_epochs:
            return warmup_lr(
                self.base_lr, self.warmup_lr, epoch * steps_per_epoch + batch, self.warmup_epochs * steps_per_epoch
            )
        if self.kind == "constant":
            return self.base_lr
        if self.kind == "multistep":
            return self.base_lr * self.gamma ** sum(epoch >= m for m in self.milestones)
        t_cur = (epoch - self.warmup_epochs) * steps_per_epoch + batch
        return cosine_lr(self.base_lr, t_cur, self.num_epochs * steps_per_epoch)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "base_lr": self.base_lr,
            "num_epochs": self.num_epochs,
            "warmup_epochs": self.warmup_epochs,
            "warmup_lr": self.warmup_lr,
            "milestones": list(self.milestones),
            "gamma": self.gamma,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GlobalLRSchedule:
        return cls(
            float(data["base_lr"]),
            float(data["num_epochs"]),
            float(data["warmup_epochs"]),
            float(data["warmup_lr"]),
            str(data.get("type", "cosine")),
            tuple(int(m) for m in data.get("milestones", [])),
            float(data.get("gamma", 0.1)),
        )


@dataclass(frozen=True)
class StageLRSchedule:
    """A cosine restarted at every stage from the stage's ``init_lr`` over its ``epochs_lr``."""

    def lr(self, epoch_in_stage: int, batch: int, steps_per_epoch: int, init_lr: float, epochs_lr: float) -> float:
        return cosine_lr(init_lr, epoch_in_stage * steps_per_epoch + batch, epochs_lr * steps_per_epoch)

    def to_json(self) -> dict[str, Any]:
        return {"type": "stage"}


def parse_lr_schedule(section: Mapping[str, Any] | None, total_epochs: int) -> GlobalLRSchedule | None:
    """The global schedule if ``params.base_lr`` is given (legacy rule), else None (stage or constant mode).

    Raises ConfigError naming the field for an unknown ``type``, a non-positive ``num_epochs`` or a multistep schedule
    without ``milestones``.
    """
    section = dict(section or {})
    params = dict(section.get("params") or {})
    if params.get("base_lr") is None:
        return None
    kind = section.get("type") or "cosine"
    if kind not in LR_TYPES:
        raise ConfigError(f"{_PATH}.type", f"{kind!r} is not one of {', '.join(LR_TYPES)}", kind, list(LR_TYPES))
    num_epochs = params.get("num_epochs")
    num_epochs = total_epochs if num_epochs is None else num_epochs
    if num_epochs <= 0:
        raise ConfigError(f"{_PATH}.params.num_epochs", f"must be > 0, got {num_epochs}", num_epochs)
    milestones = tuple(int(m) for m in params.get("milestones") or ())
    if kind == "multistep" and not milestones:
        raise ConfigError(f"{_PATH}.params", "missing 'milestones', required by type multistep")
    return GlobalLRSchedule(
        base_lr=float(params["base_lr"]),
        num_epochs=float(num_epochs),
        warmup_epochs=float(params.get("warmup_epochs") or 0.0),
        warmup_lr=float(DEFAULT_WARMUP_LR if params.get("warmup_lr") is None else params["warmup_lr"]),
        kind=kind,
        milestones=milestones,
        gamma=float(params.get("gamma", 0.1)),
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Legacy behaviour: every parameter group gets the same rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr
