"""create_compressed_model: the NNCF-style entry point that applies every configured algorithm to a model."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from nncf_bootstrapnas.config import Config
from nncf_bootstrapnas.pipeline.composite import CompositeController
from nncf_bootstrapnas.pipeline.protocols import AlgorithmController
from nncf_bootstrapnas.training.composition import as_config, compose, plan


def planned_algorithms(config: Config) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, config path, section) of every algorithm, in build order: bootstrapNAS.training.algorithm (when a
    bootstrapNAS section is present), then compression[] entries in list order; every name is resolved."""
    return [(name, path, section) for name, path, _, section in plan(config, config.has_bootstrapnas)]


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

    The composition is ``training.composition.compose`` (the same as ``fit`` and the legacy facade use): each
    algorithm's builder is looked up by name (registry.TRAINING_ALGORITHMS for bootstrapNAS.training.algorithm,
    registry.COMPRESSION_ALGORITHMS for compression[i].algorithm), constructed as ``Builder(config, section)``, applied
    to the model returned by the previous one, and its controller built on the model it returned. The controller is
    the algorithm's own when there is exactly one, else a CompositeController (also for none). ``example_input`` (a
    tensor or tuple of tensors) defaults to ``config.example_inputs()``. With ``dump_graphs``, the module structure
    before and after is written to ``<log_dir>/{original,compressed}_model.txt``.
    """
    config = as_config(config)
    if dump_graphs:
        _dump(model, config, "original")
    composition = compose(model, config, example_input=example_input)
    if dump_graphs:
        _dump(composition.model, config, "compressed")
    if len(composition.controllers) == 1:
        return next(iter(composition.controllers.values())), composition.model
    return CompositeController(composition.controllers), composition.model
