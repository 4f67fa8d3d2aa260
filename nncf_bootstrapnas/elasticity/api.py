"""``create_supernet``: the functional entry point of generation."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from torch import nn

from .inputs import example_from_input_info, is_nested
from .supernet import SuperNetwork
from .verify import self_check

logger = logging.getLogger("nncf_bootstrapnas")


ELASTICITY_SCHEMA = "training.schema.json#/$defs/elasticity"


def _elasticity_options(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The elasticity section, validated and with the schema's defaults (the single source of defaults)."""
    from ..config.schema import schemas

    if config is not None and "bootstrapNAS" in config:
        section = (config.get("bootstrapNAS", {}).get("training", {}) or {}).get("elasticity", {}) or {}
    else:
        section = config or {}  # the elasticity section itself
    section = copy.deepcopy(dict(section))
    schemas().validate(section, ELASTICITY_SCHEMA)
    return schemas().fill_defaults(section, ELASTICITY_SCHEMA)


def _example_inputs(
    config: Mapping[str, Any] | None, example_input: Any, example_kwargs: Mapping[str, Any] | None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Positional and keyword example arguments, as ``forward`` receives them (nested containers allowed)."""
    kwargs = dict(example_kwargs or {})
    if example_input is not None:
        if isinstance(example_input, (tuple, list)):
            return tuple(example_input), kwargs
        return (example_input,), kwargs
    info = config.get("input_info") if isinstance(config, Mapping) else None
    if info and is_nested(info):
        args, from_info = example_from_input_info(info)
        return args, {**from_info, **kwargs}
    if config is not None and hasattr(config, "example_inputs"):
        extra = config.example_kwargs() if hasattr(config, "example_kwargs") else {}
        return tuple(config.example_inputs()), {**extra, **kwargs}
    if not info:
        raise ValueError("create_supernet: no example_input given and the config has no input_info.sample_size")
    args, from_info = example_from_input_info(info)
    return args, {**from_info, **kwargs}


def create_supernet(
    model: nn.Module,
    config: Mapping[str, Any] | None = None,
    example_input: Any = None,
    copy_model: bool = True,
    example_kwargs: Mapping[str, Any] | None = None,
) -> SuperNetwork:
    """Turn a (pre-trained) model into a weight-sharing super-network.

    ``config`` is a loaded NNCF-style config (its ``bootstrapNAS.training.elasticity`` section is used) or the
    elasticity section itself. ``example_input`` is one tensor (the only positional argument) or a tuple/list of the
    positional arguments, each a tensor or a nested tuple/list/dict of tensors as ``forward`` receives it (a model
    taking one tuple gets ``example_input=((a, b),)``); ``example_kwargs`` are keyword arguments. The model is
    deep-copied unless ``copy_model=False``. Warnings name every requested dimension that got no variable; the full
    story is ``supernet.generation_report()``.
    """
    options = _elasticity_options(config)
    args, kwargs = _example_inputs(config, example_input, example_kwargs)
    target = copy.deepcopy(model) if copy_model else model
    supernet = SuperNetwork(target, args, options, kwargs)
    self_check(supernet)
    report = supernet.generation_report()
    for warning in report.warnings:
        logger.warning("generation: %s", warning)
    logger.info("super-network: %r", supernet.search_space)
    return supernet
