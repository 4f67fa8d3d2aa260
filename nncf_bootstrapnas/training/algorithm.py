"""``progressive_shrinking`` builder (pipeline protocol) and parsing of the ``bootstrapNAS.training`` section."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.config import ConfigError
from nncf_bootstrapnas.elasticity.search_space import DIMENSIONS
from nncf_bootstrapnas.registry import COMPRESSION_ALGORITHMS, TRAINING_ALGORITHMS
from nncf_bootstrapnas.training.controller import ProgressiveShrinkingController, TrainingSettings
from nncf_bootstrapnas.training.distillation import FrozenTeacher, KDSettings
from nncf_bootstrapnas.training.lr_schedule import parse_lr_schedule
from nncf_bootstrapnas.training.sampling import SamplingSettings
from nncf_bootstrapnas.training.scheduler import DEFAULT_PROGRESSIVITY, parse_stages, validate_progressivity

_PATH = "bootstrapNAS.training"
_SUPERNET_API = ("activate", "set_stage", "stage_space", "search_space", "get_state")
DEFAULT_BN_SAMPLES = 2000  # legacy default of batchnorm_adaptation.num_bn_adaptation_samples


def training_section(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """``config.bootstrapnas_training`` of a Config, or ``config["bootstrapNAS"]["training"]`` of a plain dict."""
    if config is None:
        return {}
    section = getattr(config, "bootstrapnas_training", None)
    if section is None:
        section = (config.get("bootstrapNAS") or {}).get("training") or {}
    return dict(section)


def is_supernet(model: Any) -> bool:
    return isinstance(model, nn.Module) and all(hasattr(model, name) for name in _SUPERNET_API)


def unwrap(model: nn.Module) -> nn.Module:
    """The super-network inside a DDP/DataParallel wrapper (or the model itself)."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def find_supernet(model: nn.Module) -> nn.Module:
    model = unwrap(model)
    if is_supernet(model):
        return model
    raise TypeError(
        f"expected a super-network (an nn.Module with {', '.join(_SUPERNET_API)}), got {type(model).__name__}; "
        "build one with nncf_bootstrapnas.create_supernet(model, config)"
    )


def parse_training_settings(config: Mapping[str, Any] | None, supernet: nn.Module) -> TrainingSettings:
    """Validate the training section against the super-network (available dimensions, progressivity)."""
    section = training_section(config)
    algo = section.get("algorithm", "progressive_shrinking")
    if algo != "progressive_shrinking":
        reason = f"{algo!r} is not handled by the progressive_shrinking builder"
        raise ConfigError(f"{_PATH}.algorithm", reason, algo, ["progressive_shrinking"])
    elasticity = section.get("elasticity") or {}
    configured = elasticity.get("available_elasticity_dims") or list(DIMENSIONS)
    available = set(supernet.search_space.dims) | set(configured)
    progressivity = list(section.get("progressivity_of_elasticity") or DEFAULT_PROGRESSIVITY)
    stages, is_default = parse_stages(section.get("schedule"))
    validate_progressivity(stages, available, progressivity)
    total = sum(s.epochs for s in stages)
    bn = section.get("batchnorm_adaptation") or {}
    num_bn = bn.get("num_bn_adaptation_samples", DEFAULT_BN_SAMPLES)
    if isinstance(num_bn, bool) or not isinstance(num_bn, int) or num_bn < 0:
        path = f"{_PATH}.batchnorm_adaptation.num_bn_adaptation_samples"
        raise ConfigError(path, f"{num_bn!r} must be an integer >= 0", num_bn)
    train_steps = section.get("train_steps")
    if train_steps is not None and (
        isinstance(train_steps, bool) or not isinstance(train_steps, int) or train_steps <= 0
    ):
        raise ConfigError(f"{_PATH}.train_steps", f"{train_steps!r} must be a positive integer or null", train_steps)
    importance = (elasticity.get("width") or {}).get("filter_importance", "L1")
    return TrainingSettings(
        stages=stages,
        progressivity=progressivity,
        global_lr=parse_lr_schedule(section.get("lr_schedule"), total),
        sampling=SamplingSettings.from_config(section.get("sampling"), section.get("seed")),
        kd=KDSettings.from_config(section.get("compression")),
        num_bn_adaptation_samples=num_bn,
        train_steps=train_steps,
        filter_importance=importance,
        default_schedule=is_default,
        raw=section,
    )


