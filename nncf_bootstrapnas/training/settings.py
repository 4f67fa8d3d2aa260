"""The ``bootstrapNAS.training`` section (``config.TrainingSection``) as training uses it: algorithm settings checked against the super-network
(``TrainingSettings``) and the epoch loop's options (``LoopOptions``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from nncf_bootstrapnas.config import ConfigError, TrainingSection, section_of
from nncf_bootstrapnas.training.distillation import KDSettings
from nncf_bootstrapnas.training.lr_schedule import GlobalLRSchedule, parse_lr_schedule
from nncf_bootstrapnas.training.sampling import SamplingSettings
from nncf_bootstrapnas.training.scheduler import StageDescriptor, validate_progressivity

PATH = "bootstrapNAS.training"
SCHEDULE_PATH = f"{PATH}.schedule.list_stage_descriptions"


def training_options(config: Any) -> TrainingSection:
    """The typed ``bootstrapNAS.training`` section of a Config, a config dict, a bare section dict or None."""
    return section_of(config, TrainingSection)


@dataclass
class TrainingSettings:
    """The parsed ``bootstrapNAS.training`` section (see :func:`parse_training_settings`)."""

    stages: list[StageDescriptor]
    progressivity: list[str]
    global_lr: GlobalLRSchedule | None
    sampling: SamplingSettings
    kd: KDSettings | None
    num_bn_adaptation_samples: int
    train_steps: int | None
    filter_importance: str = "L1"


def parse_training_settings(config: Any, supernet: nn.Module) -> TrainingSettings:
    """The training section (see :func:`training_options`) checked against the super-network's dimensions."""
    section = training_options(config)
    if section.algorithm != "progressive_shrinking":
        reason = f"{section.algorithm!r} is not handled by the progressive_shrinking builder"
        raise ConfigError(f"{PATH}.algorithm", reason, section.algorithm, ["progressive_shrinking"])
    stages = [StageDescriptor.from_config(s.to_json(), f"{SCHEDULE_PATH}[{i}]") for i, s in enumerate(section.stages)]
    progressivity = list(section.progressivity_of_elasticity)
    available = set(supernet.search_space.dims) | set(section.elasticity.available_elasticity_dims)
    validate_progressivity(stages, available, progressivity)
    lr = None if section.lr_schedule is None else section.lr_schedule.to_json()
    kd = None if section.compression is None else [entry.to_json() for entry in section.compression]
    return TrainingSettings(
        stages=stages,
        progressivity=progressivity,
        global_lr=parse_lr_schedule(lr, sum(s.epochs for s in stages)),
        sampling=SamplingSettings.from_config(section.sampling.to_json(), section.seed),
        kd=KDSettings.from_config(kd),
        num_bn_adaptation_samples=section.batchnorm_adaptation.num_bn_adaptation_samples,
        train_steps=section.train_steps,
        filter_importance=section.elasticity.width.filter_importance,
    )


@dataclass(frozen=True)
class LoopOptions:
    """How the epoch loop runs (``bootstrapNAS.training``): ``epochs`` rescales the schedule to that many epochs in
    all; checkpoints every ``checkpoint_every_epochs`` epochs (0: at the end only) and, if set, every
    ``checkpoint_every_steps`` steps inside an epoch; ``seed`` orders the data."""

    epochs: int | None = None
    checkpoint_every_epochs: int = 1
    checkpoint_every_steps: int | None = None
    seed: int = 0

    @classmethod
    def from_config(cls, config: Any) -> LoopOptions:
        section = training_options(config)
        return cls(
            epochs=section.epochs,
            checkpoint_every_epochs=section.checkpoint_every_epochs,
            checkpoint_every_steps=section.checkpoint_every_steps,
            seed=section.seed,
        )
