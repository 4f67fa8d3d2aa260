"""Deployment steps: export FP32 + INT8 OpenVINO IRs, measure their accuracy in OpenVINO, benchmark them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from nncf_bootstrapnas.cli import stages
from nncf_bootstrapnas.cli.session import Session
from nncf_bootstrapnas.report import ModelRow

if TYPE_CHECKING:
    from nncf_bootstrapnas.pipeline.data import StageData


def export_settings(session: Session) -> Any:
    """The export section, with OpenVINO always among the formats: deployment numbers are OpenVINO numbers."""
    section = session.config.sections.export
    formats = list(section.formats or ["openvino"])
    return section if "openvino" in formats else section.replace(formats=[*formats, "openvino"])


def _int8_source(model: Any, data: StageData, cfg: Any) -> tuple[Any, str]:
    from nncf_bootstrapnas.deployment.quantize import is_quantized

    if is_quantized(model):
        return True, "INT8 from the quantization-aware super-network (QAT)"
    return data.calibration(cfg.num_calibration_samples), f"INT8 by nncf.quantize ({data.dataset} calibration)"


def export_pair(
    session: Session, prefix: str, label: str, model: Any, data: StageData, folder: Path, macs: int | None,
    params: int | None,
) -> list[ModelRow]:  # fmt: skip
    """Export ``model`` to ``folder`` as FP32 (+ INT8) IR and add the two report rows (paths filled, not measured)."""
    cfg = export_settings(session)
    example = tuple(t[:1] for t in _example(model, data))
    fp32 = ModelRow(f"{prefix}_fp32", f"{label} FP32", "FP32", macs=macs, params=params)
    int8 = ModelRow(f"{prefix}_int8", f"{label} INT8", "INT8", macs=macs, params=params)
    int8_arg, how = _int8_source(model, data, cfg) if cfg.int8 else (None, "")
    try:
        result = stages.export_model(model, folder, example, int8_arg, cfg, session.progress)
    except Exception as exc:  # noqa: BLE001 - the INT8 step failing must not hide the FP32 model
        if int8_arg is None:
            raise
        int8.status, int8.reason = "failed", f"INT8 export failed: {type(exc).__name__}: {exc}"
        session.console.print(f"[red]{label}: {int8.reason}; exporting FP32 only")
        int8_arg = None
        result = stages.export_model(model, folder, example, None, cfg, session.progress)
    fp32.path = result.paths.get("openvino")
    if "float twin" in " ".join(result.notes):
        fp32.notes.append("FP32 IR of the QAT-trained weights with the quantizers removed")
    if int8_arg is not None:
        int8.path = result.paths.get("openvino_int8")
        int8.notes.append(how)
        check = result.checks.get("openvino_int8_vs_fp32")
        if check is not None:
            agree = "" if check.top1_agreement is None else f", top-1 agreement {100 * check.top1_agreement:.0f}%"
            int8.notes.append(
                f"INT8 vs FP32 outputs on {check.num_inputs} check inputs: max abs diff {check.max_abs_diff:.3g} "
                f"(output scale {check.output_scale:.3g}){agree}"
            )
    elif int8.status == "done":
        int8.status, int8.reason = "skipped", "export.int8 is false in the config"
    session.report.artifacts[f"{label} export"] = session.rel(folder)
    return [session.report.set_row(fp32), session.report.set_row(int8)]


def _example(model: Any, data: StageData) -> tuple[Any, ...]:
    import torch

    return (torch.zeros(1, *data.input_shape),)


def export_original_and_subnet(
    session: Session, original: Any, supernet: Any, subnet: dict[str, Any] | None, data: StageData,
    subnet_label: str = "best subnet", teacher: Any = None,
) -> None:  # fmt: skip
    """Both exports of the headline table; the subnet gets the BN adaptation the search measured it with (and the
    export section's fine-tune, distilled from ``teacher``, default ``original``). ``original`` None: not exported."""
    space = supernet.search_space
    with session.stage("export", "Export to OpenVINO IR (FP32 + INT8)") as rec:
        exported = session.out / "exported"
        if original is not None:
            export_pair(session, "original", "original", original, data, exported / "original",
                        supernet.macs(space.maximum()), supernet.params(space.maximum()))  # fmt: skip
        else:
            for p in ("FP32", "INT8"):
                session.skipped_row(f"original_{p.lower()}", f"original {p}", p, "original model not in the checkpoint")
        if subnet is None:
            for p in ("FP32", "INT8"):
                session.skipped_row(
                    f"subnet_{p.lower()}", f"{subnet_label} {p}", p, "no subnet chosen (search did not run)"
                )
            rec.details = {"subnet": None}
            return
        model = subnet_module(session, supernet, subnet, data)
        note = specialise(session, model, data, original if teacher is None else teacher)
        rows = export_pair(session, "subnet", subnet_label, model, data, exported / "best_subnet",
                           supernet.macs(subnet), supernet.params(subnet))  # fmt: skip
        for row in rows if note else ():
            row.notes.append(note)
        rec.details = {"subnet": subnet, **({"finetune": note} if note else {})}


def subnet_module(session: Session, supernet: Any, subnet: dict[str, Any], data: StageData) -> Any:
    """The subnet with the BN adaptation the search measured it with, extracted (quantizers kept for QAT)."""
    samples = session.config.sections.search.num_bn_adaptation_samples
    return stages.recalibrated_subnet(supernet, subnet, data.bn, samples)


def specialise(session: Session, model: Any, data: StageData, teacher: Any) -> str | None:
    """The export section's stand-alone fine-tune of the chosen subnet, in place (distilled from ``teacher``, the
    original, when there is one); returns the note for its report rows, None when ``finetune_epochs`` is 0."""
    cfg = session.config.sections.export
    if cfg.finetune_epochs == 0:
        return None
    from nncf_bootstrapnas.evaluation import finetune

    finetune(model, data.train, cfg.finetune_epochs, cfg.finetune_lr, seed=session.seed, teacher=teacher,
             progress=session.progress)  # fmt: skip
    kd = ", distilled from the original" if teacher is not None else ""
    images = data.train_subset or len(data.module.train_indices)
    return f"fine-tuned {cfg.finetune_epochs} epoch(s) on {images} training images before export (lr {cfg.finetune_lr:g}{kd})"


def measure_accuracy(session: Session, data: StageData) -> None:
    """Top-1 of every exported IR through OpenVINO on the full validation split."""
    device = session.config.sections.benchmark.device
    with session.stage("validate", "Validate the deployed models in OpenVINO"):
        for row in session.report.models:
            if row.path is None or row.status != "done" or row.accuracy is not None:
                continue
            try:
                acc, n = stages.openvino_accuracy(row.path, data.val, device)
            except Exception as exc:  # noqa: BLE001 - one broken IR must not hide the others
                row.status, row.reason = "failed", f"OpenVINO inference failed: {type(exc).__name__}: {exc}"
                continue
            row.accuracy = acc
            row.accuracy_source = f"OpenVINO {device}, {data.dataset} validation split ({n} images)"
            session.console.print(f"{row.label}: {acc:.2f}% ({row.accuracy_source})")


def benchmark_all(session: Session, input_shape: tuple[int, ...], options: Any = None) -> None:
    """Latency (LATENCY hint) and throughput (THROUGHPUT hint) of every exported IR, in this one process."""
    cfg = session.config.sections.benchmark if options is None else options
    with session.stage("benchmark", "Benchmark in OpenVINO") as rec:
        for row in session.report.models:
            if row.path is None or row.status != "done":
                continue
            try:
                res = stages.run_benchmark(row.path, (1, *input_shape), cfg, session.progress)
            except Exception as exc:  # noqa: BLE001
                row.status, row.reason = "failed", f"benchmark failed: {type(exc).__name__}: {exc}"
                continue
            row.latency_ms, row.throughput_fps = res.latency_ms_median, res.throughput_fps
            row.notes.append(
                f"runtime precision: {res.settings.get('latency', {}).get('INFERENCE_PRECISION_HINT', '?')}"
            )
            session.report.benchmark_settings = benchmark_settings(res, cfg)
        rec.details = dict(session.report.benchmark_settings)


def benchmark_settings(res: Any, cfg: Any) -> dict[str, Any]:
    lat, thr = res.settings.get("latency", {}), res.settings.get("throughput", {})
    return {
        "device": f"{res.device} ({res.device_name})",
        "cpu": res.cpu,
        "openvino": res.ov_version,
        "batch": res.batch_size,
        "time budget per mode (s)": res.time_budget_s,
        "latency: hint/threads/streams": f"{lat.get('PERFORMANCE_HINT')}/{lat.get('INFERENCE_NUM_THREADS')}/{lat.get('NUM_STREAMS')}",
        "throughput: hint/threads/streams/requests": (
            f"{thr.get('PERFORMANCE_HINT')}/{thr.get('INFERENCE_NUM_THREADS')}/{thr.get('NUM_STREAMS')}/"
            f"{thr.get('num_requests')}"
        ),
        "inference precision": lat.get("INFERENCE_PRECISION_HINT"),
        "num_threads (config)": "OpenVINO default" if cfg.num_threads is None else cfg.num_threads,
    }
