"""OpenVINO benchmarking: sync latency (LATENCY hint) and async throughput (THROUGHPUT hint, AsyncInferQueue).

Settings that change the numbers are read back from the compiled model and recorded with the result, because an
OpenVINO default can differ between machines (e.g. CPUs with AMX/AVX512-BF16 run FP32 IRs in bf16 by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nncf_bootstrapnas.config.sections import BenchmarkSection, section_of
from nncf_bootstrapnas.deployment._utils import (
    convert_to_openvino,
    count_ops,
    cpu_model_name,
    is_supernet,
)
from nncf_bootstrapnas.utils.progress import progress_bar

MODES = ("latency", "throughput")
_REFRESH_S = 0.1
_COMPUTE_LAYERS = {"Convolution", "GroupConvolution", "Deconvolution", "FullyConnected", "MatMul", "Gemm"}
_RECORDED = (
    "PERFORMANCE_HINT",
    "INFERENCE_NUM_THREADS",
    "NUM_STREAMS",
    "OPTIMAL_NUMBER_OF_INFER_REQUESTS",
    "INFERENCE_PRECISION_HINT",
    "EXECUTION_DEVICES",
)


@dataclass
class BenchmarkResult:
    """Latency (ms, batch ``batch_size``, sync) and throughput (samples/s) with the settings that produced them."""

    device: str
    input_shapes: list[list[int]]
    batch_size: int
    time_budget_s: float
    latency_ms_median: float | None = None
    latency_ms_p90: float | None = None
    latency_ms_mean: float | None = None
    latency_ms_min: float | None = None
    latency_iterations: int = 0
    throughput_fps: float | None = None
    throughput_iterations: int = 0
    num_requests: int | None = None
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_precision: str = "fp32"
    fake_quantize_ops: int = 0
    runtime_precisions: dict[str, int] = field(default_factory=dict)
    device_name: str = ""
    cpu: str = ""
    ov_version: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return asdict(self)


def _as_module(obj: Any) -> nn.Module:
    """A supernet is benchmarked as its active subnet; anything else must be a torch module."""
    if is_supernet(obj):
        return obj.extract(getattr(obj, "active_config", None))
    return obj


def _normalise_shapes(input_shape: Any) -> list[list[int]] | None:
    if input_shape is None:
        return None
    shapes = [input_shape] if all(isinstance(d, int) for d in input_shape) else list(input_shape)
    if not shapes or not all(isinstance(s, Sequence) and all(isinstance(d, int) for d in s) for s in shapes):
        raise ValueError(f"input_shape={input_shape!r}; allowed: a shape like (1, 3, 32, 32) or a list of shapes")
    return [list(s) for s in shapes]


def load_ov_model(xml_or_model: Any, input_shape: Any = None) -> Any:
    """ov.Model from a .xml/.onnx path, an ov.Model (cloned, we reshape it), a torch module or a supernet."""
    import openvino as ov

    shapes = _normalise_shapes(input_shape)
    if isinstance(xml_or_model, (str, Path)):
        path = Path(xml_or_model)
        if path.suffix not in (".xml", ".onnx") or not path.is_file():
            raise ValueError(f"cannot benchmark '{path}': expected an existing OpenVINO .xml or .onnx file")
        return ov.Core().read_model(str(path))
    if isinstance(xml_or_model, ov.Model):
        return xml_or_model.clone()
    module = _as_module(xml_or_model)
    if isinstance(module, nn.Module):
        if shapes is None:
            example = getattr(xml_or_model, "example_input", None)
            example = getattr(module, "example_input", None) if example is None else example
            if example is None:
                raise ValueError(f"input_shape is required to convert the torch module {type(module).__name__}")
            shapes = [list(x.shape) for x in ((example,) if isinstance(example, torch.Tensor) else example)]
        example = tuple(torch.randn(s) for s in shapes)
        was_training = module.training
        try:
            return convert_to_openvino(module.eval(), example, dynamic_batch=False)
        finally:
            module.train(was_training)
    raise TypeError(
        f"cannot benchmark {type(xml_or_model).__name__}; allowed: path to .xml/.onnx, ov.Model, torch nn.Module, supernet"
    )


def _static_shapes(model: Any, shapes: list[list[int]] | None, batch_size: int) -> list[list[int]]:
    """Input shapes to benchmark: given or the model's own, with the batch dimension set to ``batch_size``."""
    if shapes is None:
        shapes = []
        for port in model.inputs:
            ps = port.partial_shape
            dims = [d.get_length() if d.is_static else -1 for d in ps]
            if any(d < 0 for d in dims[1:]):
                raise ValueError(f"input '{port.get_any_name()}' has dynamic shape {ps}; pass input_shape=...")
            shapes.append(dims)
    if len(shapes) != len(model.inputs):
        raise ValueError(f"{len(shapes)} input shape(s) given for a model with {len(model.inputs)} inputs")
    return [[batch_size, *s[1:]] if s else s for s in shapes]