@TRAINING_ALGORITHMS.register("progressive_shrinking")
class ProgressiveShrinkingBuilder:
    """Builds the super-network (``create_supernet``) and its progressive-shrinking controller.

    A model that already is a super-network is used as is; then the distillation teacher is a frozen copy of it at its
    maximum subnet, which is the original model's function before training.
    """

    def __init__(self, config: Mapping[str, Any] | None = None, section: Mapping[str, Any] | None = None) -> None:
        self.config = config if config is not None else {}
        self.section = dict(section) if section is not None else training_section(self.config)
        self._teacher_model: nn.Module | None = None
        self.supernet: nn.Module | None = None

    def apply_to(self, model: nn.Module, example_input: Any = None) -> nn.Module:
        kd = KDSettings.from_config(self.section.get("compression"))
        if is_supernet(model):
            supernet = model
            if kd is not None:
                previous = supernet.active_config
                supernet.activate(None)
                self._teacher_model = copy.deepcopy(supernet)
                supernet.activate(previous)
        else:
            if kd is not None:  # before create_supernet, which turns the user's modules elastic in place
                self._teacher_model = copy.deepcopy(model)
            from nncf_bootstrapnas.elasticity import create_supernet

            supernet = create_supernet(model, self.config, example_input=example_input)
        self.supernet = supernet
        return supernet

    def build_controller(self, model: nn.Module) -> ProgressiveShrinkingController:
        supernet = find_supernet(model)
        settings = parse_training_settings(self.config, supernet)
        teacher = None
        if settings.kd is not None:
            source = self._teacher_model if self._teacher_model is not None else _max_copy(supernet)
            teacher = FrozenTeacher(source, settings.kd)
        return ProgressiveShrinkingController(model, supernet, settings, teacher)


def _max_copy(supernet: nn.Module) -> nn.Module:
    previous = supernet.active_config
    supernet.activate(None)
    teacher = copy.deepcopy(supernet)
    supernet.activate(previous)
    return teacher


def compression_entries(config: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The top-level ``compression`` list (a Config helper if present; a single object becomes a one-item list)."""
    if config is None:
        return []
    entries = getattr(config, "compression", None)
    if entries is None or callable(entries):
        entries = config.get("compression")
    if entries is None:
        return []
    if isinstance(entries, Mapping):
        entries = [entries]
    if not isinstance(entries, Sequence):
        raise ConfigError("compression", f"expected a list of algorithm objects, got {entries!r}", entries)
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "algorithm" not in entry:
            raise ConfigError(f"compression[{i}]", f"expected an object with an 'algorithm' key, got {entry!r}", entry)
    return [dict(e) for e in entries]


def build_training(
    model: nn.Module,
    config: Mapping[str, Any] | None,
    example_input: Any = None,
    calibration_data: Any = None,
) -> tuple[ProgressiveShrinkingController, nn.Module, list[Any]]:
    """Progressive shrinking, then every top-level compression algorithm from the registry, in config order.

    The same composition ``pipeline.create_compressed_model`` performs; ``fit`` and the legacy facade use this one so
    that they get the progressive-shrinking controller itself and can hand calibration data to quantization.
    Returns ``(controller, model, compression_controllers)``.
    """
    builder = ProgressiveShrinkingBuilder(config)
    model = builder.apply_to(model, example_input)
    compression_builders = []
    for entry in compression_entries(config):
        cls = COMPRESSION_ALGORITHMS.get(entry["algorithm"])
        comp = cls(config, entry)
        if calibration_data is not None and hasattr(comp, "calibration_data"):
            comp.calibration_data = calibration_data
        model = comp.apply_to(model, example_input)
        compression_builders.append(comp)
    controller = builder.build_controller(model)
    return controller, model, [b.build_controller(model) for b in compression_builders]


def supernet_example_input(supernet: nn.Module) -> tuple[torch.Tensor, ...] | None:
    example = getattr(supernet, "example_input", None)
    if example is None:
        return None
    return example if isinstance(example, tuple) else (example,)
