"""Numerical checks of exported artifacts against the torch model: a mismatch is an error, never a warning.

Tolerance rule (per model output ``i``): ``max|got_i - ref_i| <= max(atol, rtol * scale_i, noise * qerr_i)`` where
``scale_i`` is the largest ``|ref_i|`` over all check inputs and ``qerr_i`` the largest quantization error of the torch
fake-quantized model (``|fq_i - fp32_i|``; INT8 only). FP32 defaults (1e-4, 1e-4) mean "1e-4 relative to the output
scale, with an absolute floor of 1e-4 for outputs near zero".

Why INT8 needs the quantization-error term: NNCF's torch emulation and OpenVINO round values that sit exactly half-way
between two levels differently (measured: 2 of 432 conv weights of a random layer land on such ties, and quantized
activations averaged or added produce more). Each tie moves one value by one level, so the IR deviates from the torch
fake-quantized model by a fraction of the quantization error itself; with coarse grids (a small subnet of a supernet
calibrated at its maximum) that reached ~10% of the output scale, about 1.2x the quantization error. A wrong scale,
zero-point or layout gives errors far above twice the quantization error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nncf_bootstrapnas.deployment._utils import Inputs, flatten_outputs, to_numpy


@dataclass(frozen=True)
class Tolerance:
    """Absolute floor and tolerance relative to the output scale."""

    atol: float
    rtol: float
    noise: float = 0.0  # multiple of the quantization error allowed (INT8 IR vs torch fake-quantized model)

    def bound(self, scale: float, quantization_error: float = 0.0) -> float:
        return max(self.atol, self.rtol * scale, self.noise * quantization_error)


# FP32 artifacts (TorchScript/torch.export program, ONNX, OpenVINO IR run with f32 inference precision).
FP32_TOLERANCE = Tolerance(atol=1e-4, rtol=1e-4)
# INT8 IR vs the torch fake-quantized model: same quantization grid, different rounding of ties (module docstring).
INT8_TOLERANCE = Tolerance(atol=1e-3, rtol=5e-2, noise=2.0)
# INT8 IR vs the FP32 torch model: quantization error, not an export error. Only gross degradation (broken
# calibration: wrong data, wrong transform) exceeds half of the output scale.
INT8_VS_FP32_RTOL = 0.5


class ExportMismatchError(RuntimeError):
    """An exported artifact does not reproduce the reference outputs within tolerance (or cannot run at all)."""

    def __init__(self, fmt: str, max_abs_diff: float, tolerance: float, path: str = "", detail: str = "") -> None:
        self.format = fmt
        self.max_abs_diff = max_abs_diff
        self.tolerance = tolerance
        self.path = path
        where = f" ({path})" if path else ""
        if math.isinf(max_abs_diff):  # could not be compared at all (failed to run, wrong shapes)
            super().__init__(f"{fmt} export{where} does not match the torch model: {detail}")
            return
        msg = f"{fmt} export{where} does not match: max abs diff {max_abs_diff:.4g} > tolerance {tolerance:.4g}"
        super().__init__(msg + (f"; {detail}" if detail else ""))


@dataclass
class FormatCheck:
    """Result of checking one format; ``max_abs_diff`` is over all outputs and check inputs."""

    format: str
    reference: str
    max_abs_diff: float
    tolerance: float
    output_scale: float
    num_inputs: int
    atol: float
    rtol: float
    top1_agreement: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def torch_outputs(model: nn.Module | Callable[..., Any], inputs: Sequence[Inputs]) -> list[list[np.ndarray]]:
    """Reference outputs, one flat list of arrays per input tuple."""
    with torch.no_grad():
        return [[to_numpy(t) for t in flatten_outputs(model(*x))] for x in inputs]


def openvino_outputs(model: Any, inputs: Sequence[Inputs], device: str = "CPU") -> list[list[np.ndarray]]:
    """Run an ov.Model or a .xml/.onnx path in f32 inference precision (CPUs with AMX default to bf16)."""
    import openvino as ov
    import openvino.properties.hint as hints

    core = ov.Core()
    if not isinstance(model, ov.Model):
        model = core.read_model(str(model))
    config = {hints.inference_precision: ov.Type.f32} if device.startswith("CPU") else {}
    compiled = core.compile_model(model, device, config)
    request = compiled.create_infer_request()
    results = []
    for x in inputs:
        out = request.infer([to_numpy(t) for t in x])
        results.append([np.array(out[port]) for port in compiled.outputs])
    return results


def compare(
    fmt: str,
    reference: str,
    ref: list[list[np.ndarray]],
    got: list[list[np.ndarray]],
    tolerance: Tolerance,
    path: str = "",
    raise_on_mismatch: bool = True,
    fp32: list[list[np.ndarray]] | None = None,
) -> FormatCheck:
    """Compare per output with the tolerance rule above; raise ExportMismatchError naming format, diff, tolerance.

    ``fp32``: FP32 outputs for the same inputs when ``ref`` is a fake-quantized model (gives the quantization error).
    """
    if len(ref) != len(got):
        raise ExportMismatchError(fmt, math.inf, 0.0, path, f"{len(got)} results for {len(ref)} inputs")
    n_out = len(ref[0])
    for j, (r, g) in enumerate(zip(ref, got)):
        if len(g) != n_out:
            raise ExportMismatchError(fmt, math.inf, 0.0, path, f"{len(g)} outputs, expected {n_out} (input #{j})")
        for i, (a, b) in enumerate(zip(r, g)):
            if tuple(a.shape) != tuple(b.shape):
                detail = f"output #{i} has shape {tuple(b.shape)}, expected {tuple(a.shape)} (input #{j})"
                raise ExportMismatchError(fmt, math.inf, 0.0, path, detail)
    scales = [max(float(np.abs(r[i]).max(initial=0.0)) for r in ref) for i in range(n_out)]
    qerr = [max(_max_diff(r[i], f[i]) for r, f in zip(ref, fp32)) if fp32 else 0.0 for i in range(n_out)]
    worst = (0.0, 0.0, 0.0, -1, -1)  # ratio, diff, bound, output, input
    max_diff = 0.0
    for j, (r, g) in enumerate(zip(ref, got)):
        for i in range(n_out):
            diff = _max_diff(r[i], g[i])
            bound = tolerance.bound(scales[i], qerr[i])
            max_diff = max(max_diff, diff)
            ratio = diff / bound if bound > 0 else math.inf
            if ratio >= worst[0]:
                worst = (ratio, diff, bound, i, j)
    check = FormatCheck(
        format=fmt,
        reference=reference,
        max_abs_diff=max_diff,
        tolerance=worst[2],
        output_scale=scales[worst[3]] if worst[3] >= 0 else 0.0,
        num_inputs=len(ref),
        atol=tolerance.atol,
        rtol=tolerance.rtol,
        top1_agreement=top1_agreement(ref, got),
    )
    if fp32:
        check.extra.update(noise=tolerance.noise, quantization_error=qerr[max(worst[3], 0)])
    if raise_on_mismatch and worst[0] > 1.0:
        rule = f"max(atol={tolerance.atol:g}, rtol={tolerance.rtol:g} x output scale {check.output_scale:.4g}"
        if fp32:
            rule += f", {tolerance.noise:g} x quantization error {qerr[worst[3]]:.4g}"
        detail = f"worst on output #{worst[3]} for check input #{worst[4]} vs {reference} (tolerance = {rule}))"
        raise ExportMismatchError(fmt, worst[1], worst[2], path, detail)
    return check


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    diff = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max(initial=0.0))
    return diff if math.isfinite(diff) else math.inf


def top1_agreement(ref: list[list[np.ndarray]], got: list[list[np.ndarray]]) -> float | None:
    """Share of rows whose argmax agrees on output #0, when that output looks like logits (N x C, C > 1)."""
    if not ref or ref[0][0].ndim != 2 or ref[0][0].shape[1] < 2:
        return None
    same = sum(int((r[0].argmax(1) == g[0].argmax(1)).sum()) for r, g in zip(ref, got))
    return same / sum(r[0].shape[0] for r in ref)


def run_or_raise(fmt: str, path: str, fn: Callable[[], list[list[np.ndarray]]]) -> list[list[np.ndarray]]:
    """An artifact that cannot even run on the check inputs is an export failure too."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - any runtime failure of the artifact is reported as a mismatch
        raise ExportMismatchError(fmt, math.inf, 0.0, path, f"failed to run on the check inputs: {e}") from e
