"""Stage descriptors and the progressive-shrinking scheduler (legacy ``StageDescriptor`` / ``BootstrapNASScheduler``).

The scheduler keeps only counters (epoch, global step, step within the epoch, stage index). At each epoch boundary it
finds the stage the epoch belongs to; entering a new stage asks the controller to apply it (enable ``train_dims``,
reorganise weights, set indicators, adapt BN). Every step it sets the learning rate and lets the controller pick the
step's subnet. Because the rate and the subnet are functions of the counters, restoring the counters restores both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch

from nncf_bootstrapnas.config import ConfigError, validate_stage_schedule
from nncf_bootstrapnas.elasticity.search_space import DIMENSIONS
from nncf_bootstrapnas.training.lr_schedule import (
    DEFAULT_STAGE_LR,
    GlobalLRSchedule,
    StageLRSchedule,
    set_lr,
)

logger = logging.getLogger(__name__)

_STAGE_KEYS = (
    "train_dims",
    "epochs",
    "reorg_weights",
    "bn_adapt",
    "depth_indicator",
    "width_indicator",
    "init_lr",
    "epochs_lr",
    "sample_rate",
)
_SCHEDULE_PATH = "bootstrapNAS.training.schedule.list_stage_descriptions"


@dataclass
class StageDescriptor:
    """One training stage: which dimensions are elastic, for how long and how they are prepared (legacy fields)."""

    train_dims: list[str]
    epochs: int = 1
    reorg_weights: bool = False
    bn_adapt: bool = False
    depth_indicator: int = 1
    width_indicator: int = 1
    init_lr: float | None = None
    epochs_lr: float | None = None
    sample_rate: int = 1

    @classmethod
    def from_config(cls, data: Mapping[str, Any], path: str = f"{_SCHEDULE_PATH}[0]") -> StageDescriptor:
        """Validate one ``list_stage_descriptions`` entry; errors name the field, the value and what is allowed."""
        if not isinstance(data, Mapping):
            raise ConfigError(path, f"a stage descriptor must be an object, got {data!r}", data)
        unknown = sorted(set(data) - set(_STAGE_KEYS))
        if unknown:
            raise ConfigError(f"{path}.{unknown[0]}", f"unknown key; allowed: {', '.join(_STAGE_KEYS)}", unknown[0])
        dims = data.get("train_dims", ["kernel"])
        if isinstance(dims, str) or not isinstance(dims, Sequence):
            raise ConfigError(f"{path}.train_dims", f"must be a list of dimensions, got {dims!r}", dims)
        for i, dim in enumerate(dims):
            if dim not in DIMENSIONS:
                raise ConfigError(
                    f"{path}.train_dims[{i}]", f"{dim!r} is not one of {', '.join(DIMENSIONS)}", dim, DIMENSIONS
                )
        desc = cls(
            train_dims=list(dims),
            epochs=_int(data, "epochs", 1, path),
            reorg_weights=_bool(data, "reorg_weights", False, path),
            bn_adapt=_bool(data, "bn_adapt", False, path),
            depth_indicator=_int(data, "depth_indicator", 1, path),
            width_indicator=_int(data, "width_indicator", 1, path),
            init_lr=_float_or_none(data, "init_lr", path),
            epochs_lr=_float_or_none(data, "epochs_lr", path),
            sample_rate=_int(data, "sample_rate", 1, path),
        )
        return desc

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def validate_progressivity(
    stages: Sequence[StageDescriptor], available_dims: Iterable[str], progressivity: Sequence[str]
) -> None:
    """Legacy rule (NNCF ``BootstrapNASScheduler``): stages only add dimensions, in ``progressivity`` order, without
    gaps; the check is the config package's, so a config and a schedule built in code fail the same way."""
    for i, dim in enumerate(progressivity):
        if dim not in DIMENSIONS:
            raise ConfigError(
                f"bootstrapNAS.training.progressivity_of_elasticity[{i}]",
                f"{dim!r} is not one of {', '.join(DIMENSIONS)}",
                dim,
                DIMENSIONS,
            )
    validate_stage_schedule([d.to_json() for d in stages], list(progressivity), sorted(set(available_dims)))


class StageTarget(Protocol):
    """What the scheduler drives: the progressive-shrinking controller."""

    def set_stage(self, desc: StageDescriptor) -> None: ...

    def on_step(self, step: int) -> None: ...


@dataclass
class _Counters:
    current_epoch: int = -1
    current_step: int = -1
    step_in_epoch: int = -1
    current_stage_idx: int = -1
    stage_start_epoch: int = 0