def _random_inputs(model: Any, shapes: list[list[int]]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = []
    for port, shape in zip(model.inputs, shapes):
        dtype = port.get_element_type().to_dtype()
        if np.issubdtype(dtype, np.floating):
            arrays.append(rng.standard_normal(shape).astype(dtype))
        else:
            arrays.append(np.zeros(shape, dtype=dtype))
    return arrays


def _read_settings(compiled: Any) -> dict[str, Any]:
    out = {}
    for name in _RECORDED:
        try:
            value = compiled.get_property(name)
        except Exception:  # noqa: BLE001 - not every device reports every property
            continue
        out[name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    """Property values as JSON data: ov.Type -> "bf16", enums -> "LATENCY", lists kept."""
    if isinstance(value, (int, float, bool, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "to_string"):  # ov.Type
        return value.to_string()
    return getattr(value, "name", None) or str(value)


def _runtime_precisions(compiled: Any) -> dict[str, int]:
    """Execution precision of compute layers as the plugin actually runs them (u8/i8 = INT8 kernels)."""
    counts: dict[str, int] = {}
    try:
        for op in compiled.get_runtime_model().get_ops():
            info = op.get_rt_info()
            if "layerType" in info and str(info["layerType"].astype(str)) in _COMPUTE_LAYERS:
                precision = str(info["runtimePrecision"].astype(str))
                counts[precision] = counts.get(precision, 0) + 1
    except Exception:  # noqa: BLE001 - runtime model details are plugin-specific
        pass
    return counts


def _compile(core: Any, model: Any, device: str, hint: str, num_threads: int | None, precision: str | None) -> Any:
    config: dict[str, Any] = {"PERFORMANCE_HINT": hint}
    if num_threads is not None:
        config["INFERENCE_NUM_THREADS"] = int(num_threads)
    if precision is not None:
        config["INFERENCE_PRECISION_HINT"] = precision
    return core.compile_model(model, device, config)


def _latency(compiled: Any, inputs: list[np.ndarray], budget: float, warmup: int, bar: Any) -> list[float]:
    request = compiled.create_infer_request()
    for port, arr in zip(compiled.inputs, inputs):
        request.get_tensor(port).data[...] = arr
    for _ in range(warmup):
        request.infer()
    times: list[float] = []
    start = shown = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        request.infer()
        t1 = time.perf_counter()
        times.append((t1 - t0) * 1e3)
        if t1 - shown >= _REFRESH_S:  # a progress update costs microseconds: not after every inference
            bar.update(completed=min(t1 - start, budget))
            shown = t1
        if t1 - start >= budget and len(times) >= 3:
            return times


def _throughput(
    compiled: Any, inputs: list[np.ndarray], budget: float, warmup: int, bar: Any
) -> tuple[int, float, int]:
    import openvino as ov

    n_requests = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    queue = ov.AsyncInferQueue(compiled, n_requests)
    for i in range(len(queue)):
        for port, arr in zip(compiled.inputs, inputs):
            queue[i].get_tensor(port).data[...] = arr  # fill the pool's own tensors, as OpenVINO's sample does
    for _ in range(max(warmup, n_requests)):
        queue.start_async()
    queue.wait_all()
    count = 0
    start = shown = time.perf_counter()
    while (now := time.perf_counter()) - start < budget:
        queue.start_async()  # blocks until a request of the pool is idle
        count += 1
        if now - shown >= _REFRESH_S:
            bar.update(completed=min(now - start, budget))
            shown = now
    queue.wait_all()
    return count, time.perf_counter() - start, n_requests


def benchmark(
    xml_or_model: Any,
    input_shape: Sequence[int] | Sequence[Sequence[int]] | None = None,
    options: Any = None,
    *,
    mode: str | Sequence[str] = MODES,
    inference_precision: str | None = None,
    progress: bool | None = None,
    **overrides: Any,
) -> BenchmarkResult:
    """Benchmark on an OpenVINO device; ``time_budget_s`` is per mode, the batch dimension is set to ``batch_size``.

    ``options``: a ``BenchmarkSection`` (``cfg.sections.benchmark``), a loaded ``Config``, a full or bare dict, or
    None (schema defaults); ``overrides`` change single keys (``device``, ``time_budget_s``, ``warmup_iters``,
    ``batch_size``, ``num_threads``, ``inference_precision``). ``inference_precision`` None (and none in the
    options) keeps the device default (recorded in ``settings``); "f32" forces FP32 math. ``progress=None`` shows a progress bar when a mode runs for 2 s or
    more.
    """
    import openvino as ov

    opts = section_of(options, BenchmarkSection, key="benchmark")
    changes = {k: v for k, v in overrides.items() if v is not None}
    opts = opts.replace(**changes) if changes else opts
    device, time_budget_s, warmup_iters = opts.device, float(opts.time_budget_s), opts.warmup_iters
    batch_size, num_threads = opts.batch_size, opts.num_threads
    inference_precision = inference_precision or opts.inference_precision
    modes = (mode,) if isinstance(mode, str) else tuple(mode)
    if not modes or any(m not in MODES for m in modes):
        raise ValueError(f"mode={mode!r}; allowed: any of {MODES}")
    model = load_ov_model(xml_or_model, input_shape)
    shapes = _static_shapes(model, _normalise_shapes(input_shape), batch_size)
    model.reshape({model.input(i): ov.PartialShape(s) for i, s in enumerate(shapes)})
    inputs = _random_inputs(model, shapes)
    core = ov.Core()
    fq = count_ops(model, "FakeQuantize")
    result = BenchmarkResult(
        device=device,
        input_shapes=shapes,
        batch_size=batch_size,
        time_budget_s=time_budget_s,
        fake_quantize_ops=fq,
        model_precision="int8 (FakeQuantize)" if fq else _weights_precision(model),
        cpu=cpu_model_name(),
        ov_version=ov.get_version(),
    )
    try:
        result.device_name = str(core.get_property(device, "FULL_DEVICE_NAME"))
    except Exception:  # noqa: BLE001 - virtual devices (AUTO, HETERO) may not report it
        result.device_name = device
    show = time_budget_s >= 2.0 if progress is None else progress
    for m in modes:
        hint = "LATENCY" if m == "latency" else "THROUGHPUT"
        compiled = _compile(core, model, device, hint, num_threads, inference_precision)
        result.settings[m] = _read_settings(compiled)
        result.runtime_precisions = result.runtime_precisions or _runtime_precisions(compiled)
        with progress_bar(
            f"benchmark {m} on {device}", time_budget_s, show, transient=True, stderr=True, counts=False
        ) as bar:
            if m == "latency":
                times = np.asarray(_latency(compiled, inputs, time_budget_s, warmup_iters, bar))
                result.latency_ms_median = float(np.median(times))
                result.latency_ms_p90 = float(np.percentile(times, 90))
                result.latency_ms_mean = float(times.mean())
                result.latency_ms_min = float(times.min())
                result.latency_iterations = int(times.size)
            else:
                count, elapsed, n_requests = _throughput(compiled, inputs, time_budget_s, warmup_iters, bar)
                result.throughput_fps = count * batch_size / elapsed
                result.throughput_iterations = count
                result.num_requests = n_requests
        result.settings[m]["num_requests"] = 1 if m == "latency" else result.num_requests
    return result


def _weights_precision(model: Any) -> str:
    """IRs saved with compress_to_fp16 (ov.save_model's default) keep f16 constants, decompressed at compile time."""
    types = {op.get_output_element_type(0).to_string() for op in model.get_ops() if op.get_type_name() == "Constant"}
    return "fp16 weights" if "f16" in types else "fp32"


def measure_latency(
    model_or_subnet: Any,
    input_shape: Sequence[int],
    budget: float = 0.5,
    device: str = "CPU",
    num_threads: int | None = None,
    warmup_iters: int = 5,
) -> float:
    """Median sync latency in ms; torch modules/supernets are converted in memory (no files). For search objectives."""
    result = benchmark(
        model_or_subnet, input_shape, device=device, time_budget_s=budget, warmup_iters=warmup_iters,
        batch_size=int(input_shape[0]) if input_shape else 1, num_threads=num_threads, mode="latency", progress=False,
    )  # fmt: skip
    return float(result.latency_ms_median)


def make_latency_measurer(
    input_shape: Sequence[int],
    budget: float = 0.5,
    device: str = "CPU",
    num_threads: int | None = None,
    lut: Any = None,
) -> Callable[[Any], float]:
    """``fn(model_or_subnet) -> ms``: measured on the device, or estimated from a LatencyLUT when one is given."""
    if lut is not None:
        example = (torch.zeros(tuple(input_shape)),)
        return lambda model: float(lut.estimate(model, example))
    return lambda model: measure_latency(model, input_shape, budget, device, num_threads)
