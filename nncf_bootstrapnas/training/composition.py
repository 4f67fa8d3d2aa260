"""The composition root: the one function that applies the configured algorithms to a model.

``create_compressed_model``, ``fit`` and the legacy ``EpochBasedTrainingAlgorithm`` all call :func:`compose`:
``bootstrapNAS.training.algorithm`` (looked up in ``registry.TRAINING_ALGORITHMS``), then every top-level
``compression`` entry (``registry.COMPRESSION_ALGORITHMS``) in list order. Every name is resolved before the model is
touched. Each builder is constructed as ``Builder(config, section)``, applied to the model the previous one returned,
and its controller built on the model it returned. Optional builder attributes that ``compose`` fills when a builder
has them: ``calibration_data`` (batches for quantization ranges) and ``original_model`` (the plain model a super-network
was made from, e.g. the distillation teacher).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.config import Config, ConfigError, load_config
from nncf_bootstrapnas.registry import COMPRESSION_ALGORITHMS, TRAINING_ALGORITHMS, Registry, RegistryError
from nncf_bootstrapnas.training.contract import example_input_of, find_supernet, is_supernet, model_device

CONTROLLER_API = ("scheduler", "loss", "statistics", "get_state", "load_state")


def as_config(config: Config | Mapping[str, Any] | str | os.PathLike[str] | None) -> Config:
    """A validated Config with schema defaults (None -> defaults; a dict or a path is loaded)."""
    if isinstance(config, Config):
        return config
    return load_config({} if config is None else config)


@dataclass
class Composition:
    """The composed model and the controllers of its algorithms, keyed by algorithm name in build order."""

    model: nn.Module  # what is trained: the super-network, quantized in place when configured
    controllers: dict[str, Any]
    config: Config
    training_name: str | None = None  # which controller belongs to bootstrapNAS.training.algorithm

    @property
    def controller(self) -> Any:
        """The training algorithm's controller (progressive shrinking); None when it was not composed."""
        return self.controllers.get(self.training_name) if self.training_name is not None else None

    @property
    def compression(self) -> list[Any]:
        return [c for name, c in self.controllers.items() if name != self.training_name]

    @property
    def supernet(self) -> nn.Module:
        return find_supernet(self.model)

    def compression_loss(self) -> torch.Tensor:
        """The sum of every controller's ``loss()`` (distillation from the original model, ...)."""
        total = torch.zeros((), device=model_device(self.model))
        for controller in self.controllers.values():
            total = total + controller.loss()
        return total

    def statistics(self, quickly_collected_only: bool = False) -> dict[str, Any]:
        return {name: c.statistics(quickly_collected_only) for name, c in self.controllers.items()}


def _lookup(registry: Registry[Any], name: Any, path: str) -> Any:
    try:
        return registry.get(name)
    except RegistryError as exc:
        raise ConfigError(path, str(exc), name, registry.names()) from None


def plan(config: Config, with_training: bool) -> list[tuple[str, str, Any, dict[str, Any]]]:
    """``(name, config path, builder class, section)`` of every algorithm in build order, every name resolved."""
    steps = []
    if with_training:
        section = config.bootstrapnas_training
        name = section.get("algorithm", "progressive_shrinking")
        path = "bootstrapNAS.training.algorithm"
        steps.append((name, path, _lookup(TRAINING_ALGORITHMS, name, path), section))
    for i, entry in enumerate(config.compression):
        path = f"compression[{i}].algorithm"
        name = entry.get("algorithm")
        if any(name == s[0] for s in steps):
            raise ConfigError(path, f"{name!r} is listed twice; each algorithm may be applied once", name)
        steps.append((name, path, _lookup(COMPRESSION_ALGORITHMS, name, path), entry))
    return steps


def _example_inputs(example_input: Any, config: Config, model: nn.Module) -> tuple[Any, ...] | None:
    if example_input is not None:
        return tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    if config.input_info:
        return config.example_inputs()
    return example_input_of(model) if is_supernet(model) else None


def compose(
    model: nn.Module,
    config: Config | Mapping[str, Any] | str | os.PathLike[str] | None,
    *,
    example_input: Any = None,
    calibration_data: Iterable[Any] | None = None,
    original_model: nn.Module | None = None,
    with_training: bool | None = None,
) -> Composition:
    """Apply the configured algorithms to ``model`` (see the module docstring).

    ``with_training``: compose ``bootstrapNAS.training.algorithm`` (default: when the config has a bootstrapNAS
    section, as NNCF did; ``fit`` always does). ``example_input`` defaults to the config's ``input_info``, else the
    super-network's own example input.
    """
    config = as_config(config)
    steps = plan(config, config.has_bootstrapnas if with_training is None else with_training)
    inputs = _example_inputs(example_input, config, model) if steps else None
    controllers: dict[str, Any] = {}
    training_name = None
    for name, path, builder_cls, section in steps:
        builder = builder_cls(config, section)
        if calibration_data is not None and hasattr(builder, "calibration_data"):
            builder.calibration_data = calibration_data
        if original_model is not None and hasattr(builder, "original_model"):
            builder.original_model = original_model
        result = builder.apply_to(model, inputs)
        if not isinstance(result, nn.Module):
            raise TypeError(f"algorithm {name!r}: apply_to() returned {type(result).__name__}, not an nn.Module")
        model = result
        controller = builder.build_controller(model)
        missing = [m for m in CONTROLLER_API if not hasattr(controller, m)]
        if missing:
            raise TypeError(f"algorithm {name!r}: its controller lacks {', '.join(missing)} (see AlgorithmController)")
        controllers[name] = controller
        if path.startswith("bootstrapNAS"):
            training_name = name
    return Composition(model, controllers, config, training_name)


def rebind_optimizer(optimizer: torch.optim.Optimizer, original: nn.Module, trained: nn.Module) -> int:
    """Point an optimizer made for ``original`` at the parameters of ``trained`` (matched by name); returns how many
    parameters were re-bound.

    Why: a legacy script builds its optimizer before conversion, but the super-network (and ``nncf.quantize``) work on
    copies. Parameters the optimizer did not know (quantizer scales, kernel transforms) join it in an extra group with
    its defaults, so they are trained too.
    """
    own = {id(p) for p in trained.parameters()}
    names = {id(p): n for n, p in original.named_parameters()}
    by_name = dict(trained.named_parameters())
    rebound = 0
    for group in optimizer.param_groups:
        params = []
        for p in group["params"]:
            if id(p) in own:
                params.append(p)
                continue
            name = names.get(id(p))
            target = None if name is None else by_name.get(name, by_name.get(f"model.{name}"))
            if target is None:
                raise ValueError(
                    f"optimizer parameter {name or tuple(p.shape)} is not a parameter of the trained super-network; "
                    "build the optimizer from the model passed to training (or from the super-network)"
                )
            if p in optimizer.state:
                optimizer.state[target] = optimizer.state.pop(p)
            params.append(target)
            rebound += 1
        group["params"] = params
    known = {id(p) for g in optimizer.param_groups for p in g["params"]}
    extra = [p for p in trained.parameters() if p.requires_grad and id(p) not in known]
    if extra:
        optimizer.add_param_group({"params": extra})
    return rebound