class BootstrapNASScheduler:
    """Call ``epoch_step()`` at the start of every epoch and ``step()`` at the start of every training step."""

    def __init__(
        self,
        target: StageTarget,
        stages: Sequence[StageDescriptor],
        global_lr: GlobalLRSchedule | None = None,
    ) -> None:
        self._target = target
        self.list_stage_descriptors: list[StageDescriptor] = list(stages)
        self.global_lr = global_lr
        self._stage_lr = StageLRSchedule()
        self._c = _Counters()
        self.optimizer: torch.optim.Optimizer | None = None
        self.steps_per_epoch: int | None = None
        self._check_lr_modes()

    # ---- counters -----------------------------------------------------------------------------------------------------
    @property
    def current_epoch(self) -> int:
        return self._c.current_epoch

    @property
    def current_step(self) -> int:
        return self._c.current_step

    @property
    def step_in_epoch(self) -> int:
        return self._c.step_in_epoch

    @property
    def current_stage_idx(self) -> int:
        return self._c.current_stage_idx

    @property
    def lr_mode(self) -> str:
        if self.global_lr is not None:
            return "global"
        return "stage" if any(d.init_lr is not None for d in self.list_stage_descriptors) else "constant"

    def _check_lr_modes(self) -> None:
        for i, desc in enumerate(self.list_stage_descriptors):
            if desc.init_lr is not None and self.global_lr is not None:
                raise ConfigError(
                    f"{_SCHEDULE_PATH}[{i}].init_lr",
                    "a stage learning rate cannot be set while the global lr_schedule is in use; remove one",
                    desc.init_lr,
                )
        if self.lr_mode == "stage":
            for i, desc in enumerate(self.list_stage_descriptors):
                if desc.init_lr is None:
                    logger.warning("stage %d has no init_lr; using the legacy default %g", i, DEFAULT_STAGE_LR)
                    desc.init_lr = DEFAULT_STAGE_LR
                if desc.epochs_lr is None:
                    desc.epochs_lr = desc.epochs

    def attach_optimizer(self, optimizer: torch.optim.Optimizer | None, steps_per_epoch: int) -> None:
        """Legacy ``set_training_lr_scheduler_args``: the optimizer whose rate is scheduled and the epoch length."""
        if steps_per_epoch <= 0:
            raise ValueError(f"steps per epoch must be > 0, got {steps_per_epoch}")
        self.optimizer = optimizer
        self.steps_per_epoch = int(steps_per_epoch)

    def get_total_training_epochs(self) -> int:
        return sum(d.epochs for d in self.list_stage_descriptors)

    def get_current_stage_desc(self) -> tuple[StageDescriptor | None, int]:
        """The stage of ``current_epoch`` and its index; ``(None, -1)`` past the last stage."""
        end = 0
        for idx, desc in enumerate(self.list_stage_descriptors):
            end += desc.epochs
            if self._c.current_epoch < end:
                return desc, idx
        return None, -1

    def stage_start_epoch(self, idx: int) -> int:
        return sum(d.epochs for d in self.list_stage_descriptors[:idx])

    def is_final_stage(self) -> bool:
        return self._c.current_stage_idx == len(self.list_stage_descriptors) - 1

    # ---- stepping -----------------------------------------------------------------------------------------------------
    def epoch_step(self, next_epoch: int | None = None) -> None:
        self._c.current_epoch = self._c.current_epoch + 1 if next_epoch is None else int(next_epoch)
        self._c.step_in_epoch = -1
        desc, idx = self.get_current_stage_desc()
        if desc is not None and idx != self._c.current_stage_idx:
            self._c.current_stage_idx = idx
            self._c.stage_start_epoch = self.stage_start_epoch(idx)
            self._target.set_stage(desc)

    def step(self, next_step: int | None = None) -> None:
        self._c.current_step = self._c.current_step + 1 if next_step is None else int(next_step)
        self._c.step_in_epoch += 1
        self._apply_lr()
        self._target.on_step(self._c.current_step)

    def current_lr(self) -> float | None:
        """The scheduled rate for the current step (None in constant mode or before an optimizer is attached)."""
        if self.steps_per_epoch is None or self.lr_mode == "constant":
            return None
        epoch, batch, n = max(self._c.current_epoch, 0), max(self._c.step_in_epoch, 0), self.steps_per_epoch
        if self.global_lr is not None:
            return self.global_lr.lr(epoch, batch, n)
        idx = max(self._c.current_stage_idx, 0)
        desc = self.list_stage_descriptors[idx]
        return self._stage_lr.lr(
            epoch - self._c.stage_start_epoch, batch, n, float(desc.init_lr), float(desc.epochs_lr or desc.epochs)
        )

    def _apply_lr(self) -> None:
        lr = self.current_lr()
        if lr is not None and self.optimizer is not None:
            set_lr(self.optimizer, lr)

    # ---- state --------------------------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {
            "current_epoch": self._c.current_epoch,
            "current_step": self._c.current_step,
            "step_in_epoch": self._c.step_in_epoch,
            "current_stage_idx": self._c.current_stage_idx,
            "stage_start_epoch": self._c.stage_start_epoch,
            "steps_per_epoch": self.steps_per_epoch,
            "list_stage_descriptions": [d.to_json() for d in self.list_stage_descriptors],
            "lr_schedule": None if self.global_lr is None else self.global_lr.to_json(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore counters and, as legacy does, the stage list and global schedule saved with them."""
        self.list_stage_descriptors = [
            StageDescriptor.from_config(d, f"checkpoint.{_SCHEDULE_PATH}[{i}]")
            for i, d in enumerate(state["list_stage_descriptions"])
        ]
        lr = state.get("lr_schedule")
        self.global_lr = None if lr is None else GlobalLRSchedule.from_json(lr)
        self._c = _Counters(
            current_epoch=int(state["current_epoch"]),
            current_step=int(state["current_step"]),
            step_in_epoch=int(state["step_in_epoch"]),
            current_stage_idx=int(state["current_stage_idx"]),
            stage_start_epoch=int(state["stage_start_epoch"]),
        )
        if state.get("steps_per_epoch") is not None and self.steps_per_epoch is None:
            self.steps_per_epoch = int(state["steps_per_epoch"])
        self._check_lr_modes()


def _int(data: Mapping[str, Any], key: str, default: int, path: str) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{path}.{key}", f"{value!r} must be a positive integer", value)
    return value


def _bool(data: Mapping[str, Any], key: str, default: bool, path: str) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{path}.{key}", f"expected true or false, got {value!r}", value, [True, False])
    return value


def _float_or_none(data: Mapping[str, Any], key: str, path: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{path}.{key}", f"{value!r} must be a positive number", value)
    return float(value)
