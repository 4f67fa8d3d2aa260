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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._common import (
    ValidateFn,
    adapt_bn,
    finetune,
    first_batch,
    loader_generator_state,
    preserved_batchnorm,
    preserved_config,
    restore_loader_generator,
    top1_accuracy,
)
from .ranking import rank_agreement
from .report_io import plain, write_report

logger = logging.getLogger("nncf_bootstrapnas")
DEFAULT_PROXIES = ("synflow", "snip", "grad_norm", "fisher", "jacob_cov", "naswot")
QUALITY_SCHEMA = "deployment.schema.json#/$defs/quality_report"
DEFAULT_BN_SAMPLES = 256
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
        return plain(
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


def _section(config: Mapping[str, Any] | None) -> tuple[dict[str, Any], int | None]:
    if config is None:
        return {}, None
    section = dict(config.get("quality_report") or {})
    search = (config.get("bootstrapNAS") or {}).get("search") or {}
    bn = (search.get("batchnorm_adaptation") or {}).get("num_bn_adaptation_samples")
    return section, bn


def quality_report(
    supernet: Any,
    train_loader: Iterable[Any],
    val_loader: Iterable[Any],
    num_subnets: int | None = None,
    finetune_epochs: int | None = None,
    top_k: int | None = None,
    bn_samples: int | None = None,
    proxies: Sequence[str] = DEFAULT_PROXIES,
    seed: int = 0,
    out_dir: str | Path | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    space: Any = None,
    validate_fn: ValidateFn | None = None,
    finetune_lr: float = 1e-3,
    progress: bool = True,
) -> QualityReport:
    """Measure ``num_subnets`` MACs-stratified subnets and report how well cheap signals rank them.

    Budget: explicit arguments, else the config's ``quality_report`` section, else the schema defaults (8 subnets,
    1 epoch, top-3). ``bn_samples`` defaults to ``bootstrapNAS.search.batchnorm_adaptation`` or 256.
    ``finetune_epochs=0`` skips fine-tuning: the BN-recalibrated inherited accuracy becomes the reference.
    BN adaptation, fine-tuning and the proxies' batch use ``train_loader``; every subnet sees the same samples in the
    same order. The supernet's weights, BN statistics and active subnet are unchanged afterwards.
    """
    section, cfg_bn = _section(config)
    from nncf_bootstrapnas.config.schema import schemas

    budget = {k: section.get(k, v) for k, v in schemas().defaults(QUALITY_SCHEMA).items()}
    num_subnets = int(num_subnets if num_subnets is not None else budget["num_subnets"])
    finetune_epochs = int(finetune_epochs if finetune_epochs is not None else budget["finetune_epochs"])
    top_k = int(top_k if top_k is not None else budget["top_k"])
    bn_samples = int(bn_samples if bn_samples is not None else (cfg_bn or DEFAULT_BN_SAMPLES))
    if finetune_epochs < 0 or top_k < 1 or bn_samples < 0:
        raise ValueError(
            f"quality_report: finetune_epochs must be >= 0 (got {finetune_epochs}), top_k >= 1 (got {top_k}), "
            f"bn_samples >= 0 (got {bn_samples})"
        )
    from nncf_bootstrapnas.registry import ZERO_COST_PROXIES

    proxy_fns = {p: ZERO_COST_PROXIES.get(p) for p in proxies}  # unknown names fail before any measurement
    validate = validate_fn or top1_accuracy
    space = space if space is not None else supernet.search_space
    start = time.perf_counter()
    configs = stratified_subnets(supernet, space, num_subnets, seed)
    timings = {"sampling_s": time.perf_counter() - start}
    data_state = loader_generator_state(train_loader)
    proxy_batch = first_batch(train_loader) if proxy_fns else None

    rows: list[dict[str, Any]] = []
    with _progress(progress, len(configs)) as advance:
        for i, cfg in enumerate(configs):
            t0 = time.perf_counter()
            row: dict[str, Any] = {"index": i, "config": cfg, "encoding": [int(v) for v in space.encode(cfg)]}
            row["macs"], row["params"] = int(supernet.macs(cfg)), int(supernet.params(cfg))
            with preserved_config(supernet), preserved_batchnorm(supernet):
                supernet.activate(cfg)
                row["inherited_acc"] = float(validate(supernet.eval(), val_loader))
                if bn_samples > 0:
                    restore_loader_generator(train_loader, data_state)
                    adapt_bn(supernet, train_loader, bn_samples)
                row["inherited_bn_acc"] = float(validate(supernet.eval(), val_loader))
                subnet = supernet.extract()
            row["proxies"] = {p: float(fn(subnet, proxy_batch, seed=seed)) for p, fn in proxy_fns.items()}
            if finetune_epochs > 0:
                restore_loader_generator(train_loader, data_state)
                finetune(subnet, train_loader, finetune_epochs, finetune_lr, seed=seed + i)
                row["standalone_acc"] = float(validate(subnet, val_loader))
            row["time_s"] = round(time.perf_counter() - t0, 3)
            rows.append(row)
            advance(f"{i + 1}/{len(configs)}: {row['macs'] / 1e6:.2f} MMACs, inherited {row['inherited_bn_acc']:.1f}%")
    restore_loader_generator(train_loader, data_state)
    timings["measure_s"] = time.perf_counter() - start - timings["sampling_s"]

    reference = "standalone_acc" if finetune_epochs > 0 else "inherited_bn_acc"
    ref = [r[reference] for r in rows]
    columns = [c for c in ACCURACY_COLUMNS if c != reference] + ["macs", "params"]
    correlations = {c: rank_agreement([r[c] for r in rows], ref, top_k, c in ACCURACY_COLUMNS) for c in columns}
    for p in proxy_fns:
        correlations[f"proxy:{p}"] = rank_agreement([r["proxies"][p] for r in rows], ref, top_k, False)
    settings = {
        "num_subnets": num_subnets,
        "measured_subnets": len(rows),
        "finetune_epochs": finetune_epochs,
        "finetune_lr": finetune_lr,
        "top_k": top_k,
        "bn_samples": bn_samples,
        "proxies": list(proxy_fns),
        "seed": seed,
        "search_space_size": int(space.size),
    }
    report = QualityReport(rows, reference, correlations, settings, timings)
    if out_dir is not None:
        report.files = write_report(report, Path(out_dir))
    return report


class _progress:
    """A rich progress bar over subnets (or nothing); ``advance(text)`` after each subnet."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total, self.bar = enabled, total, None

    def __enter__(self):  # noqa: ANN204
        if not self.enabled:
            return lambda text: logger.debug("quality report: %s", text)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("[bold]quality report"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
        )
        task = self.bar.add_task("subnets", total=self.total, info="")
        self.bar.start()
        return lambda text: self.bar.update(task, advance=1, info=text)  # type: ignore[union-attr]

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


__all__ = ["DEFAULT_PROXIES", "QualityReport", "quality_report", "stratified_subnets"]
