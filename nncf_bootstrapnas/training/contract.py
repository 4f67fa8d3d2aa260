"""What training relies on from a super-network (``SuperNetwork`` or a test double), and where its tensors live."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

SUPERNET_API = ("activate", "set_stage", "stage_space", "search_space", "get_state")


def is_supernet(model: Any) -> bool:
    return isinstance(model, nn.Module) and all(hasattr(model, name) for name in SUPERNET_API)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP/DataParallel wrapper (or the model itself)."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def find_supernet(model: nn.Module) -> nn.Module:
    model = unwrap(model)
    if is_supernet(model):
        return model
    raise TypeError(
        f"expected a super-network (an nn.Module with {', '.join(SUPERNET_API)}), got {type(model).__name__}; "
        "build one with nncf_bootstrapnas.create_supernet(model, config)"
    )


def max_subnet_copy(supernet: nn.Module) -> nn.Module:
    """A deep copy of the super-network at its maximum subnet (the original model's function before training)."""
    previous = supernet.active_config
    supernet.activate(None)
    try:
        return copy.deepcopy(supernet)
    finally:
        supernet.activate(previous)


def model_device(model: nn.Module) -> torch.device:
    """The device of the first parameter (or buffer); the CPU for a module without tensors."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def example_input_of(supernet: nn.Module) -> tuple[Any, ...] | None:
    example = getattr(supernet, "example_input", None)
    if example is None:
        return None
    return example if isinstance(example, tuple) else (example,)
