"""``create_supernet``: the functional entry point of generation."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .search_space import SearchSpace
from .supernet import SuperNetwork

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
    _self_check(supernet)
    logger.info("super-network: %r", supernet.search_space)
    return supernet


def _runs(supernet: SuperNetwork, config: dict) -> Exception | None:
    try:
        supernet.activate(config)
        with torch.no_grad():
            supernet(*supernet.example_input)
    except Exception as exc:  # noqa: BLE001 - any failure means the analysis misjudged something
        return exc
    return None


def _self_check(supernet: SuperNetwork) -> None:
    """Run the minimum subnet once. Should a construct have been misjudged, freeze exactly the variables that break
    the forward pass (one log line each) instead of failing later in training or search."""
    was_training = supernet.training
    supernet.eval()
    try:
        if _runs(supernet, supernet.search_space.minimum()) is None:
            return
        bad = []
        for var in supernet.search_space.variables:
            error = _runs(supernet, {var.dim: {var.key: var.minimum}})
            if error is not None:
                logger.warning("%s is not elastic: its smallest choice fails at run time (%s)", var.name, error)
                bad.append(var)
        keep = [v for v in supernet.search_space.variables if v not in bad]
        names = {v.name for v in keep}
        supernet.search_space = supernet.stage_space = SearchSpace(keep)
        supernet.width_groups = [g for g in supernet.width_groups if f"width/{g.name}" in names]
        supernet.block_groups = [b for b in supernet.block_groups if f"depth/{b.name}" in names]
        supernet.kernel_choices = {k: c for k, c in supernet.kernel_choices.items() if f"kernel/{k}" in names}
        supernet._root_to_group = {g.root: g for g in supernet.width_groups}
        error = _runs(supernet, supernet.search_space.minimum())
        if error is not None:
            raise RuntimeError(
                f"create_supernet: the minimum subnet still fails after freezing {len(bad)} variables: {error}"
            )
    finally:
        supernet.activate(None)
        supernet.train(was_training)
