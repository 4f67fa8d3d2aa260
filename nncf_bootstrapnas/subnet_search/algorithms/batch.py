"""Which predicted candidates LINAS measures in one round: exploitation, front-gap exploration, then fill-ins.

1. Exploitation: greedy gain in (optimistic) predicted hypervolume over the measured front.
2. Exploration, a fixed share of the batch (``linas.exploration_share``) and any slot exploitation left: the widest gaps of the measured front
   along the cheap axis (MACs), each filled with the best-predicted candidate whose exact cheap value lies inside
   it; candidates come from the inner search and from crossings and one-step mutations of the gap's two ends. Why:
   greedy predicted gain concentrates a batch where the predictor is most optimistic, and on a trained supernet that
   is mostly where it is wrong; the cheap axis is exact, so a gap-filler lands where the front needs points whatever
   the predictor's error.
3. Leftover slots: non-dominated rank, then crowding.

A candidate equivalent to a measured or already chosen subnet (``equivalence.py``) is never taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nncf_bootstrapnas.subnet_search.algorithms.equivalence import Equivalence, Key
from nncf_bootstrapnas.subnet_search.indicators import HVReference, crowding_order, hypervolume, non_dominated


@dataclass
class Pool:
    """Candidates with their (optimistic) predicted objectives in pymoo's minimisation space."""

    X: np.ndarray
    F: np.ndarray
    feasible: np.ndarray


@dataclass
class Batch:
    """The chosen rows and where each came from."""

    X: list[np.ndarray] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=lambda: {"exploit": 0, "explore": 0, "rank": 0, "equivalent": 0})
    F: list[np.ndarray] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # the source of each row of X


