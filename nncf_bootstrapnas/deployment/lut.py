"""Latency lookup table: per-layer latencies measured once per device, summed to estimate a model's latency.

Why: measuring every candidate subnet during search costs a conversion and a benchmark each; most subnets share layer
configurations, so a table keyed by layer signature turns later estimates into dictionary look-ups. Each distinct
conv/linear configuration (channels, kernel, stride, padding, dilation, groups, input shape) is built directly as a
one-layer OpenVINO model (no torch conversion), timed with the LATENCY hint, and stored minus the fixed per-inference
overhead (measured on a trivial model); an estimate is ``overhead + sum(layer latencies)``. Other layers (BN, ReLU,
pooling, additions) are ignored: OpenVINO fuses most of them into the convolutions. The estimate is for ranking
subnets, not for absolute numbers; the table records device, CPU, threads and OpenVINO version.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nncf_bootstrapnas.deployment._utils import (
    as_inputs,
    cpu_model_name,
    eval_mode,
    is_supernet,
)
from nncf_bootstrapnas.deployment.benchmark import _compile, _latency
from nncf_bootstrapnas.utils.io import write_json
from nncf_bootstrapnas.utils.progress import NO_PROGRESS, progress_bar

LUT_FORMAT = "nncf_bootstrapnas.latency_lut/1"
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _signature(module: nn.Module, input_shape: Sequence[int]) -> dict[str, Any] | None:
    shape = [1, *input_shape[1:]]  # per-sample latency: batch 1
    if isinstance(module, _CONVS):
        padding = module.padding if isinstance(module.padding, str) else list(module.padding)
        return {
            "op": f"Conv{len(module.kernel_size)}d", "in": module.in_channels, "out": module.out_channels,
            "kernel": list(module.kernel_size), "stride": list(module.stride), "padding": padding,
            "dilation": list(module.dilation), "groups": module.groups, "bias": module.bias is not None,
            "input": shape,
        }  # fmt: skip
    if isinstance(module, nn.Linear):
        return {
            "op": "Linear", "in": module.in_features, "out": module.out_features,
            "bias": module.bias is not None, "input": shape,
        }  # fmt: skip
    return None


def layer_signatures(model: nn.Module, example_input: Any) -> list[dict[str, Any]]:
    """Signatures of the conv/linear layers a forward pass runs (one per call, so shared layers count each time)."""
    sigs: list[dict[str, Any]] = []

    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        sig = _signature(module, list(args[0].shape))
        if sig is not None:
            sigs.append(sig)

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, (*_CONVS, nn.Linear))]
    try:
        with eval_mode(model), torch.no_grad():
            model(*as_inputs(example_input))
    finally:
        for h in handles:
            h.remove()
    return sigs


def key(signature: dict[str, Any]) -> str:
    return json.dumps(signature, sort_keys=True, separators=(",", ":"))


def build_layer_model(sig: dict[str, Any]) -> Any:
    """A one-layer ov.Model with random constant weights for a signature."""
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    data = ops.parameter(sig["input"], np.float32, name="input")
    if sig["op"] == "Linear":
        weight = rng.standard_normal((sig["out"], sig["in"])).astype(np.float32)
        node = ops.matmul(data, ops.constant(weight), transpose_a=False, transpose_b=True)
        bias_shape = [sig["out"]]
    else:
        nd, groups = len(sig["kernel"]), sig["groups"]
        weight = rng.standard_normal((sig["out"], sig["in"] // groups, *sig["kernel"])).astype(np.float32)
        pads = sig["padding"]
        auto_pad = (
            {"same": "same_upper", "valid": "valid"}.get(pads, "explicit") if isinstance(pads, str) else "explicit"
        )
        pads = [0] * nd if isinstance(pads, str) else pads
        args = (sig["stride"], pads, pads, sig["dilation"], auto_pad)
        if groups == 1:
            node = ops.convolution(data, ops.constant(weight), *args)
        else:
            grouped = weight.reshape(groups, sig["out"] // groups, sig["in"] // groups, *sig["kernel"])
            node = ops.group_convolution(data, ops.constant(grouped), *args)
        bias_shape = [1, sig["out"]] + [1] * nd
    if sig["bias"]:
        node = ops.add(node, ops.constant(rng.standard_normal(bias_shape).astype(np.float32)))
    return ov.Model([ops.result(node)], [data], "layer")


def _overhead_model() -> Any:
    import openvino as ov
    import openvino.opset13 as ops

    data = ops.parameter([1, 8], np.float32, name="input")
    return ov.Model([ops.result(ops.relu(data))], [data], "overhead")


class LatencyLUT:
    """Per-device latency lookup table (ms per layer signature); JSON save/load."""

    def __init__(
        self,
        device: str = "CPU",
        num_threads: int | None = None,
        budget_per_layer_s: float = 0.1,
        warmup_iters: int = 5,
        inference_precision: str | None = None,
    ) -> None:
        import openvino as ov

        self.device, self.num_threads, self.inference_precision = device, num_threads, inference_precision
        self.budget_per_layer_s, self.warmup_iters = budget_per_layer_s, warmup_iters
        self.entries: dict[str, float] = {}
        self.overhead_ms: float | None = None
        self.meta = {"cpu": cpu_model_name(), "ov_version": ov.get_version()}

    def __len__(self) -> int:
        return len(self.entries)

    def _time(self, core: Any, model: Any) -> float:
        compiled = _compile(core, model, self.device, "LATENCY", self.num_threads, self.inference_precision)
        inputs = [np.random.default_rng(0).standard_normal(list(model.input(0).shape)).astype(np.float32)]
        return float(np.median(_latency(compiled, inputs, self.budget_per_layer_s, self.warmup_iters, NO_PROGRESS)))

    def measure(self, signatures: Sequence[dict[str, Any]], progress: bool | None = None) -> int:
        """Measure the signatures not yet in the table; returns how many were measured."""
        import openvino as ov

        missing = list({key(s): s for s in signatures if key(s) not in self.entries}.items())
        if not missing and self.overhead_ms is not None:
            return 0
        core = ov.Core()
        if self.overhead_ms is None:
            self.overhead_ms = self._time(core, _overhead_model())
        show = len(missing) * self.budget_per_layer_s >= 2.0 if progress is None else progress
        with progress_bar(f"latency LUT on {self.device}", len(missing), show, transient=True, stderr=True) as bar:
            for k, sig in missing:
                self.entries[k] = max(0.0, self._time(core, build_layer_model(sig)) - self.overhead_ms)
                bar.advance()
        return len(missing)

    def estimate(self, model_or_supernet: Any, example_input: Any = None, measure_missing: bool = True) -> float:
        """Estimated latency (ms, batch 1) of a torch model or a supernet's active subnet."""
        model = model_or_supernet
        if is_supernet(model_or_supernet):
            model = model_or_supernet.extract(getattr(model_or_supernet, "active_config", None))
            example_input = model_or_supernet.example_input if example_input is None else example_input
        if example_input is None:
            raise ValueError(f"example_input is required to estimate the latency of {type(model).__name__}")
        return self.estimate_signatures(layer_signatures(model, example_input), measure_missing)

    def estimate_signatures(self, signatures: Sequence[dict[str, Any]], measure_missing: bool = True) -> float:
        if measure_missing:
            self.measure(signatures)
        unknown = [key(s) for s in signatures if key(s) not in self.entries]
        if unknown or self.overhead_ms is None:
            raise KeyError(f"{len(unknown)} layer signature(s) not in the LUT (e.g. {unknown[:1]}); measure them first")
        return self.overhead_ms + sum(self.entries[key(s)] for s in signatures)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": LUT_FORMAT, "device": self.device, "num_threads": self.num_threads,
            "inference_precision": self.inference_precision, "budget_per_layer_s": self.budget_per_layer_s,
            "overhead_ms": self.overhead_ms, "meta": self.meta, "entries": self.entries,
        }  # fmt: skip

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_json(), indent=1)

    @classmethod
    def load(cls, path: str | Path) -> LatencyLUT:
        """Load a table; warns when it was measured on another CPU model (its numbers would not transfer)."""
        data = json.loads(Path(path).read_text())
        if data.get("format") != LUT_FORMAT:
            raise ValueError(f"{path} is not a {LUT_FORMAT} latency table (format={data.get('format')!r})")
        lut = cls(data["device"], data["num_threads"], data["budget_per_layer_s"], 5, data["inference_precision"])
        lut.entries = {k: float(v) for k, v in data["entries"].items()}
        lut.overhead_ms = data["overhead_ms"]
        if data["meta"].get("cpu") != lut.meta["cpu"]:
            warnings.warn(
                f"latency LUT {path} was measured on '{data['meta'].get('cpu')}', this machine is '{lut.meta['cpu']}'",
                stacklevel=2,
            )
        lut.meta = data["meta"]
        return lut
