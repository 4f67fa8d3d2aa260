"""``export``: a (sub)network to torch / ONNX / OpenVINO IR FP32 (+ INT8 IR), each artifact checked numerically."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.config.sections import ExportSection, section_of
from nncf_bootstrapnas.deployment import quantize as q
from nncf_bootstrapnas.deployment._utils import (
    Inputs,
    convert_to_openvino,
    count_ops,
    eval_mode,
    flatten_outputs,
    quiet_tracing,
    random_like,
    resolve_model,
    versions,
)
from nncf_bootstrapnas.deployment.checks import (
    FP32_TOLERANCE,
    INT8_TOLERANCE,
    INT8_VS_FP32_RTOL,
    ExportMismatchError,
    FormatCheck,
    Tolerance,
    compare,
    openvino_outputs,
    run_or_raise,
    torch_outputs,
)
from nncf_bootstrapnas.deployment.loading import load_exported, load_program, save_torch
from nncf_bootstrapnas.utils.io import json_safe, write_json
from nncf_bootstrapnas.utils.progress import progress_bar

FORMATS = ("torch", "onnx", "openvino")
ONNX_OPSET = 17


@dataclass
class ExportResult:
    """What was written where, and how each artifact compared with the torch model (also saved as export.json)."""

    out_dir: str
    formats: list[str]
    paths: dict[str, str] = field(default_factory=dict)
    checks: dict[str, FormatCheck] = field(default_factory=dict)
    input_shapes: list[list[int]] = field(default_factory=list)
    output_shapes: list[list[int]] = field(default_factory=list)
    dynamic_batch: dict[str, bool] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    int8: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def max_abs_diff(self) -> dict[str, float]:
        return {name: check.max_abs_diff for name, check in self.checks.items()}

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        data = asdict(self)
        data["checks"] = {name: check.to_json() for name, check in self.checks.items()}
        return json_safe(data, default=str)


class _CheckInputs:
    """Check inputs: the example, random batches like it, one with another batch size, a few calibration batches."""

    def __init__(self, model: nn.Module, example: Inputs, extra: list[Inputs], n_random: int, seed: int, dynamic: bool):
        gen = torch.Generator().manual_seed(seed)
        self.batch = int(example[0].shape[0]) if example[0].dim() else 1
        self.inputs = [example] + [random_like(example, gen) for _ in range(max(0, n_random - 1))] + extra
        self.notes: list[str] = []
        if dynamic and example[0].dim():
            varied = random_like(example, gen, batch=self.batch + 1)
            try:
                with torch.no_grad():
                    model(*varied)
                self.inputs.append(varied)
            except Exception as e:  # noqa: BLE001 - the torch model itself fixes the batch size
                self.notes.append(f"torch model does not run with batch {self.batch + 1} ({e}); batch kept static")
        self.dynamic = dynamic and not self.notes

    def select(self, dynamic: bool) -> list[Inputs]:
        if dynamic:
            return self.inputs
        return [x for x in self.inputs if all(t.shape[:1] == (self.batch,) for t in x if t.dim())]


def _validate(formats: tuple[str, ...], int8: Any) -> None:
    if not (int8 is None or isinstance(int8, bool) or isinstance(int8, Iterable)):
        raise TypeError(
            f"int8={type(int8).__name__}; allowed: None/False (no INT8), True (model is already quantization-aware) "
            "or a calibration DataLoader of (inputs, labels) or input batches"
        )
    if not formats and not int8:
        raise ValueError("export.formats is empty and no INT8 IR is asked for (int8): nothing to export")


@dataclass
class _Job:
    """Everything one export needs, resolved and validated."""

    model: nn.Module  # as given (QAT or float)
    float_model: nn.Module  # FP32 formats are exported from this
    example: Inputs
    out: Path
    formats: tuple[str, ...]
    qat: bool
    int8: bool
    loader: Any
    num_calibration_samples: int
    fp32_tol: Tolerance
    int8_tol: Tolerance
    int8_fp32_rtol: float | None
    extra_inputs: list[Inputs]


def export(
    supernet_or_model: Any,
    out_dir: str | Path,
    config: dict[str, Any] | None = None,
    options: Any = None,
    *,
    int8: bool | Iterable[Any] | None = None,
    example_input: torch.Tensor | Sequence[torch.Tensor] | None = None,
    rtol: float | None = None,
    dynamic_batch: bool = True,
    int8_tolerance: Tolerance = INT8_TOLERANCE,
    int8_fp32_rtol: float | None = INT8_VS_FP32_RTOL,
    num_check_batches: int = 3,
    seed: int = 0,
    progress: bool = True,
    **overrides: Any,
) -> ExportResult:
    """Export the subnet ``supernet.extract(config)`` (or the module itself) and check every artifact.

    ``options``: an ``ExportSection`` (``cfg.sections.export``), a loaded ``Config``, a full or bare dict, or None
    (schema defaults); ``overrides`` change single keys (``formats=("openvino",)``, ``atol=1e-4``,
    ``num_calibration_samples=100``). ``int8``: a calibration loader (post-training quantization), True (the model is
    quantization-aware) or None (the section's ``int8``).
    FP32 artifacts are compared with the torch model within ``max(atol, rtol * output scale)`` (rtol default 1e-4),
    the INT8 IR with the torch fake-quantized model (``int8_tolerance``: max(1e-3, 5e-2 x scale, 2 x its quantization
    error), see checks.py for why) and, as a sanity bound on quantization error, with the FP32 model
    (``int8_fp32_rtol`` x output scale; None reports without raising). Check inputs: the example,
    ``num_check_batches - 1`` random batches like it, one with another batch size (when ``dynamic_batch``) and the first
    two calibration batches. Raises ExportMismatchError; export.json is written in every case.
    """
    opts = section_of(options, ExportSection, key="export")
    changes = {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items() if v is not None}
    opts = opts.replace(**changes) if changes else opts
    formats = opts.formats
    int8 = opts.int8 if int8 is None else int8
    _validate(formats, int8)
    loader = int8 if int8 is not None and not isinstance(int8, bool) else None
    if example_input is None and loader is not None and not hasattr(supernet_or_model, "example_input"):
        example_input = tuple(x[:1] for x in q.first_batch_inputs(loader))
    model, example = resolve_model(supernet_or_model, config, example_input)
    num_calibration_samples, atol = opts.num_calibration_samples, opts.atol
    qat = q.is_quantized(model)
    if int8 is True and not qat:
        raise ValueError(
            f"int8=True means the model is already quantization-aware, but {type(model).__name__} holds no NNCF "
            "quantizers; pass a calibration DataLoader as int8=... to quantize it after training"
        )
    if qat and loader is not None:
        raise ValueError(f"{type(model).__name__} is already quantized by NNCF; pass int8=True instead of a DataLoader")
    job = _Job(
        model=model,
        float_model=q.float_copy(model) if qat else model,
        example=example,
        out=Path(out_dir),
        formats=formats,
        qat=qat,
        int8=bool(int8),
        loader=loader,
        num_calibration_samples=num_calibration_samples,
        fp32_tol=Tolerance(atol, FP32_TOLERANCE.rtol if rtol is None else rtol),
        int8_tol=int8_tolerance,
        int8_fp32_rtol=int8_fp32_rtol,
        extra_inputs=[q.batch_inputs(b, len(example)) for b in itertools.islice(loader, 2)] if loader else [],
    )
    job.out.mkdir(parents=True, exist_ok=True)
    result = ExportResult(out_dir=str(job.out), formats=list(formats), config=config, versions=versions())
    if qat:
        result.notes.append("model holds NNCF quantizers: FP32 formats are its float twin (quantizers removed)")
        if not int8:
            result.notes.append("no INT8 IR written: pass int8=True to convert the quantization-aware model")
    result.paths["export_json"] = str(job.out / "export.json")
    try:
        with eval_mode(model), eval_mode(job.float_model):
            _run(job, result, num_check_batches, seed, dynamic_batch, progress)
    except ExportMismatchError as e:
        result.error = str(e)
        raise
    finally:
        write_json(job.out / "export.json", result.to_json(), indent=1)
    return result


def _run(job: _Job, result: ExportResult, num_check_batches: int, seed: int, dynamic: bool, progress: bool) -> None:
    with torch.no_grad():
        outputs = flatten_outputs(job.float_model(*job.example))
    result.input_shapes = [list(x.shape) for x in job.example]
    result.output_shapes = [list(t.shape) for t in outputs]
    inputs = _CheckInputs(job.float_model, job.example, job.extra_inputs, num_check_batches, seed, dynamic)
    result.notes += inputs.notes
    ref = dict(zip(map(id, inputs.inputs), torch_outputs(job.float_model, inputs.inputs)))

    def check(name: str, path: str, dynamic: bool, run: Any) -> None:
        selected = inputs.select(dynamic)
        got = run_or_raise(name, path, lambda: run(selected))
        result.checks[name] = compare(name, "torch fp32", [ref[id(x)] for x in selected], got, job.fp32_tol, path)
        result.dynamic_batch[name] = dynamic

    with progress_bar("export", len(job.formats) + job.int8, progress, transient=True, stderr=True) as bar:
        if "torch" in job.formats:
            bar.update(description="export: torch")
            _export_torch(job.float_model, job.example, job.out, result, check)
            bar.advance()
        if "onnx" in job.formats:
            bar.update(description="export: ONNX")
            with _step("ONNX (torch.onnx.export, legacy TorchScript exporter)", job.float_model):
                path = _export_onnx(
                    job.float_model, job.example, len(outputs), job.out / "onnx" / "model.onnx", inputs.dynamic
                )
            result.paths["onnx"] = str(path)
            check("onnx", str(path), inputs.dynamic, lambda x: openvino_outputs(path, x))
            bar.advance()
        if "openvino" in job.formats:
            bar.update(description="export: OpenVINO IR")
            with _step("OpenVINO IR (ov.convert_model)", job.float_model):
                ir = _save_ir(convert_to_openvino(job.float_model, job.example, inputs.dynamic), job.out / "openvino")
            result.paths["openvino"] = str(ir)
            check("openvino", str(ir), inputs.dynamic, lambda x: openvino_outputs(ir, x))
            bar.advance()
        if job.int8:
            bar.update(description="export: INT8 IR")
            with bar.suspended(), _step("INT8 IR", job.model):  # nncf.quantize shows its own rich progress
                qmodel = _export_int8(job, result, inputs.dynamic)
            selected = inputs.select(inputs.dynamic)
            fp32_ref = [ref[id(x)] for x in selected]
            _check_int8(result, qmodel, selected, fp32_ref, job.int8_tol, job.int8_fp32_rtol, inputs.dynamic)
            bar.advance()


@contextlib.contextmanager
def _step(what: str, model: nn.Module) -> Iterator[None]:
    """Converter errors are long and generic; say which artifact of which model failed (ValueErrors are ours)."""
    try:
        yield
    except (ExportMismatchError, ValueError):
        raise
    except Exception as e:
        raise RuntimeError(f"export of {type(model).__name__} to {what} failed: {e}") from e


def _check_int8(
    result: ExportResult,
    qmodel: nn.Module,
    inputs: list[Inputs],
    fp32_ref: list[list[Any]],
    tolerance: Tolerance,
    fp32_rtol: float | None,
    dynamic: bool,
) -> None:
    """INT8 IR vs the torch fake-quantized model (export fidelity) and vs FP32 (gross quantization failure)."""
    path = result.paths["openvino_int8"]
    got = run_or_raise("openvino_int8", path, lambda: openvino_outputs(path, inputs))
    reference = (
        "torch fake-quantized (" + ("nncf.quantize" if result.int8["mode"].startswith("post") else "QAT model") + ")"
    )
    fq_ref = torch_outputs(qmodel, inputs)
    result.checks["openvino_int8"] = compare("openvino_int8", reference, fq_ref, got, tolerance, path, fp32=fp32_ref)
    vs_fp32 = Tolerance(atol=tolerance.atol, rtol=fp32_rtol if fp32_rtol is not None else 1.0)
    result.checks["openvino_int8_vs_fp32"] = compare(
        "openvino_int8_vs_fp32", "torch fp32", fp32_ref, got, vs_fp32, path, raise_on_mismatch=fp32_rtol is not None
    )
    result.dynamic_batch["openvino_int8"] = dynamic


def _export_torch(model: nn.Module, example: Inputs, out: Path, result: ExportResult, check: Any) -> None:
    info = save_torch(model, example, out / "torch")
    result.paths.update(info["paths"])
    result.notes += info["notes"]
    program = info["paths"]["torch_program"]
    if info["reconstructable"]:
        loaded = load_exported(out, prefer="module")
        check("torch", info["paths"]["torch_state_dict"], True, lambda x: torch_outputs(loaded, x))
        name = "torch_program"
    else:
        name = "torch"
    program_model = load_program(program, allow_pickle=info["program"] == "pickle")
    check(name, program, info["dynamic_batch"], lambda x: torch_outputs(program_model, x))


def _export_onnx(model: nn.Module, example: Inputs, n_outputs: int, path: Path, dynamic: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    in_names = ["input"] if len(example) == 1 else [f"input{i}" for i in range(len(example))]
    out_names = ["output"] if n_outputs == 1 else [f"output{i}" for i in range(n_outputs)]
    axes = {name: {0: "batch"} for name in in_names + out_names} if dynamic else None
    with quiet_tracing(), torch.no_grad():
        torch.onnx.export(
            model, example, str(path), dynamo=False, opset_version=ONNX_OPSET,
            input_names=in_names, output_names=out_names, dynamic_axes=axes,
        )  # fmt: skip
    return path


def _save_ir(ov_model: Any, folder: Path) -> Path:
    import openvino as ov

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.xml"
    ov.save_model(ov_model, str(path), compress_to_fp16=False)  # FP32 weights: the check is against FP32 torch
    return path


def _export_int8(job: _Job, result: ExportResult, dynamic: bool) -> nn.Module:
    """INT8 IR from the QAT model or from nncf.quantize(float model); FakeQuantize ops carry the INT8 semantics."""
    model, example, out = job.model, job.example, job.out
    if job.loader is None:
        qmodel, info = model, {"mode": "quantization-aware (NNCF quantizers in the model)"}
        info["num_quantizers"] = q.count_quantizers(model)
        if "torch" in result.formats:
            _save_qat_state(model, out / "torch", result)
    else:
        qmodel, info = q.calibrate(model, job.loader, len(example), job.num_calibration_samples)
    ov_model = convert_to_openvino(qmodel, example, dynamic_batch=dynamic)
    info["fake_quantize_ops"] = count_ops(ov_model, "FakeQuantize")
    if info["fake_quantize_ops"] == 0:
        raise RuntimeError(
            f"INT8 export of {type(model).__name__}: the converted IR has no FakeQuantize operations, so it would run "
            "in floating point; the model has no quantizable operations or NNCF inserted no quantizers"
        )
    result.paths["openvino_int8"] = str(_save_ir(ov_model, out / "openvino_int8"))
    result.int8 = info
    return qmodel


def _save_qat_state(model: nn.Module, folder: Path, result: ExportResult) -> None:
    """QAT state for users with the model code: nncf.torch.load_from_config(model, cfg) then load_state_dict."""
    import nncf.torch

    try:
        cfg = nncf.torch.get_config(model)
    except Exception as e:  # noqa: BLE001 - e.g. hooks on a submodule rather than on the root
        result.notes.append(f"QAT state not saved (nncf.torch.get_config failed: {e})")
        return
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(cfg, folder / "nncf_config.pt")
    torch.save(model.state_dict(), folder / "qat_state_dict.pt")
    result.paths.update(
        torch_nncf_config=str(folder / "nncf_config.pt"), torch_qat_state_dict=str(folder / "qat_state_dict.pt")
    )
