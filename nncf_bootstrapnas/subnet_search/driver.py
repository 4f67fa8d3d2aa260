"""Runs one search: measures anchors, steps the algorithm under the budget, checkpoints, reports progress.

The driver is the algorithms' only door to measurements (``evaluate``) and the place where search-wide facts live:
the evaluation budget, the constraint environment (``ref_acc``), the hypervolume reference and the checkpoint.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nncf_bootstrapnas.subnet_search.algorithms.base import SearchAlgorithm
from nncf_bootstrapnas.subnet_search.checkpoint import load_checkpoint, save_checkpoint
from nncf_bootstrapnas.subnet_search.distributed import dist_info
from nncf_bootstrapnas.subnet_search.evaluator import Evaluator
from nncf_bootstrapnas.subnet_search.indicators import HVReference, hypervolume, hypervolume_history, non_dominated
from nncf_bootstrapnas.subnet_search.objectives import Objective
from nncf_bootstrapnas.subnet_search.problem import SearchProblem
from nncf_bootstrapnas.subnet_search.result import ACCURACY, SearchResult
from nncf_bootstrapnas.subnet_search.settings import SearchSection
from nncf_bootstrapnas.subnet_search.termination import Termination, default_terminations
from nncf_bootstrapnas.utils.progress import progress_bar

logger = logging.getLogger(__name__)

# Settings that may change between a checkpoint and its resume (everything else must match).
RESUMABLE_CHANGES = {"num_evals", "num_workers", "checkpoint_every"}


class SearchDriver:
    """Glue between an algorithm, the evaluator and the outside world (checkpoints, progress, callback)."""

    def __init__(
        self,
        space: Any,
        problem: SearchProblem,
        evaluator: Evaluator,
        metrics: list[Objective],
        settings: SearchSection,
        algorithm: SearchAlgorithm,
        checkpoint_dir: str | Path | None = None,
        callback: Callable[[dict[str, Any]], Any] | None = None,
        progress: bool = False,
        terminations: list[Termination] | None = None,
    ) -> None:
        self.space, self.problem, self.evaluator = space, problem, evaluator
        self.metrics, self.settings, self.algorithm = metrics, settings, algorithm
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.callback = callback
        self.rank, self.world = dist_info()
        self.show_progress = progress and self.rank == 0
        self.terminations = terminations or default_terminations(settings.num_evals)
        self.anchor_X = np.vstack([np.asarray(space.lower_bounds), np.asarray(space.upper_bounds)]).astype(int)
        self.env: dict[str, float | None] = {"ref_acc": settings.ref_acc, "acc_delta": float(settings.acc_delta)}
        self.ref_acc_source = "bootstrapNAS.search.ref_acc" if settings.ref_acc is not None else "not used"
        problem.constraint_set.env = self.env
        problem.evaluator = self
        self.steps = 0
        self.stopped_by = ""
        self._progress: Any = None
        self._proxy_batch: Any = None
        self.proxy_evaluations = 0
        self._start = time.perf_counter()

    # ---- what algorithms use ----------------------------------------------------------------------------------------
    @property
    def metric_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    @property
    def remaining(self) -> int:
        return max(self.settings.num_evals - self.evaluator.n_measured, 0)

    def evaluate(self, X: np.ndarray) -> list[dict[str, Any] | None]:
        """Records of the rows of ``X``, measuring at most ``remaining`` new subnets (the rest come back ``None``)."""
        records = self.evaluator.evaluate(X, limit=self.remaining)
        self._update_progress()
        return records

    def oversample(self, n: int) -> int:
        """How many candidates to propose so that ``prefilter`` can keep ``n`` (``n`` without a proxy pre-filter)."""
        pf = self.settings.proxy_prefilter
        return n if not pf else int(math.ceil(n / pf.keep_ratio))

    def prefilter(self, X: np.ndarray, n: int) -> np.ndarray:
        """The ``n`` candidates of ``X`` with the best zero-cost proxy score (``proxy_prefilter``), best first.

        Proxy scores are not evaluations: they neither count towards the budget nor appear in the result's rows.
        """
        pf = self.settings.proxy_prefilter
        X = np.asarray(X, dtype=int).reshape(-1, len(self.anchor_X[0]))
        if not pf or len(X) <= n:
            return X[:n]
        from nncf_bootstrapnas.evaluation import first_batch, rank_by_proxy

        spec = self.evaluator.spec
        if self._proxy_batch is None:
            loader = spec.bn_loader if spec.bn_loader is not None else spec.val_loader
            if loader is None:
                raise ValueError("bootstrapNAS.search.proxy_prefilter needs data: pass val_loader or bn_loader")
            self._proxy_batch = first_batch(loader)
        configs = [self.space.decode(x) for x in X]
        self.proxy_evaluations += len(X)
        return X[rank_by_proxy(spec.supernet, configs, pf.proxy, self._proxy_batch, self.settings.seed)[:n]]

    def measured_F(self) -> np.ndarray:
        return self.problem.to_F([r["values"] for r in self.evaluator.records])

    def measured_feasible(self) -> np.ndarray:
        return np.array([self.problem.constraint_set.evaluate(r["values"])[2] for r in self.evaluator.records], bool)

    def measured_front_indices(self) -> np.ndarray:
        feasible = np.flatnonzero(self.measured_feasible())
        return feasible[non_dominated(self.measured_F()[feasible])] if len(feasible) else feasible

    def hv_reference(self) -> HVReference:
        anchors = [self.evaluator.lookup(x) for x in self.anchor_X]
        F_anchor = self.problem.to_F([r["values"] for r in anchors if r is not None])
        return HVReference.from_anchors(F_anchor, self.measured_F(), self.settings.hv_margin)

    def current_hypervolume(self) -> float:
        front = self.measured_front_indices()
        return hypervolume(self.measured_F()[front], self.hv_reference()) if len(front) else 0.0

    # ---- the run ----------------------------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> SearchResult:
        loaded = load_checkpoint(self.checkpoint_dir) if resume and self.checkpoint_dir is not None else None
        with progress_bar(f"search {self.algorithm.name}", self.settings.num_evals, self.show_progress) as bar:
            if self.show_progress:  # the hypervolume shown costs a front computation per update
                self._progress = bar
                self.evaluator.on_measured = lambda: bar.advance()
            if loaded is not None:
                self._restore(*loaded)
            else:
                if resume:
                    logger.info("no checkpoint in %s: starting a new search", self.checkpoint_dir)
                self.evaluate(self.anchor_X)
                self._resolve_ref_acc()
                self.algorithm.setup(self)
            while not self._stop_reason():
                self.algorithm.step()
                self.steps += 1
                checkpoint = None
                if self.steps % self.settings.checkpoint_every == 0:
                    checkpoint = self.save()
                if self.callback is not None:
                    info = {"step": self.steps, "evaluations": self.evaluator.n_measured, "checkpoint": checkpoint}
                    if self.callback(info) is True:
                        self.stopped_by = "callback"
                        break
            self.save()
        return self.result()

    def _stop_reason(self) -> str | None:
        for t in self.terminations:
            reason = t.reason(self)
            if reason:
                self.stopped_by = reason
                return reason
        return None

    def _resolve_ref_acc(self) -> None:
        """``ref_acc`` unset -> the measured maximum subnet's accuracy (fixes the legacy -1 default)."""
        if self.env["ref_acc"] is None and ACCURACY in self.metric_names:
            top = self.evaluator.lookup(self.anchor_X[0])
            self.env["ref_acc"] = float(top["values"][ACCURACY])
            self.ref_acc_source = "measured maximum subnet"
        if self.env["ref_acc"] is not None and self.env["ref_acc"] <= 1.0 and self.settings.acc_delta >= 1.0:
            logger.warning(
                "ref_acc %.4g looks like a fraction but acc_delta is %g: every subnet would be within tolerance; "
                "set bootstrapNAS.search.acc_delta in the accuracy's units",
                self.env["ref_acc"],
                self.settings.acc_delta,
            )

    # ---- checkpoints ------------------------------------------------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm.name,
            "objectives": [o.spec() for o in self.problem.objectives],
            "constraints": self.problem.constraint_set.texts,
            "space": self.space.to_json(),
            "settings": self.settings.to_json(),
        }

    def save(self) -> Path | None:
        if self.checkpoint_dir is None or self.rank != 0:
            return None
        state = {
            **self._identity(),
            "env": self.env,
            "ref_acc_source": self.ref_acc_source,
            "evaluator": self.evaluator.state_dict(),
            "algorithm_state": self.algorithm.state(),
        }
        return save_checkpoint(self.checkpoint_dir, state, self.algorithm.blob(), self.steps)

    def _restore(self, state: dict[str, Any], blob: bytes | None) -> None:
        mine = self._identity()
        for key in ("algorithm", "objectives", "constraints", "space"):
            if state[key] != mine[key]:
                raise ValueError(
                    f"cannot resume from {self.checkpoint_dir}: its {key} {state[key]!r} differs from this search's "
                    f"{mine[key]!r}; use the same settings or a new checkpoint_dir"
                )
        changed = {k for k in mine["settings"] if state["settings"].get(k) != mine["settings"][k]} - RESUMABLE_CHANGES
        if changed:
            diff = {k: (state["settings"].get(k), mine["settings"][k]) for k in sorted(changed)}
            raise ValueError(
                f"cannot resume from {self.checkpoint_dir}: settings changed {diff} (checkpoint, now); only "
                f"{sorted(RESUMABLE_CHANGES)} may change on resume"
            )
        self.evaluator.load_state_dict(state["evaluator"])
        self.env.update(state["env"])
        self.ref_acc_source = state.get("ref_acc_source", self.ref_acc_source)
        self.steps = int(state["step"])
        self.algorithm.setup(self)
        self.algorithm.load_state(state["algorithm_state"], blob)
        self._update_progress()

    # ---- progress ---------------------------------------------------------------------------------------------------
    def _update_progress(self) -> None:
        if self._progress is None:
            return
        hv = self.current_hypervolume() if self.evaluator.n_measured >= 2 else 0.0
        epm = self.evaluator.evals_per_minute
        self._progress.update(completed=self.evaluator.n_measured, info=f"HV {hv:.4f} | {epm:.1f} evals/min")

    # ---- result -----------------------------------------------------------------------------------------------------
    def result(self) -> SearchResult:
        records = self.evaluator.records
        rows, F = [], self.measured_F()
        for r in records:
            raw, _, ok = self.problem.constraint_set.evaluate(r["values"])
            rows.append({**r, "constraints": raw, "feasible": ok})
        reference = self.hv_reference()
        feasible = np.array([row["feasible"] for row in rows], dtype=bool)
        found = {name: self.evaluator.lookup(x) for name, x in zip(("maximum", "minimum"), self.anchor_X)}
        anchors = {name: r["index"] for name, r in found.items() if r is not None}  # num_evals=1: only the maximum
        stats = {**self.evaluator.stats(), "wall_s": time.perf_counter() - self._start, "steps": self.steps}
        stats["world_size"], stats["num_workers"] = self.world, self.settings.num_workers
        stats["proxy_evaluations"] = self.proxy_evaluations
        return SearchResult(
            objectives=[{"name": o.name, "direction": o.direction} for o in self.problem.objectives],
            metrics=self.metric_names,
            constraints=self.problem.constraint_set.texts,
            rows=rows,
            hv_reference=reference.to_json(),
            hv_history=hypervolume_history(F, feasible, reference),
            algorithm=self.algorithm.name,
            seed=self.settings.seed,
            ref_acc=self.env["ref_acc"],
            ref_acc_source=self.ref_acc_source,
            acc_delta=float(self.settings.acc_delta),
            anchors=anchors,
            settings=self.settings.to_json(),
            stats=stats,
            algorithm_stats=self.algorithm.stats(),
            stopped_by=self.stopped_by,
        )
