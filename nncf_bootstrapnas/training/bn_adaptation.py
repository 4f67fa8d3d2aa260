"""Re-estimate BatchNorm statistics for the active subnet.

Weight sharing makes the running statistics of a BN layer a mix of every subnet trained through it, so a subnet is only
evaluated fairly after re-estimating them on its own activations. ``nncf.batch_norm_adaptation`` (NNCF 3) is not used:
it neither resets the statistics nor switches to a cumulative average, so after a few batches the old (wrong) statistics
still dominate through the exponential momentum. Here every BN layer restarts from zero and accumulates an exact
average over ``num_samples`` samples (``momentum=None``), with only BN layers in train mode and no gradients.

Channels and layers the active subnet does not reach keep their previous statistics, so adapting a small subnet does
not destroy the statistics of the larger ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from nncf_bootstrapnas.training.contract import model_device


def split_batch(batch: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Model inputs of a loader batch: ``(x, y)`` / ``[x, y]`` -> x (a tuple/list x is splatted), dict -> kwargs, else
    the batch itself."""
    if isinstance(batch, Mapping):
        return (), dict(batch)
    if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
        if not batch:
            raise ValueError("empty batch: expected (inputs, targets) or a tensor")
        x = batch[0]
        return (tuple(x) if isinstance(x, (list, tuple)) else (x,)), {}
    return (batch,), {}


def batch_size_of(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    for value in list(args) + list(kwargs.values()):
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    return 1


def to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(to_device(v, device) for v in obj)
    if isinstance(obj, list):
        return [to_device(v, device) for v in obj]
    return obj


def bn_layers(model: nn.Module) -> list[_BatchNorm]:
    return [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def adapt_batchnorm(model: nn.Module, loader: Iterable[Any], num_samples: int | None = None) -> None:
    """Re-estimate the running statistics of every BN layer of ``model`` as run now (the active subnet).

    Args:
        model: the super-network (or any module); its active subnet is what runs.
        loader: batches of ``(x, y)``, ``[x, y]``, bare ``x`` or keyword dicts; only inputs are used.
        num_samples: stop once this many samples were seen (default: the whole loader). Must be > 0.
    """
    if num_samples is not None and num_samples <= 0:
        raise ValueError(f"num_samples must be > 0 or None, got {num_samples}")
    layers = bn_layers(model)
    if not layers:
        return
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(), m.momentum) for m in layers]
    modes = {m: m.training for m in model.modules()}
    device = model_device(model)
    seen = 0
    try:
        model.eval()
        for m in layers:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average: an exact mean over the batches seen
            m.train()
        for batch in loader:
            args, kwargs = split_batch(batch)
            args, kwargs = to_device(args, device), to_device(kwargs, device)
            model(*args, **kwargs)
            seen += batch_size_of(args, kwargs)
            if num_samples is not None and seen >= num_samples:
                break
    finally:
        for m, (mean, var, count, momentum) in zip(layers, saved):
            m.momentum = momentum
            if int(m.num_batches_tracked) == 0:  # layer not reached by this subnet (e.g. a skipped block)
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)
            else:  # channels outside the active width were never written: still exactly 0 / 1 after the reset
                untouched = (m.running_mean == 0) & (m.running_var == 1)
                m.running_mean[untouched] = mean[untouched]
                m.running_var[untouched] = var[untouched]
        for module, training in modes.items():
            module.training = training
    if seen == 0:
        raise ValueError("BN adaptation got an empty loader: no batch to estimate statistics from")
