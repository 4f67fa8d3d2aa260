"""``search()``: the one-call entry point that assembles settings, objectives, evaluator, algorithm and driver."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nncf_bootstrapnas.registry import SEARCH_ALGORITHMS
from nncf_bootstrapnas.searchable import require
from nncf_bootstrapnas.subnet_search.constraints import ConstraintSet
from nncf_bootstrapnas.subnet_search.distributed import DistributedBackend, dist_info
from nncf_bootstrapnas.subnet_search.driver import SearchDriver
from nncf_bootstrapnas.subnet_search.evaluator import Evaluator, MeasureSpec, SerialBackend
from nncf_bootstrapnas.subnet_search.objectives import (
    LatencyMs,
    Objective,
    ObjectiveError,
    ThroughputFps,
    resolve_objective,
)
from nncf_bootstrapnas.subnet_search.problem import SearchProblem
from nncf_bootstrapnas.subnet_search.result import SearchResult
from nncf_bootstrapnas.subnet_search.settings import search_options

logger = logging.getLogger(__name__)


def search(
    supernet: Any,
    options: Any = None,
    validate_fn: Callable[[Any, Any], float] | None = None,
    val_loader: Any = None,
    bn_loader: Any = None,
    *,
    space: Any = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    distributed: bool | None = None,
    bn_adapt_fn: Callable[[Any, Any, int], None] | None = None,
    mp_context: str = "spawn",
    **overrides: Any,
) -> SearchResult:
    """Search the supernet's sub-networks for the Pareto front of the objectives under the constraints.

    Args:
        supernet: any ``SearchableSupernet`` (``nncf_bootstrapnas.searchable``): ``search_space`` and ``activate``,
            plus what the objectives need (``macs``, ``params``, ``extract``); see docs/any_supernet.md.
        options: a ``SearchSection`` (``cfg.sections.search``), a loaded ``Config``, a full config dict, a bare
            ``bootstrapNAS.search`` dict or None (the defaults).
        validate_fn: ``validate_fn(model, loader) -> float``, needed by the ``accuracy`` objective.
        val_loader: validation data (cut to ``eval_subset_size`` samples, always the same ones).
        bn_loader: batch-norm adaptation data (default ``val_loader``); ``num_bn_adaptation_samples=0`` disables it.
        space: search only this space (default ``supernet.search_space``), e.g. ``supernet.stage_space``.
        checkpoint_dir: where ``search_state.json`` is written after every ``checkpoint_every`` steps.
        resume: continue from ``checkpoint_dir`` if it holds a checkpoint (``num_evals`` may be raised).
        progress: rich progress bar on rank 0.
        callback: called after every step with ``{"step", "evaluations", "checkpoint"}``; returning True stops.
        distributed: evaluate over torch.distributed ranks (default: when a process group with > 1 rank exists).
        bn_adapt_fn: replaces ``training.bn_adaptation.adapt_batchnorm``.
        mp_context: start method of the worker processes when ``num_workers > 1``.
        overrides: keys of the search section for this call (``num_evals=40``, ``algorithm="random"``,
            ``objectives=[...]`` also with objective instances); validated like the config.
    """
    s = search_options(options, **overrides)
    objs = [resolve_objective(o) for o in s.objectives]
    names = [o.name for o in objs]
    if len(set(names)) != len(names):
        raise ObjectiveError(f"bootstrapNAS.search.objectives lists an objective twice: {names}")
    cset = ConstraintSet(s.constraints)
    metrics: list[Objective] = objs + [resolve_objective(m) for m in cset.metrics if m not in names]
    _require(supernet, space, metrics, s)
    space = space if space is not None else supernet.search_space
    missing = [m.name for m in metrics if m.needs_validation and (validate_fn is None or val_loader is None)]
    if missing:
        raise ObjectiveError(f"objective(s) {missing} need validate_fn and val_loader; pass both to search()")
    use_dist = dist_info()[1] > 1 if distributed is None else distributed
    timed = [m.name for m in metrics if isinstance(m, (LatencyMs, ThroughputFps))]
    if timed and (s.num_workers > 1 or use_dist):
        logger.warning(
            "%s measured while %d evaluations run at once: concurrent measurements on one host skew each other; "
            "use num_workers=1 (or one rank per device) for latency objectives",
            timed,
            s.num_workers * max(dist_info()[1], 1),
        )
    algo = SEARCH_ALGORITHMS.get(s.algorithm)(s)  # the name was checked (and its spelling fixed) with the options
    if not algo.name:
        algo.name = s.algorithm

    evaluator = Evaluator.create(
        supernet,
        space,
        metrics,
        validate_fn,
        val_loader,
        bn_loader,
        s.num_bn_adaptation_samples,
        s.eval_subset_size,
        bn_adapt_fn,
        backend_factory=lambda spec: _backend(spec, s.num_workers, use_dist, mp_context),
    )
    problem = SearchProblem(space, objs, cset)
    driver = SearchDriver(space, problem, evaluator, metrics, s, algo, checkpoint_dir, callback, progress)
    previous = getattr(supernet, "active_config", None)
    try:
        return driver.run(resume=resume)
    finally:
        evaluator.close()
        if previous is not None and hasattr(supernet, "activate"):
            supernet.activate(previous)


def _require(supernet: Any, space: Any, metrics: list[Objective], s: Any) -> None:
    """The supernet members this search will call (searchable protocol), checked before anything is measured."""
    needs = {"search()": ("activate",) if space is not None else ("search_space", "activate")}
    needs.update({f"objective '{m.name}'": tuple(getattr(m, "needs", ())) for m in metrics})
    if s.proxy_prefilter:
        needs["bootstrapNAS.search.proxy_prefilter"] = ("extract",)
    require(supernet, "search()", needs, space)


def _backend(spec: MeasureSpec, num_workers: int, use_dist: bool, mp_context: str) -> Any:
    if num_workers > 1:
        from nncf_bootstrapnas.subnet_search.parallel import ProcessPoolBackend

        inner: Any = ProcessPoolBackend(spec, num_workers, mp_context)
    else:
        inner = SerialBackend(spec)
    return DistributedBackend(inner) if use_dist else inner
