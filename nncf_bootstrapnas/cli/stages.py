"""Calls into the stage packages, one small function each, so an API change is fixed in one place.

Imports are local: ``nncf-bootstrapnas --help`` must not import torch, nncf or openvino.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


# ---- training ------------------------------------------------------------------------------------------------------
def train_supernet(
    model: Any,
    config: Any,
    data: Any,
    validate_fn: Callable[[Any, Any], float],
    checkpoint_dir: Path,
    resume: bool,
    progress: bool,
) -> tuple[Any, dict[str, Any]]:
    """``nncf_bootstrapnas.training.fit``: progressive shrinking (+ quantization when the config asks for it)."""
    from nncf_bootstrapnas.training import TrainingData, fit

    quant = next((c.options for c in config.sections.compression if c.algorithm == "quantization"), {})
    num_calib = int(((quant.get("initializer") or {}).get("range") or {}).get("num_init_samples", 256))
    loaders = TrainingData(data.train, data.val, bn=data.bn, calibration=data.calibration(num_calib))
    out = fit(
        model, loaders, config, val_fn=validate_fn, checkpoint_dir=str(checkpoint_dir), resume=resume,
        progress=progress,
    )  # fmt: skip
    info: dict[str, Any] = {"history": out.history, "best": out.best}
    for name in ("resumed_from", "last_checkpoint"):
        if getattr(out, name) is not None:
            info[name] = str(getattr(out, name))
    return out.supernet, info


# ---- search --------------------------------------------------------------------------------------------------------
def run_search(
    supernet: Any,
    config: Any,
    validate_fn: Callable[[Any, Any], float],
    data: Any,
    out_dir: Path,
    resume: bool,
    progress: bool,
    overrides: dict[str, Any],
) -> Any:
    from nncf_bootstrapnas.subnet_search import search

    settings = {k: v for k, v in overrides.items() if v is not None}
    return search(
        supernet, config, validate_fn, data.val, data.bn, checkpoint_dir=out_dir / "checkpoint", resume=resume,
        progress=progress, **settings,
    )  # fmt: skip


def recalibrated_subnet(supernet: Any, subnet: dict[str, Any], bn_loader: Any, num_samples: int) -> Any:
    """The subnet as a plain module (QAT quantizers kept) with the BN statistics the search measured it with
    (``evaluation.recalibrated``); the supernet itself is left as it was."""
    from nncf_bootstrapnas.evaluation import recalibrated
    from nncf_bootstrapnas.training import extract_quantized

    with recalibrated(supernet, subnet, bn_loader, num_samples) as model:
        return extract_quantized(model, subnet).eval()


# ---- export / deployment -------------------------------------------------------------------------------------------
def export_model(model: Any, out_dir: Path, example: tuple[Any, ...], int8: Any, options: Any, progress: bool) -> Any:
    """``deployment.export`` with the export section. Every artifact is checked against torch; the INT8-vs-FP32
    output distance is reported, not enforced: the deployed INT8 model is judged by its measured accuracy instead."""
    from nncf_bootstrapnas.deployment import export

    return export(
        model, out_dir, options=options, int8=int8, example_input=example, int8_fp32_rtol=None, progress=progress
    )


def run_benchmark(xml: str | Path, input_shape: tuple[int, ...] | None, options: Any, progress: bool) -> Any:
    """``deployment.benchmark`` with the benchmark section."""
    from nncf_bootstrapnas.deployment import benchmark

    return benchmark(str(xml), None if input_shape is None else list(input_shape), options, progress=progress)


def openvino_accuracy(xml: str | Path, loader: Any, device: str = "CPU") -> tuple[float, int]:
    """Top-1 accuracy (%) of an OpenVINO IR over ``loader`` and the number of labelled targets it counted."""
    from nncf_bootstrapnas.deployment import ir_accuracy

    return ir_accuracy(xml, loader, device)


# ---- generator and supernet-quality report -------------------------------------------------------------------------
def train_generator(supernet: Any, config: Any, data: Any, predictor: Any, seed: int, progress: bool) -> Any:
    """SGNAS generator (the generator section); accuracy from a search result (``predictor``) when given, else
    measured on validation data."""
    from nncf_bootstrapnas.generator import train_generator as train

    return train(
        supernet, config, predictor=predictor, train_loader=data.bn, val_loader=data.val, seed=seed, progress=progress
    )


def generate(supernet: Any, generator: Any, constraint: str, value: float, strict: bool) -> dict[str, Any]:
    from nncf_bootstrapnas.generator import generate as one_pass

    return one_pass(supernet, generator, f"{constraint}={value!r}", strict=strict)


def quality_report(
    supernet: Any, config: Any, validate_fn: Callable[..., float], data: Any, out_dir: Path, seed: int, progress: bool
) -> Any:
    """The supernet-quality report; it writes its own files (JSON, Markdown, plot) into ``out_dir``."""
    from nncf_bootstrapnas.evaluation import quality_report as report

    return report(
        supernet, data.bn, data.val, config, validate_fn=validate_fn, out_dir=out_dir, seed=seed, progress=progress
    )
