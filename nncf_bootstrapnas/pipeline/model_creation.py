"""create_compressed_model: the NNCF-style entry point that applies every configured algorithm to a model."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from nncf_bootstrapnas.config import Config, ConfigError, load_config
from nncf_bootstrapnas.pipeline.composite import CompositeController
from nncf_bootstrapnas.pipeline.protocols import AlgorithmController
from nncf_bootstrapnas.registry import COMPRESSION_ALGORITHMS, TRAINING_ALGORITHMS, Registry, RegistryError


def _lookup(registry: Registry[Any], name: str, path: str) -> Any:
    try:
        return registry.get(name)
    except RegistryError as exc:
        raise ConfigError(path, str(exc), name, registry.names()) from None


def planned_algorithms(config: Config) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, config path, section) of every algorithm, in build order: bootstrapNAS.training.algorithm (when a
    bootstrapNAS section is present), then compression[] entries in list order."""
    plan = []
    if config.has_bootstrapnas:
        section = config.bootstrapnas_training
        plan.append((section["algorithm"], "bootstrapNAS.training.algorithm", section))
    for i, entry in enumerate(config.compression):
        plan.append((entry["algorithm"], f"compression[{i}].algorithm", entry))
    return plan


def _as_example_input(example_input: Any, config: Config) -> tuple[Any, ...]:
    if example_input is None:
        return config.example_inputs()
    if isinstance(example_input, tuple):
        return example_input
    if isinstance(example_input, list):
        return tuple(example_input)
    return (example_input,)


def _dump(model: nn.Module, config: Config, name: str) -> None:
    directory = Path(config.get("log_dir", "."))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}_model.txt").write_text(str(model) + "\n", encoding="utf-8")


def create_compressed_model(
    model: nn.Module,
    config: Config | Mapping[str, Any] | str | os.PathLike[str],
    example_input: Any = None,
    dump_graphs: bool = False,
) -> tuple[AlgorithmController, nn.Module]:
    """Apply the configured algorithms to ``model`` and return ``(controller, model)``.

    Each algorithm's builder is looked up by name (registry.TRAINING_ALGORITHMS for bootstrapNAS.training.algorithm,
    registry.COMPRESSION_ALGORITHMS for compression[i].algorithm), constructed as ``Builder(config, section)``,
    applied to the model returned by the previous one, and its controller built on the model it returned.
    The controller is the algorithm's own when there is exactly one, else a CompositeController (also for none).
    ``example_input`` (a tensor or tuple of tensors) defaults to ``config.example_inputs()``. With ``dump_graphs``,
    the module structure before and after is written to ``<log_dir>/{original,compressed}_model.txt``.
    """
    if not isinstance(config, Config):
        config = load_config(config)
    plan = planned_algorithms(config)
    resolved = []  # resolve every name before touching the model
    for name, path, section in plan:
        registry = TRAINING_ALGORITHMS if path.startswith("bootstrapNAS") else COMPRESSION_ALGORITHMS
        resolved.append((name, _lookup(registry, name, path), section))
    inputs = _as_example_input(example_input, config) if plan else ()
    if dump_graphs:
        _dump(model, config, "original")
    controllers: dict[str, AlgorithmController] = {}
    for name, builder_cls, section in resolved:
        builder = builder_cls(config, section)
        result = builder.apply_to(model, inputs)
        if not isinstance(result, nn.Module):
            raise TypeError(f"algorithm {name!r}: apply_to() returned {type(result).__name__}, not an nn.Module")
        model = result
        controller = builder.build_controller(model)
        missing = [
            m for m in ("scheduler", "loss", "statistics", "get_state", "load_state") if not hasattr(controller, m)
        ]
        if missing:
            raise TypeError(f"algorithm {name!r}: its controller lacks {', '.join(missing)} (see AlgorithmController)")
        controllers[name] = controller
    if dump_graphs:
        _dump(model, config, "compressed")
    if len(controllers) == 1:
        return next(iter(controllers.values())), model
    return CompositeController(controllers), model
