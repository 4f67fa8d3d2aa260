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
    from nncf_bootstrapnas.training import fit

    quant = next((c for c in config.compression if c.get("algorithm") == "quantization"), {})
    num_calib = int(((quant.get("initializer") or {}).get("range") or {}).get("num_init_samples", 256))
    calibration = data.module.calibration_loader(min(num_calib, len(data.module.train_indices)), batch_size=32)
    out = fit(
        model, data.train, data.val, config, val_fn=validate_fn, bn_loader=data.bn, calibration_loader=calibration,
        checkpoint_dir=str(checkpoint_dir), resume=resume, progress=progress,
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


def adapt_bn(model: Any, loader: Any, num_samples: int) -> None:
    """The same BN re-estimation the search applied before measuring a subnet."""
    if num_samples <= 0:
        return
    from nncf_bootstrapnas.training.bn_adaptation import adapt_batchnorm

    adapt_batchnorm(model, loader, num_samples)


def extract_subnet(supernet: Any, subnet: dict[str, Any] | None) -> Any:
    """A plain module of the subnet, keeping the QAT quantizers of a quantized supernet."""
    from nncf_bootstrapnas.deployment.quantize import is_quantized
    from nncf_bootstrapnas.training.quantized_extraction import extract_quantized

    return extract_quantized(supernet, subnet) if is_quantized(supernet) else supernet.extract(subnet)


# ---- export / deployment -------------------------------------------------------------------------------------------
def export_model(
    model: Any, out_dir: Path, example: tuple[Any, ...], int8: Any, export_cfg: dict[str, Any], progress: bool
) -> Any:
    """Every artifact is checked against torch; the INT8-vs-FP32 output distance is reported, not enforced: the
    deployed INT8 model is judged by its measured validation accuracy instead."""
    from nncf_bootstrapnas.deployment import export

    return export(
        model, out_dir, formats=tuple(export_cfg.get("formats", ("openvino",))), int8=int8, example_input=example,
        atol=export_cfg.get("atol"), num_calibration_samples=int(export_cfg.get("num_calibration_samples", 300)),
        int8_fp32_rtol=None, progress=progress,
    )  # fmt: skip


def run_benchmark(
    xml: str | Path, input_shape: tuple[int, ...] | None, bench_cfg: dict[str, Any], progress: bool
) -> Any:
    from nncf_bootstrapnas.deployment import benchmark

    return benchmark(
        str(xml), input_shape=None if input_shape is None else list(input_shape), device=bench_cfg.get("device", "CPU"),
        time_budget_s=float(bench_cfg.get("time_budget_s", 10)), warmup_iters=int(bench_cfg.get("warmup_iters", 10)),
        batch_size=int(bench_cfg.get("batch_size", 1)), num_threads=bench_cfg.get("num_threads"), progress=progress,
    )  # fmt: skip


def openvino_accuracy(xml: str | Path, loader: Any, device: str = "CPU") -> tuple[float, int]:
    """Top-1 accuracy (%) of an OpenVINO IR over ``loader`` and the number of labelled targets it counted."""
    import numpy as np
    import openvino as ov

    from nncf_bootstrapnas.data import IGNORE_INDEX

    core = ov.Core()
    model = core.read_model(str(xml))
    static_batch = model.input(0).get_partial_shape()[0].is_static
    compiled = core.compile_model(model, device)
    output = compiled.output(0)
    correct = total = 0
    for images, targets in loader:
        x, y = images.numpy(), targets.numpy()
        chunks = [x[i : i + 1] for i in range(len(x))] if static_batch else [x]
        logits = np.concatenate([compiled([c])[output] for c in chunks], axis=0)
        valid = y != IGNORE_INDEX
        correct += int(((logits.argmax(axis=1) == y) & valid).sum())
        total += int(valid.sum())
    if total == 0:
        raise ValueError("the validation loader yielded no labelled samples")
    return 100.0 * correct / total, total


# ---- generator and supernet-quality report -------------------------------------------------------------------------
def train_generator(
    supernet: Any, config: Any, constraint: str, data: Any, predictor: Any, seed: int, progress: bool
) -> Any:
    """SGNAS generator; accuracy from a search result (``predictor``) when given, else measured on validation data."""
    from nncf_bootstrapnas.generator import train_generator as train

    return train(
        supernet, config=config, constraint=constraint, val_loader=data.val, train_loader=data.bn,
        predictor=predictor, seed=seed, progress=progress,
    )  # fmt: skip


def generate(supernet: Any, generator: Any, constraint: str, value: float, strict: bool) -> dict[str, Any]:
    from nncf_bootstrapnas.generator import generate as one_pass

    return one_pass(supernet, generator, f"{constraint}={value!r}", strict=strict)


def quality_report(
    supernet: Any, config: Any, validate_fn: Callable[..., float], data: Any, out_dir: Path, seed: int, progress: bool
) -> Any:
    """The supernet-quality report; it writes its own files (JSON, Markdown, plot) into ``out_dir``."""
    from nncf_bootstrapnas.evaluation import quality_report as report

    return report(
        supernet, data.bn, data.val, config=config, validate_fn=validate_fn, out_dir=out_dir, seed=seed,
        progress=progress,
    )  # fmt: skip
