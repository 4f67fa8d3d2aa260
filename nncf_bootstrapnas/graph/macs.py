"""One MAC counter for the whole project: torch's flop counter plus the CPU attention kernel it does not know.

torch counts ``F.scaled_dot_product_attention`` only for its GPU kernels; on CPU the call lands in
``_scaled_dot_product_flash_attention_for_cpu`` and would count as zero, so attention would look free.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args: Any, out_shape=None, **kwargs: Any) -> int:  # noqa: ANN001
    return sdpa_flop_count(query_shape, key_shape, value_shape)


_EXTRA: dict[Any, Any] = {}
if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
    _EXTRA[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_sdpa_flops


def flop_counter() -> FlopCounterMode:
    return FlopCounterMode(display=False, custom_mapping=_EXTRA)


def count_macs(model: torch.nn.Module, *inputs: torch.Tensor) -> int:
    """MACs of one forward of ``model`` on ``inputs`` (multiply-accumulates = flops / 2).

    Runs with gradients enabled: under ``no_grad`` ``nn.MultiheadAttention`` takes a fused kernel that no counter sees.
    """
    with torch.enable_grad(), flop_counter() as counter:
        model(*inputs)
    return int(counter.get_total_flops()) // 2
