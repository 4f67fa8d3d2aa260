"""Elastic-module helpers shared by the super-network and the training stage (quantizer slicing).

Elastic layers are made by parameters (``views.py``); ``nn.MultiheadAttention`` keeps its own elastic class
(``attention.py``) because its functional form cannot express fewer heads than ``embed_dim / head_dim``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .kernel import kernel_choices
from .views import ElasticState, index_len, is_view_elastic

__all__ = ["ELASTIC_CLASSES", "ElasticState", "active_param_count", "conv_kernel_choices", "index_len", "is_elastic"]

# Layers that keep a class of their own when elastic (filled by attention.py).
ELASTIC_CLASSES: dict[type[nn.Module], type[nn.Module]] = {}


def is_elastic(module: nn.Module) -> bool:
    return is_view_elastic(module) or type(module) in ELASTIC_CLASSES.values()


def conv_kernel_choices(conv: nn.Module, max_num_kernels: int) -> tuple[tuple[int, ...], str | None]:
    return kernel_choices(conv, max_num_kernels)


@torch.no_grad()
def active_param_count(module: nn.Module) -> int:
    """Parameters an elastic attention layer keeps (what ``to_static()`` would hold), without building it."""
    return sum(math.prod(t.shape) for t in module.active_parts()[:4] if t is not None)
