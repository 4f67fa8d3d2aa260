"""Adapters to the stage packages: each call sits in one small function so an API change is fixed in one place.

A package that is not importable yet raises :class:`StageUnavailable`; the CLI reports the stage as unavailable and
skips it. Nothing here substitutes a value for a stage that did not run.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nncf_bootstrapnas.cli.errors import StageUnavailable


def _attr(module: str, *names: str) -> Any:
    """The first of ``names`` found in ``module``; StageUnavailable naming what is missing otherwise."""
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise StageUnavailable(f"{module} is not available in this build ({exc})") from None
    for name in names:
        if hasattr(mod, name):
            return getattr(mod, name)
    raise StageUnavailable(f"{module} has no {' / '.join(names)} yet")


def _accepted(fn: Callable[..., Any], candidates: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``fn`` accepts (all of them if it takes ``**kwargs``)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return candidates
    return {k: v for k, v in candidates.items() if k in params}


def find_supernet(obj: Any) -> Any:
    """The super-network in whatever ``fit`` returned (a module, a tuple, or a result object)."""
    from nncf_bootstrapnas.training.algorithm import is_supernet, unwrap

    seen: list[Any] = [obj]
    if isinstance(obj, (tuple, list)):
        seen += list(obj)
    for name in ("supernet", "model"):
        if hasattr(obj, name):
            seen.append(getattr(obj, name))
    for item in seen:
        try:
            candidate = unwrap(item)
        except Exception:  # noqa: BLE001 - not a module
            continue
        if is_supernet(candidate):
            return candidate
    raise TypeError(f"fit() returned {type(obj).__name__}, in which no super-network was found")


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
    fit = _attr("nncf_bootstrapnas.training", "fit")
    quant = next((c for c in config.compression if c.get("algorithm") == "quantization"), {})
    num_calib = int(((quant.get("initializer") or {}).get("range") or {}).get("num_init_samples", 256))
    calibration = data.module.calibration_loader(min(num_calib, len(data.module.train_indices)), batch_size=32)
    candidates = {
        "val_fn": validate_fn,
        "bn_loader": data.bn,
        "calibration_loader": calibration,
        "checkpoint_dir": str(checkpoint_dir),
        "resume": resume,
        "progress": progress,
    }
    out = fit(model, data.train, data.val, config, **_accepted(fit, candidates))
    supernet = find_supernet(out)
    info: dict[str, Any] = {}
    for name in ("history", "best", "resumed_from", "last_checkpoint"):
        value = getattr(out, name, None)
        if value is not None and not callable(value):
            info[name] = value if isinstance(value, (list, dict)) else str(value)
    return supernet, info


def convert_only(model: Any, config: Any) -> Any:
    """The untrained super-network (used when training is unavailable, so search still runs on real weights)."""
    from nncf_bootstrapnas.elasticity import create_supernet

    return create_supernet(model, config)


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
    search = _attr("nncf_bootstrapnas.subnet_search", "search")
    settings = {k: v for k, v in overrides.items() if v is not None}
    return search(
        supernet, config, validate_fn, data.val, data.bn, checkpoint_dir=out_dir / "checkpoint", resume=resume,
        progress=progress, **settings,
    )  # fmt: skip


def adapt_bn(model: Any, loader: Any, num_samples: int) -> None:
    """The same BN re-estimation the search applied before measuring a subnet."""
    if num_samples <= 0:
        return
    adapt = _attr("nncf_bootstrapnas.training.bn_adaptation", "adapt_batchnorm")
    adapt(model, loader, num_samples)


def extract_subnet(supernet: Any, subnet: dict[str, Any] | None) -> Any:
    """A plain module of the subnet, keeping the QAT quantizers of a quantized supernet."""
    from nncf_bootstrapnas.deployment.quantize import is_quantized

    if is_quantized(supernet):
        extract = _attr("nncf_bootstrapnas.training.quantized_extraction", "extract_quantized")
        return extract(supernet, subnet)
    return supernet.extract(subnet)


# ---- export / deployment -------------------------------------------------------------------------------------------
def export_model(
    model: Any, out_dir: Path, example: tuple[Any, ...], int8: Any, export_cfg: dict[str, Any], progress: bool
) -> Any:
    """Every artifact is checked against torch; the INT8-vs-FP32 output distance is reported, not enforced: the
    deployed INT8 model is judged by its measured validation accuracy instead."""
    export = _attr("nncf_bootstrapnas.deployment", "export")
    return export(
        model, out_dir, formats=tuple(export_cfg.get("formats", ("openvino",))), int8=int8, example_input=example,
        atol=export_cfg.get("atol"), num_calibration_samples=int(export_cfg.get("num_calibration_samples", 300)),
        int8_fp32_rtol=None, progress=progress,
    )  # fmt: skip


def run_benchmark(
    xml: str | Path, input_shape: tuple[int, ...] | None, bench_cfg: dict[str, Any], progress: bool
) -> Any:
    benchmark = _attr("nncf_bootstrapnas.deployment", "benchmark")
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
    fn = _attr("nncf_bootstrapnas.generator", "train_generator")
    candidates = {"config": config, "constraint": constraint, "val_loader": data.val, "train_loader": data.bn,
                  "predictor": predictor, "seed": seed, "progress": progress}  # fmt: skip
    return fn(supernet, **_accepted(fn, candidates))


def generate(supernet: Any, generator: Any, constraint: str, value: float, strict: bool) -> dict[str, Any]:
    fn = _attr("nncf_bootstrapnas.generator", "generate")
    return fn(supernet, generator, f"{constraint}={value!r}", **_accepted(fn, {"strict": strict}))


def quality_report(
    supernet: Any, config: Any, validate_fn: Callable[..., float], data: Any, out_dir: Path, seed: int, progress: bool
) -> Any:
    """The supernet-quality report; it writes its own files (JSON, Markdown, plot) into ``out_dir``."""
    fn = _attr("nncf_bootstrapnas.evaluation", "quality_report")
    candidates = {"config": config, "validate_fn": validate_fn, "out_dir": out_dir, "seed": seed, "progress": progress}
    return fn(supernet, data.bn, data.val, **_accepted(fn, candidates))
