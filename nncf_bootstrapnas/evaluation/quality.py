"""Super-network quality report: does inherited-weight accuracy rank subnets the way stand-alone training does?

A search trusts the supernet's inherited weights to rank subnets; this report checks that trust on ``num_subnets``
subnets spread over the MACs range. For each subnet it measures the inherited accuracy without and with BN
recalibration, the accuracy after a short stand-alone fine-tune of the extracted subnet (the reference), MACs, params
and zero-cost proxies, then reports Kendall tau, Spearman rho, sparse Kendall tau and top-k overlap of every cheap
signal against the reference, with percentile-bootstrap intervals. MACs and params are baselines: a proxy that does
not beat counting MACs is not worth it. With a stand-alone reference it also compares the selection mechanisms' final
picks within MACs budgets (``quality_selection``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nncf_bootstrapnas.config.search_sections import QualitySection, SearchSection
from nncf_bootstrapnas.config.sections import section_of
from nncf_bootstrapnas.searchable import require
from nncf_bootstrapnas.utils.io import json_safe
from nncf_bootstrapnas.utils.progress import progress_bar

from .measure import (
    ValidateFn,
    finetune,
    first_batch,
    loader_generator_state,
    preserved_config,
    recalibrated_bn,
    restore_loader_generator,
    top1_accuracy,
)
from .quality_selection import compare_selection
from .ranking import bootstrap_ci, rank_agreement
from .report_io import write_report

logger = logging.getLogger("nncf_bootstrapnas")
ACCURACY_COLUMNS = ("inherited_acc", "inherited_bn_acc")
BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95


@dataclass
class QualityReport:
    """Rows (one per subnet, sorted by MACs) and the agreement of each cheap signal with ``reference``."""

    rows: list[dict[str, Any]]
    reference: str
    correlations: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    selection: dict[str, Any] | None = None  # only with a stand-alone reference (fine-tuning ran)

    def tau(self, predictor: str) -> float:
        """Kendall tau of ``predictor`` (e.g. ``"inherited_bn_acc"``, ``"macs"``, ``"proxy:synflow"``)."""
        return self.correlations[predictor]["kendall_tau"]

    def to_json(self) -> dict[str, Any]:
        """Format /1 with keys only added (CIs, ``selection``), so older readers still parse it."""
        data = {
            "format": "nncf_bootstrapnas.quality_report/1",
            "reference": self.reference,
            "settings": self.settings,
            "correlations": self.correlations,
            "rows": self.rows,
            "timings": self.timings,
            "files": self.files,
        }
        if self.selection is not None:
            data["selection"] = self.selection
        return json_safe(data)


def stratified_subnets(supernet: Any, space: Any, num: int, seed: int = 0, pool: int | None = None) -> list[dict]:
    """``num`` subnets spread over MACs: the range of ``pool`` random samples is cut into ``num`` equal-width strata
    and one subnet is taken per stratum; the first is always the minimum and the last the maximum subnet.

    An empty stratum takes the unused sample closest to its centre. Fewer are returned only if the space is smaller.
    """
    if num < 2:
        raise ValueError(f"quality_report.num_subnets must be >= 2 (minimum and maximum subnets), got {num}")
    rng = np.random.default_rng(seed)
    pool = pool or max(200, 25 * num)
    lo_cfg, hi_cfg = space.minimum(), space.maximum()
    seen: dict[tuple[int, ...], dict] = {}
    for cfg in [lo_cfg, hi_cfg] + [space.sample(rng) for _ in range(pool)]:
        seen.setdefault(tuple(space.encode(cfg)), cfg)
    keys = list(seen)
    macs = np.array([supernet.macs(seen[k]) for k in keys], dtype=float)
    lo_key, hi_key = tuple(space.encode(lo_cfg)), tuple(space.encode(hi_cfg))
    chosen = [lo_key]
    edges = np.linspace(macs.min(), macs.max(), num + 1)
    for s in range(1, num - 1):
        used = set(chosen) | {hi_key}
        inside = [i for i, k in enumerate(keys) if edges[s] <= macs[i] < edges[s + 1] and k not in used]
        if inside:
            chosen.append(keys[int(rng.choice(inside))])
            continue
        free = [i for i, k in enumerate(keys) if k not in used]
        if free:
            centre = 0.5 * (edges[s] + edges[s + 1])
            chosen.append(keys[min(free, key=lambda i: (abs(macs[i] - centre), i))])
    if hi_key != lo_key:
        chosen.append(hi_key)
    index = {k: i for i, k in enumerate(keys)}
    return [seen[k] for k in sorted(chosen, key=lambda k: (macs[index[k]], k))]


def _needs(own_space: bool, needs_subnet: bool) -> dict[str, tuple[str, ...]]:
    """Supernet members the report calls (searchable protocol): the extracted subnet only for proxies/fine-tuning."""
    core = ("activate", "active_config", "forward", "macs", "params")
    needs = {"quality_report()": (("search_space",) if own_space else ()) + core}
    if needs_subnet:
        needs["quality_report.proxies / finetune_epochs"] = ("extract",)
    return needs


def quality_options(options: Any = None, **overrides: Any) -> tuple[QualitySection, int]:
    """The ``quality_report`` section of ``options`` (the section, a Config, a full config dict, a bare section dict
    or None) with ``overrides``, and the BN recalibration samples it means: its ``bn_samples``, else the search's
    ``num_bn_adaptation_samples`` of the same config (the one recalibration setting of a run)."""
    section = section_of(options, QualitySection, key="quality_report")
    changes = {k: v for k, v in overrides.items() if v is not None}
    section = section.replace(**changes) if changes else section
    if section.bn_samples is not None:
        return section, section.bn_samples
    whole = isinstance(options, Mapping) and ("bootstrapNAS" in options or hasattr(options, "sections"))
    return section, section_of(options if whole else None, SearchSection).num_bn_adaptation_samples


def _measure(
    supernet: Any,
    space: Any,
    configs: list[dict],
    loaders: tuple[Iterable[Any], Iterable[Any]],
    q: QualitySection,
    bn_samples: int,
    validate: ValidateFn,
    seed: int,
    progress: bool,
) -> list[dict[str, Any]]:
    """One row per config; every subnet sees the same training samples in the same order."""
    from nncf_bootstrapnas.registry import ZERO_COST_PROXIES

    train_loader, val_loader = loaders
    proxy_fns = {p: ZERO_COST_PROXIES.get(p) for p in q.proxies}  # checked with the options: no unknown names
    needs_subnet = bool(proxy_fns) or q.finetune_epochs > 0
    data_state = loader_generator_state(train_loader)
    proxy_batch = first_batch(train_loader) if proxy_fns else None
    rows: list[dict[str, Any]] = []
    with progress_bar("quality report", len(configs), progress) as bar:
        for i, cfg in enumerate(configs):
            t0 = time.perf_counter()
            row: dict[str, Any] = {"index": i, "config": cfg, "encoding": [int(v) for v in space.encode(cfg)]}
            row["macs"], row["params"] = int(supernet.macs(cfg)), int(supernet.params(cfg))
            with preserved_config(supernet):
                supernet.activate(cfg)
                row["inherited_acc"] = float(validate(supernet.eval(), val_loader))
                restore_loader_generator(train_loader, data_state)
                with recalibrated_bn(supernet, train_loader, bn_samples):
                    row["inherited_bn_acc"] = float(validate(supernet.eval(), val_loader))
                    subnet = supernet.extract() if needs_subnet else None
            row["proxies"] = {p: float(fn(subnet, proxy_batch, seed=seed)) for p, fn in proxy_fns.items()}
            if q.finetune_epochs > 0:
                restore_loader_generator(train_loader, data_state)
                finetune(subnet, train_loader, q.finetune_epochs, q.finetune_lr, seed=seed + i)
                row["standalone_acc"] = float(validate(subnet, val_loader))
            row["time_s"] = round(time.perf_counter() - t0, 3)
            rows.append(row)
            info = f"{i + 1}/{len(configs)}: {row['macs'] / 1e6:.2f} MMACs, inherited {row['inherited_bn_acc']:.1f}%"
            bar.advance(info=info)
            logger.debug("quality report: %s", info)
    restore_loader_generator(train_loader, data_state)
    return rows


def correlations_of(
    rows: list[dict[str, Any]],
    reference: str,
    top_k: int,
    proxies: Iterable[str],
    seed: int = 0,
    bootstrap: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> dict[str, dict[str, Any]]:
    """Agreement of every cheap signal with ``reference``, with bootstrap intervals of tau and rho (unless
    ``bootstrap=0``); every signal is resampled with the same seed, so the intervals are paired."""
    ref = [r[reference] for r in rows]
    signals = {c: [r[c] for r in rows] for c in ACCURACY_COLUMNS if c != reference}
    signals |= {"macs": [r["macs"] for r in rows], "params": [r["params"] for r in rows]}
    signals |= {f"proxy:{p}": [r["proxies"][p] for r in rows] for p in proxies}
    out: dict[str, dict[str, Any]] = {}
    for name, values in signals.items():
        out[name] = rank_agreement(values, ref, top_k, name in ACCURACY_COLUMNS)
        if bootstrap > 0:
            out[name] |= bootstrap_ci(values, ref, bootstrap, confidence, seed)
    return out


def _settings(
    q: QualitySection,
    measured: int,
    bn_samples: int,
    seed: int,
    space_size: int,
    bootstrap: int,
    confidence: float,
) -> dict[str, Any]:
    """What the report ran with, recorded so its numbers can be reproduced."""
    return {
        "num_subnets": q.num_subnets,
        "measured_subnets": measured,
        "finetune_epochs": q.finetune_epochs,
        "finetune_lr": q.finetune_lr,
        "top_k": q.top_k,
        "bn_samples": bn_samples,
        "proxies": list(q.proxies),
        "seed": seed,
        "search_space_size": space_size,
        "bootstrap_resamples": int(bootstrap),
        "confidence": float(confidence),
    }


def _check_analysis(bootstrap: int, confidence: float) -> None:
    """Fail before measuring (minutes) rather than after it."""
    if not isinstance(bootstrap, int) or bootstrap < 0:
        raise ValueError(f"quality_report: bootstrap must be an int >= 0 (0: no intervals), got {bootstrap!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"quality_report: confidence must be in (0, 1), got {confidence!r}")


def quality_report(
    supernet: Any,
    train_loader: Iterable[Any],
    val_loader: Iterable[Any],
    options: Any = None,
    *,
    space: Any = None,
    validate_fn: ValidateFn | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    progress: bool = True,
    config: Any = None,
    bootstrap: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    budgets: Sequence[float] | None = None,
    **overrides: Any,
) -> QualityReport:
    """Measure MACs-stratified subnets and report how well cheap signals rank them.

    ``options``: a ``QualitySection`` (``cfg.sections.quality``), a loaded ``Config`` (``config=`` is the same
    argument's older name), a full or bare dict, or None (schema defaults: 8 subnets, 1 epoch, top-3);
    ``overrides`` change single keys (``num_subnets=4``, ``bn_samples=32``, ``proxies=("naswot",)``).
    ``finetune_epochs=0`` skips fine-tuning: the BN-recalibrated inherited accuracy becomes the reference.
    BN adaptation, fine-tuning and the proxies' batch use ``train_loader``; every subnet sees the same samples in the
    same order. The supernet's weights, BN statistics and active subnet are unchanged afterwards.
    ``bootstrap`` resamples (0: none) give ``confidence`` intervals of tau and rho, seeded by ``seed``. With a
    stand-alone reference, ``report.selection`` compares the mechanisms' picks within the MACs ``budgets``
    (default: the 1/3, 2/3 quantiles and the maximum of the measured MACs).
    """
    q, bn_samples = quality_options(options if options is not None else config, **overrides)
    _check_analysis(bootstrap, confidence)
    validate = validate_fn or top1_accuracy
    require(supernet, "quality_report()", _needs(space is None, bool(q.proxies) or q.finetune_epochs > 0), space)
    space = space if space is not None else supernet.search_space
    start = time.perf_counter()
    configs = stratified_subnets(supernet, space, q.num_subnets, seed)
    timings = {"sampling_s": time.perf_counter() - start}
    loaders = (train_loader, val_loader)
    rows = _measure(supernet, space, configs, loaders, q, bn_samples, validate, seed, progress)
    timings["measure_s"] = time.perf_counter() - start - timings["sampling_s"]
    reference = "standalone_acc" if q.finetune_epochs > 0 else "inherited_bn_acc"
    correlations = correlations_of(rows, reference, q.top_k, q.proxies, seed, bootstrap, confidence)
    selection = None
    if reference == "standalone_acc":
        selection = compare_selection(rows, space, q.proxies, reference, budgets, seed)
    settings = _settings(q, len(rows), bn_samples, seed, int(space.size), bootstrap, confidence)
    timings["analysis_s"] = time.perf_counter() - start - timings["sampling_s"] - timings["measure_s"]
    report = QualityReport(rows, reference, correlations, settings, timings, selection=selection)
    if out_dir is not None:
        report.files = write_report(report, Path(out_dir))
    return report


__all__ = ["QualityReport", "correlations_of", "quality_options", "quality_report", "stratified_subnets"]
