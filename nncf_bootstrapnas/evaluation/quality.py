"""Super-network quality report: does inherited-weight accuracy rank subnets the way stand-alone training does?

A search trusts the supernet's inherited weights to rank subnets; this report checks that trust on ``num_subnets``
subnets spread over the MACs range. For each subnet it measures the inherited accuracy without and with BN
recalibration, the accuracy after a short stand-alone fine-tune of the extracted subnet (the reference), MACs, params
and zero-cost proxies, then reports Kendall tau, Spearman rho, sparse Kendall tau and top-k overlap of every cheap
signal against the reference. MACs and params are baselines: a proxy that does not beat counting MACs is not worth it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
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
from .ranking import rank_agreement
from .report_io import write_report

logger = logging.getLogger("nncf_bootstrapnas")
ACCURACY_COLUMNS = ("inherited_acc", "inherited_bn_acc")


@dataclass
class QualityReport:
    """Rows (one per subnet, sorted by MACs) and the agreement of each cheap signal with ``reference``."""

    rows: list[dict[str, Any]]
    reference: str
    correlations: dict[str, dict[str, float]]
    settings: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def tau(self, predictor: str) -> float:
        """Kendall tau of ``predictor`` (e.g. ``"inherited_bn_acc"``, ``"macs"``, ``"proxy:synflow"``)."""
        return self.correlations[predictor]["kendall_tau"]

    def to_json(self) -> dict[str, Any]:
        return json_safe(
            {
                "format": "nncf_bootstrapnas.quality_report/1",
                "reference": self.reference,
                "settings": self.settings,
                "correlations": self.correlations,
                "rows": self.rows,
                "timings": self.timings,
                "files": self.files,
            }
        )


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
    **overrides: Any,
) -> QualityReport:
    """Measure MACs-stratified subnets and report how well cheap signals rank them.

    ``options``: a ``QualitySection`` (``cfg.sections.quality``), a loaded ``Config`` (``config=`` is the same
    argument's older name), a full or bare dict, or None (schema defaults: 8 subnets, 1 epoch, top-3);
    ``overrides`` change single keys (``num_subnets=4``, ``bn_samples=32``, ``proxies=("naswot",)``).
    ``finetune_epochs=0`` skips fine-tuning: the BN-recalibrated inherited accuracy becomes the reference.
    BN adaptation, fine-tuning and the proxies' batch use ``train_loader``; every subnet sees the same samples in the
    same order. The supernet's weights, BN statistics and active subnet are unchanged afterwards.
    """
    q, bn_samples = quality_options(options if options is not None else config, **overrides)
    from nncf_bootstrapnas.registry import ZERO_COST_PROXIES

    proxy_fns = {p: ZERO_COST_PROXIES.get(p) for p in q.proxies}  # checked with the options: no unknown names
    validate = validate_fn or top1_accuracy
    needs_subnet = bool(proxy_fns) or q.finetune_epochs > 0
    require(supernet, "quality_report()", _needs(space is None, needs_subnet), space)
    space = space if space is not None else supernet.search_space
    start = time.perf_counter()
    configs = stratified_subnets(supernet, space, q.num_subnets, seed)
    timings = {"sampling_s": time.perf_counter() - start}
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
    timings["measure_s"] = time.perf_counter() - start - timings["sampling_s"]

    reference = "standalone_acc" if q.finetune_epochs > 0 else "inherited_bn_acc"
    ref = [r[reference] for r in rows]
    columns = [c for c in ACCURACY_COLUMNS if c != reference] + ["macs", "params"]
    correlations = {c: rank_agreement([r[c] for r in rows], ref, q.top_k, c in ACCURACY_COLUMNS) for c in columns}
    for p in proxy_fns:
        correlations[f"proxy:{p}"] = rank_agreement([r["proxies"][p] for r in rows], ref, q.top_k, False)
    settings = {
        "num_subnets": q.num_subnets,
        "measured_subnets": len(rows),
        "finetune_epochs": q.finetune_epochs,
        "finetune_lr": q.finetune_lr,
        "top_k": q.top_k,
        "bn_samples": bn_samples,
        "proxies": list(proxy_fns),
        "seed": seed,
        "search_space_size": int(space.size),
    }
    report = QualityReport(rows, reference, correlations, settings, timings)
    if out_dir is not None:
        report.files = write_report(report, Path(out_dir))
    return report


__all__ = ["QualityReport", "quality_options", "quality_report", "stratified_subnets"]
