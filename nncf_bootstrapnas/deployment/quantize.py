"""INT8: detect NNCF-quantized (QAT) torch models, derive their float twin, calibrate float models with nncf.quantize."""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.deployment._utils import Inputs, as_inputs

_HOOKS_ATTR = "__nncf_hooks"  # nncf.torch.function_hook.wrapper.ATR_HOOK_STORAGE (NNCF 3)


def is_quantized(model: nn.Module) -> bool:
    """True when the model holds NNCF quantizer modules (NNCF 3 hook storage or any BaseQuantizer)."""
    if "nncf.torch.quantization.layers" not in sys.modules:  # nobody created a quantizer in this process
        return False
    from nncf.torch.quantization.layers import BaseQuantizer

    return any(isinstance(m, BaseQuantizer) for m in model.modules())


def count_quantizers(model: nn.Module) -> int:
    if not is_quantized(model):
        return 0
    from nncf.torch.quantization.layers import BaseQuantizer

    return sum(isinstance(m, BaseQuantizer) for m in model.modules())


def float_copy(model: nn.Module) -> nn.Module:
    """A copy of a QAT model with NNCF hooks removed: same (possibly bias-corrected, fine-tuned) weights, no quantizers.

    NNCF 3 keeps quantizers in a ``__nncf_hooks`` HookStorage child and replaces ``forward`` by an instance attribute;
    removing both restores the plain module.
    """
    model = copy.deepcopy(model)
    for module in model.modules():
        if _HOOKS_ATTR in module._modules:
            del module._modules[_HOOKS_ATTR]
            for attr in ("forward", "_replicate_for_data_parallel"):
                module.__dict__.pop(attr, None)
    if is_quantized(model):
        raise ValueError(
            f"{type(model).__name__} holds NNCF quantizers outside NNCF 3 hook storage (legacy NNCFNetwork?); "
            "only models quantized with NNCF 3 (nncf.quantize / nncf_bootstrapnas quantization) are supported"
        )
    return model


class _Wrapper(nn.Module):
    """nncf.quantize adds a hook-storage child to the model it gets; a bare nn.Sequential would then call it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any) -> Any:
        return self.model(*args)


def batch_inputs(batch: Any, num_inputs: int) -> Inputs:
    """Model inputs from one loader batch: ``x``, ``(x, y, ...)``, ``[x]``, ``(x1, .., xn, y...)``, ``((x1, .., xn), y)``."""
    if isinstance(batch, torch.Tensor):
        if num_inputs == 1:
            return (batch,)
    elif isinstance(batch, (tuple, list)) and batch:
        head = batch[:num_inputs]
        if len(head) == num_inputs and all(isinstance(t, torch.Tensor) for t in head):
            return tuple(head)
        if isinstance(batch[0], (tuple, list)) and len(batch[0]) == num_inputs:
            return as_inputs(batch[0], "calibration batch inputs")
    raise ValueError(
        f"cannot read model inputs from a calibration batch of type {type(batch).__name__} for a model with "
        f"{num_inputs} input(s); allowed: a tensor, (inputs..., labels...) or ((inputs...), labels...)"
    )


def batch_format(batch: Any) -> str:
    if isinstance(batch, torch.Tensor) or (isinstance(batch, (tuple, list)) and len(batch) == 1):
        return "inputs"
    return "(inputs, labels)"


def loader_batch_size(loader: Iterable[Any], first: Inputs) -> int:
    size = getattr(loader, "batch_size", None)
    return int(size) if isinstance(size, int) and size > 0 else int(first[0].shape[0]) if first[0].dim() else 1


def calibrate(
    model: nn.Module, loader: Iterable[Any], num_inputs: int, num_samples: int
) -> tuple[nn.Module, dict[str, Any]]:
    """Post-training quantization with nncf.quantize; returns the fake-quantized torch model and what was used.

    NNCF's ``subset_size`` counts loader iterations, so ``num_samples`` is turned into a number of batches.
    """
    import nncf

    first = next(iter(loader), None)
    if first is None:
        raise ValueError("the calibration DataLoader passed as int8=... is empty")
    fmt = batch_format(first)
    first_inputs = batch_inputs(first, num_inputs)
    batch_size = loader_batch_size(loader, first_inputs)
    subset_size = max(1, math.ceil(num_samples / batch_size))

    def transform(batch: Any) -> Any:
        inputs = batch_inputs(batch, num_inputs)
        return inputs[0] if num_inputs == 1 else inputs

    target = _Wrapper(model) if isinstance(model, nn.Sequential) else model
    quantized = nncf.quantize(target.eval(), nncf.Dataset(loader, transform), subset_size=subset_size)
    info = {
        "mode": "post-training (nncf.quantize)",
        "batch_format": fmt,
        "batch_size": batch_size,
        "num_calibration_samples": num_samples,
        "subset_size_batches": subset_size,
        "num_quantizers": count_quantizers(quantized),
    }
    return quantized.eval(), info


def first_batch_inputs(loader: Iterable[Any]) -> Inputs:
    """Example input from a calibration loader when the caller gave none (its first batch, inputs only)."""
    first = next(iter(loader), None)
    if first is None:
        raise ValueError("the calibration DataLoader passed as int8=... is empty")
    if isinstance(first, torch.Tensor):
        return (first,)
    if isinstance(first, (tuple, list)) and first:
        if isinstance(first[0], (tuple, list)):
            return as_inputs(first[0], "calibration batch inputs")
        return (first[0],)
    raise ValueError(f"cannot read an example input from a calibration batch of type {type(first).__name__}")
