"""``create_supernet``: the functional entry point of generation."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .supernet import SuperNetwork

logger = logging.getLogger("nncf_bootstrapnas")


def _elasticity_options(config: Mapping[str, Any] | None) -> dict[str, Any]:
    if config is None:
        return {}
    if "bootstrapNAS" in config:
        return dict((config.get("bootstrapNAS", {}).get("training", {}) or {}).get("elasticity", {}) or {})
    return dict(config)  # the elasticity section itself


def _example_inputs(config: Mapping[str, Any] | None, example_input: Any) -> tuple[torch.Tensor, ...]:
    if example_input is not None:
        return tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    if config is not None and hasattr(config, "example_inputs"):
        return tuple(config.example_inputs())
    info = (config or {}).get("input_info") if config is not None else None
    if not info:
        raise ValueError("create_supernet: no example_input given and the config has no input_info.sample_size")
    infos = info if isinstance(info, list) else [info]
    return tuple(torch.randn(*i["sample_size"]) for i in infos)


def create_supernet(
    model: nn.Module,
    config: Mapping[str, Any] | None = None,
    example_input: torch.Tensor | Sequence[torch.Tensor] | None = None,
    copy_model: bool = True,
) -> SuperNetwork:
    """Turn a (pre-trained) model into a weight-sharing super-network.

    ``config`` is a loaded NNCF-style config (its ``bootstrapNAS.training.elasticity`` section is used) or the
    elasticity section itself. The model is deep-copied unless ``copy_model=False``.
    """
    options = _elasticity_options(config)
    inputs = _example_inputs(config, example_input)
    target = copy.deepcopy(model) if copy_model else model
    supernet = SuperNetwork(target, inputs, options)
    logger.info("super-network: %r", supernet.search_space)
    return supernet
