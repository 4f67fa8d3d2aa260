"""Deployment: export a subnet to torch / ONNX / OpenVINO IR (FP32, INT8), checked numerically; benchmark on OpenVINO.

result = export(supernet, "out/", config=best_config, int8=calibration_loader)
bench = benchmark("out/openvino/model.xml", input_shape=(1, 3, 32, 32))
acc, n = ir_accuracy("out/openvino/model.xml", val_loader)   # top-1 % of the deployed model
lut = LatencyLUT(); ms = lut.estimate(model, example_input)
"""

from nncf_bootstrapnas.deployment.accuracy import ir_accuracy
from nncf_bootstrapnas.deployment.benchmark import BenchmarkResult, benchmark, make_latency_measurer, measure_latency
from nncf_bootstrapnas.deployment.checks import ExportMismatchError, FormatCheck, Tolerance
from nncf_bootstrapnas.deployment.exporter import FORMATS, ExportResult, export
from nncf_bootstrapnas.deployment.loading import describe_module, load_exported
from nncf_bootstrapnas.deployment.lut import LatencyLUT

__all__ = [
    "FORMATS",
    "BenchmarkResult",
    "ExportMismatchError",
    "ExportResult",
    "FormatCheck",
    "LatencyLUT",
    "Tolerance",
    "benchmark",
    "describe_module",
    "export",
    "ir_accuracy",
    "load_exported",
    "make_latency_measurer",
    "measure_latency",
]