class BatchSelector:
    """One round's selection; ``surrogate.values`` gives (optimistic) predictions, the driver the measured front."""

    def __init__(self, driver: Any, surrogate: Any, equivalence: Equivalence, rng: np.random.Generator) -> None:
        self.driver, self.surrogate, self.equivalence, self.rng = driver, surrogate, equivalence, rng
        self.reference: HVReference = driver.hv_reference()
        front = driver.measured_front_indices()
        self.front_X = np.array([driver.evaluator.records[i]["x"] for i in front], dtype=int).reshape(len(front), -1)
        self.front_F = driver.measured_F()[front].reshape(len(front), -1)
        self.taken: set[Key] = equivalence.measured_keys()
        self.axis = cheap_axis(driver)

    def pool(self, X: np.ndarray) -> Pool:
        X = np.asarray(X, dtype=int).reshape(-1, self.driver.problem.n_var)
        values = self.surrogate.values(X) if len(X) else []
        F = self.driver.problem.to_F(values) if len(X) else np.zeros((0, self.driver.problem.n_obj))
        feasible = np.array([self.driver.problem.constraint_set.evaluate(v)[2] for v in values], dtype=bool)
        return Pool(X, np.asarray(F, dtype=float).reshape(len(X), -1), feasible)

    def select(self, X: np.ndarray, k: int, exploration_share: float) -> Batch:
        """Exploitation up to ``k`` minus the exploration share; with a share, exploration fills what exploitation
        left; then rank and crowding. Share 0: the earlier LINAS's selection exactly."""
        batch, pool = Batch(), self.pool(X)
        explore = exploration_share > 0 and self.axis is not None
        self._exploit(batch, pool, k - int(round(exploration_share * k)) if explore else k)
        if explore:
            self._explore(batch, pool, k)
        self._rank(batch, pool, k)
        return batch

    # ---- the three kinds ------------------------------------------------------------------------------------------
    def _exploit(self, batch: Batch, pool: Pool, k: int) -> None:
        current = self._current(batch)
        base = hypervolume(current, self.reference) if len(current) else 0.0
        skip: set[int] = set()
        while len(batch.X) < k:
            gains = [(self._hv(current, pool.F[i]) - base, -i) for i in range(len(pool.X)) if ok(pool, i, skip)]
            if not gains or max(gains)[0] <= 1e-12:
                return
            gain, neg_i = max(gains)
            skip.add(-neg_i)
            if self._take(batch, pool, -neg_i, "exploit"):
                current, base = np.vstack([current, pool.F[-neg_i]]), base + gain

    def _explore(self, batch: Batch, pool: Pool, k: int) -> None:
        for a, b in self._gaps(batch):
            if len(batch.X) >= k:
                return
            cand = self.pool(np.vstack([pool.X, self._bridges(self.front_X[a], self.front_X[b])]))
            lo, hi = sorted((self.front_F[a, self.axis], self.front_F[b, self.axis]))
            inside = [i for i in range(len(cand.X)) if cand.feasible[i] and lo < cand.F[i, self.axis] < hi]
            current = self._current(batch)
            for i in sorted(inside, key=lambda i: (-self._hv(current, cand.F[i]), i)):
                if self._take(batch, cand, i, "explore"):
                    break

    def _rank(self, batch: Batch, pool: Pool, k: int) -> None:
        rest = sorted(range(len(pool.X)), key=lambda i: not pool.feasible[i])
        while len(batch.X) < k and rest:
            idx = np.array(rest)
            front = idx[non_dominated(pool.F[idx])]
            for i in front[crowding_order(pool.F[front])]:
                if len(batch.X) < k:
                    self._take(batch, pool, int(i), "rank")
            rest = [i for i in rest if i not in set(front.tolist())]

    # ---- helpers ----------------------------------------------------------------------------------------------------
    def _take(self, batch: Batch, pool: Pool, i: int, source: str) -> bool:
        key = self.equivalence.canonical(pool.X[i])
        if key in self.taken or self.driver.evaluator.seen(pool.X[i]):
            batch.sources["equivalent"] += key in self.taken and not self.driver.evaluator.seen(pool.X[i])
            return False
        self.taken.add(key)
        self.taken.add(tuple(int(v) for v in pool.X[i]))
        batch.X.append(pool.X[i])
        batch.F.append(pool.F[i])
        batch.labels.append(source)
        batch.sources[source] += 1
        return True

    def _current(self, batch: Batch) -> np.ndarray:
        return np.vstack([self.front_F, *batch.F]) if batch.F else self.front_F

    def _hv(self, current: np.ndarray, f: np.ndarray) -> float:
        return hypervolume(np.vstack([current, f]), self.reference)

    def _gaps(self, batch: Batch) -> list[tuple[int, int]]:
        """Consecutive measured-front points along the cheap axis, widest gap first (the HV a point there can add)."""
        if len(self.front_F) < 2:
            return []
        order = np.argsort(self.front_F[:, self.axis], kind="stable")
        Fn = self.reference.normalise(self.front_F)
        pairs = list(zip(order[:-1], order[1:]))
        return sorted(pairs, key=lambda p: -float(np.prod(np.abs(Fn[p[0]] - Fn[p[1]]))))

    def _bridges(self, xa: np.ndarray, xb: np.ndarray, n_cross: int = 16) -> np.ndarray:
        """Uniform crossings of a gap's two ends and every one-variable change of either end."""
        masks = self.rng.random((n_cross, len(xa))) < 0.5
        out = [np.where(m, xa, xb) for m in masks]
        for x in (xa, xb):
            for i, upper in enumerate(self.driver.space.upper_bounds):
                for c in range(int(upper) + 1):
                    if c != x[i]:
                        out.append(np.where(np.arange(len(x)) == i, c, x))
        return np.array(out, dtype=int)


def ok(pool: Pool, i: int, skip: set[int]) -> bool:
    return bool(pool.feasible[i]) and i not in skip


def cheap_axis(driver: Any) -> int | None:
    """Column of the first cheap objective (else the second objective); ``None`` for a single objective."""
    objectives = driver.problem.objectives
    for j, objective in enumerate(objectives):
        if objective.cheap:
            return j
    return 1 if len(objectives) > 1 else None
