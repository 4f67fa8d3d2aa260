"""OpenVINO benchmark, in-memory latency measurer and latency LUT; budgets are tiny so the file runs in seconds."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from nncf_bootstrapnas.deployment import LatencyLUT, benchmark, make_latency_measurer, measure_latency
from nncf_bootstrapnas.deployment._utils import convert_to_openvino
from nncf_bootstrapnas.deployment.lut import build_layer_model, layer_signatures

SHAPE = (1, 3, 32, 32)


def _conv_stack(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10),
    ).eval()  # fmt: skip


@pytest.fixture(scope="module")
def ir_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("ir") / "model.xml"
    model = convert_to_openvino(_conv_stack(16), (torch.randn(SHAPE),), dynamic_batch=True)
    ov.save_model(model, str(path), compress_to_fp16=False)
    return path


def test_benchmark_ir_latency_and_throughput_with_settings(ir_path):
    result = benchmark(ir_path, SHAPE, time_budget_s=0.3, warmup_iters=3)
    assert 0 < result.latency_ms_median <= result.latency_ms_p90
    assert result.latency_ms_min <= result.latency_ms_median
    assert result.latency_iterations >= 3 and result.throughput_iterations > 0
    assert result.throughput_fps > 0 and result.num_requests >= 1
    assert result.input_shapes == [list(SHAPE)]  # dynamic batch of the IR fixed to batch_size
    latency, throughput = result.settings["latency"], result.settings["throughput"]
    assert latency["PERFORMANCE_HINT"] == "LATENCY" and throughput["PERFORMANCE_HINT"] == "THROUGHPUT"
    assert latency["num_requests"] == 1 and throughput["num_requests"] == throughput["OPTIMAL_NUMBER_OF_INFER_REQUESTS"]
    for settings in (latency, throughput):
        assert settings["INFERENCE_NUM_THREADS"] >= 1 and settings["NUM_STREAMS"] >= 1
        assert settings["INFERENCE_PRECISION_HINT"] in ("f32", "bf16", "f16")
    assert result.model_precision == "fp32" and result.fake_quantize_ops == 0
    assert result.cpu and result.ov_version == ov.get_version()
    data = result.to_json()
    assert data["latency_ms_p90"] == result.latency_ms_p90 and data["settings"] == result.settings


def test_benchmark_batch_threads_precision_are_applied(ir_path):
    result = benchmark(
        ir_path, SHAPE, time_budget_s=0.2, warmup_iters=2, batch_size=4, num_threads=1,
        mode="throughput", inference_precision="f32",
    )  # fmt: skip
    assert result.input_shapes == [[4, 3, 32, 32]] and result.latency_ms_median is None
    assert result.settings["throughput"]["INFERENCE_NUM_THREADS"] == 1
    assert result.settings["throughput"]["INFERENCE_PRECISION_HINT"] == "f32"
    assert result.runtime_precisions.get("f32", 0) >= 4  # 3 convs + 1 linear executed in f32


def test_benchmark_precision_from_the_config_section(ir_path):
    from nncf_bootstrapnas import load_config

    section = load_config({"benchmark": {"inference_precision": "f32", "time_budget_s": 0.1}}).sections.benchmark
    assert section.inference_precision == "f32"
    assert load_config({}).sections.benchmark.inference_precision is None  # absent: the device's default
    result = benchmark(ir_path, SHAPE, section, warmup_iters=1, mode="latency")
    assert result.settings["latency"]["INFERENCE_PRECISION_HINT"] == "f32"


def test_benchmark_fp16_compressed_ir_records_weights_precision(tmp_path):
    sig = {"op": "Conv2d", "in": 3, "out": 8, "kernel": [3, 3], "stride": [1, 1], "padding": [1, 1]}
    sig |= {"dilation": [1, 1], "groups": 1, "bias": True, "input": list(SHAPE)}
    ov.save_model(build_layer_model(sig), str(tmp_path / "model.xml"))  # compress_to_fp16=True by default
    result = benchmark(tmp_path / "model.xml", time_budget_s=0.05, warmup_iters=1, mode="latency")
    assert result.model_precision == "fp16 weights"


def test_benchmark_onnx_file(tmp_path):
    path = tmp_path / "model.onnx"
    torch.onnx.export(_small_stack(8), (torch.randn(SHAPE),), str(path), dynamo=False, opset_version=17)
    result = benchmark(path, time_budget_s=0.05, warmup_iters=1, mode="latency")
    assert result.latency_ms_median > 0 and result.input_shapes == [list(SHAPE)]


def test_benchmark_int8_model_records_precision():
    import nncf

    model = _conv_stack(16)
    data = nncf.Dataset([torch.randn(SHAPE) for _ in range(2)])
    quantized = nncf.quantize(_Wrap(model), data, subset_size=2)
    ov_model = convert_to_openvino(quantized, (torch.randn(SHAPE),), dynamic_batch=False)
    result = benchmark(ov_model, time_budget_s=0.2, warmup_iters=2, mode="latency")
    assert result.fake_quantize_ops > 0 and result.model_precision.startswith("int8")
    assert result.runtime_precisions.get("u8", 0) + result.runtime_precisions.get("i8", 0) >= 1


class _Wrap(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def test_latency_measurer_of_supernet_uses_active_subnet():
    class FakeSupernet:
        example_input = (torch.randn(SHAPE),)
        active_config = {"width": {}}

        def extract(self, cfg):
            assert cfg == self.active_config
            return _small_stack(8)

    measurer = make_latency_measurer(SHAPE, budget=0.05, num_threads=1)
    assert measurer(FakeSupernet()) > 0


def test_benchmark_argument_errors(ir_path):
    with pytest.raises(ValueError, match="mode=.*allowed"):
        benchmark(ir_path, SHAPE, mode="fast")
    with pytest.raises(ValueError, match="dynamic shape.*input_shape"):
        benchmark(_dynamic_hw(), time_budget_s=0.1)
    with pytest.raises(ValueError, match="input_shape is required"):
        benchmark(_conv_stack(8), time_budget_s=0.1)
    with pytest.raises(ValueError, match=r"expected an existing OpenVINO \.xml or \.onnx"):
        benchmark(str(ir_path).replace(".xml", ".bin"), SHAPE)


def _dynamic_hw() -> ov.Model:
    import openvino.opset13 as ops

    data = ops.parameter([-1, 3, -1, -1], np.float32)
    return ov.Model([ops.result(ops.relu(data))], [data])


def test_lut_layer_model_matches_torch_layer():
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2).eval()
    (sig,) = layer_signatures(conv, torch.randn(1, 8, 12, 12))
    assert sig["groups"] == 2 and sig["input"] == [1, 8, 12, 12]
    out = ov.compile_model(build_layer_model(sig), "CPU")(np.zeros((1, 8, 12, 12), np.float32))[0]
    assert out.shape == conv(torch.zeros(1, 8, 12, 12)).shape


def _small_stack(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10),
    ).eval()  # fmt: skip


def test_lut_estimate_correlates_with_measured_latency(tmp_path):
    widths = [8, 16, 32, 64, 128]
    lut = LatencyLUT(num_threads=1, budget_per_layer_s=0.02, warmup_iters=2)  # same settings for both sides
    example = torch.randn(SHAPE)
    estimated = [lut.estimate(_small_stack(w), example) for w in widths]
    measured = [measure_latency(_small_stack(w), SHAPE, budget=0.08, num_threads=1, warmup_iters=2) for w in widths]
    rho = spearmanr(estimated, measured).statistic
    assert rho > 0.5, (estimated, measured)
    assert len(lut) == 3 * len(widths)  # 2 convs + 1 linear per width, all distinct

    lut.save(tmp_path / "lut.json")
    loaded = LatencyLUT.load(tmp_path / "lut.json")
    assert loaded.estimate(_small_stack(32), example, measure_missing=False) == pytest.approx(estimated[2])
    with pytest.raises(KeyError, match="not in the LUT"):
        loaded.estimate(_small_stack(24), example, measure_missing=False)
