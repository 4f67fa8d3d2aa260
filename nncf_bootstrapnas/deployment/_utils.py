"""Small helpers shared by export, checks, benchmark and the latency LUT (inputs, outputs, progress, environment)."""

from __future__ import annotations

import contextlib
import platform
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

Inputs = tuple[torch.Tensor, ...]


def is_supernet(obj: Any) -> bool:
    """Duck typing: anything with ``extract`` and ``example_input`` is a super-network (no import of elasticity/)."""
    return callable(getattr(obj, "extract", None)) and hasattr(obj, "example_input")


def as_inputs(value: Any, what: str = "example_input") -> Inputs:
    """A tensor or a sequence of tensors -> tuple of tensors; anything else is a clear error."""
    if isinstance(value, torch.Tensor):
        return (value,)
    if isinstance(value, Sequence) and value and all(isinstance(v, torch.Tensor) for v in value):
        return tuple(value)
    raise TypeError(f"{what} must be a torch.Tensor or a non-empty tuple/list of tensors, got {type(value).__name__}")


def _extract(supernet: Any, config: dict | None) -> nn.Module:
    """``supernet.extract(config)``; a quantization-aware supernet keeps its quantizers (training's extract_quantized)."""
    from nncf_bootstrapnas.deployment.quantize import is_quantized

    if isinstance(supernet, nn.Module) and is_quantized(supernet):
        try:
            from nncf_bootstrapnas.training.quantized_extraction import extract_quantized
        except ImportError:  # training stage not available: plain extraction drops the quantizers
            return supernet.extract(config)
        return extract_quantized(supernet, config)
    return supernet.extract(config)


def resolve_model(model_or_supernet: Any, config: dict | None, example_input: Any) -> tuple[nn.Module, Inputs]:
    """The module to export (a supernet's extracted subnet) and its example input."""
    if is_supernet(model_or_supernet):
        model = _extract(model_or_supernet, config)
        if example_input is None:
            example_input = model_or_supernet.example_input
    elif isinstance(model_or_supernet, nn.Module):
        if config is not None:
            raise ValueError(
                f"config was given but {type(model_or_supernet).__name__} is not a super-network "
                "(no `extract` method and `example_input` attribute); pass config=None for a plain nn.Module"
            )
        model = model_or_supernet
        if example_input is None:
            example_input = getattr(model, "example_input", None)
    else:
        raise TypeError(
            f"expected a super-network or a torch nn.Module, got {type(model_or_supernet).__name__}",
        )
    if example_input is None:
        raise ValueError(
            f"no example input for {type(model).__name__}: pass example_input=<tensor or tuple of tensors> "
            "(or a calibration DataLoader via int8=..., whose first batch is then used)"
        )
    return model, as_inputs(example_input)


def flatten_outputs(out: Any) -> list[torch.Tensor]:
    """Model outputs (tensor, tuple, list, dict, nested) -> flat list in the order OpenVINO/ONNX number them."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in flatten_outputs(item)]
    raise TypeError(f"model output of type {type(out).__name__} is not a tensor, tuple, list or dict of tensors")


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().contiguous().numpy()


def random_like(inputs: Inputs, generator: torch.Generator, batch: int | None = None) -> Inputs:
    """Random inputs with the statistics of the example (float) or its value range (integer), optional new batch."""
    out = []
    for x in inputs:
        shape = list(x.shape)
        if batch is not None and shape:
            shape[0] = batch
        if x.is_floating_point():
            std = float(x.float().std()) if x.numel() > 1 else 1.0
            std = std if std > 0 else 1.0
            out.append((torch.randn(shape, generator=generator) * std + float(x.float().mean())).to(x.dtype))
        else:
            lo, hi = int(x.min()), int(x.max())
            out.append(torch.randint(lo, hi + 1, shape, generator=generator, dtype=x.dtype))
    return tuple(out)


@contextlib.contextmanager
def quiet_tracing() -> Iterator[None]:
    """Tracing-based converters emit deprecation/tracer warnings that are noise for our users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Exports are of the inference graph; restore the caller's training flag afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def cpu_model_name() -> str:
    """CPU model string from /proc/cpuinfo (Linux), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def versions() -> dict[str, str]:
    """Package versions from metadata (importing nncf just to read its version would cost seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "openvino", "nncf", "onnx"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def convert_to_openvino(model: nn.Module, example: Inputs, dynamic_batch: bool) -> Any:
    """torch module -> ov.Model in memory; input shapes are the example's, with a dynamic batch dimension if asked."""
    import openvino as ov

    shapes = [
        ov.PartialShape([-1 if (dynamic_batch and i == 0) else d for i, d in enumerate(x.shape)]) for x in example
    ]
    with quiet_tracing(), torch.no_grad():
        return ov.convert_model(model, example_input=example[0] if len(example) == 1 else example, input=shapes)


def count_ops(ov_model: Any, type_name: str) -> int:
    return sum(op.get_type_name() == type_name for op in ov_model.get_ops())
