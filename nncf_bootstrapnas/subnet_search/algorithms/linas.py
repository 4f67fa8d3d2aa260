"""LINAS: Lightweight Iterative NAS — predictors steer which subnets get their few real measurements.

1. ``linas.initial_evals`` real evaluations: the maximum and minimum subnet plus seeded uniform samples.
2. Each round: fit one predictor per expensive metric on every measured row (model chosen by cross-validation, see
   ``predictors.py``); run an inner pymoo NSGA-II on the predicted objectives, with cheap metrics (MACs, parameters,
   LUT latency) computed exactly; measure the ``candidates_per_round`` most promising unseen subnets of its final
   population, chosen greedily by predicted hypervolume gain over the measured front (ties by rank and crowding).
3. Repeat until ``num_evals`` real evaluations. The reported front consists of measured values only.

With ``proxy_prefilter``, the random subnets (initial sample, fill-ins when the inner search offers too few unseen
candidates) are the proxy's pick of an oversampled set; predictor-chosen candidates are not filtered again.

Every round records the chosen predictors, their cross-validated RMSE/Kendall tau, and the Kendall tau of the
predictions for the round's new subnets measured afterwards (a true held-out test).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.optimize import minimize

from nncf_bootstrapnas.evaluation.ranking import kendall_tau
from nncf_bootstrapnas.registry import SEARCH_ALGORITHMS
from nncf_bootstrapnas.subnet_search.algorithms.base import SearchAlgorithm, rng_from_state, rng_state, unseen_random
from nncf_bootstrapnas.subnet_search.algorithms.predictors import fit_predictor
from nncf_bootstrapnas.subnet_search.indicators import crowding_order, hypervolume, non_dominated


class SurrogateProblem(Problem):
    """The search problem with expensive metrics predicted and cheap ones exact (vectorised)."""

    def __init__(self, driver: Any, predictors: dict[str, Any]) -> None:
        self.driver, self.predictors = driver, predictors
        outer = driver.problem
        super().__init__(
            n_var=outer.n_var, n_obj=outer.n_obj, n_ieq_constr=outer.n_ieq_constr, xl=outer.xl, xu=outer.xu, vtype=int
        )

    def values(self, X: np.ndarray) -> list[dict[str, float]]:
        X = np.asarray(X, dtype=float).round().astype(int)
        cheap = [m for m in self.driver.metric_names if m not in self.predictors]
        table = {m: p.predict(X) for m, p in self.predictors.items()}
        if cheap:
            exact = self.driver.evaluator.cheap_values(X, cheap)
            table.update({m: exact[:, j] for j, m in enumerate(cheap)})
        return [{m: float(table[m][i]) for m in table} for i in range(len(X))]

    def _evaluate(self, X: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        values = self.values(X)
        out["F"] = self.driver.problem.to_F(values)
        if self.n_ieq_constr:
            out["G"] = self.driver.problem.to_G(values)


@SEARCH_ALGORITHMS.register("LINAS")
class LINAS(SearchAlgorithm):
    name = "LINAS"

    def setup(self, driver: Any) -> None:
        super().setup(driver)
        self.rng = np.random.default_rng(self.settings.seed)
        self.round = 0
        self.rounds: list[dict[str, Any]] = []

    # ---- steps ------------------------------------------------------------------------------------------------------
    def step(self) -> None:
        driver, linas = self.driver, self.settings.linas
        if self.round == 0:
            n = min(linas.initial_evals - driver.evaluator.n_measured, driver.remaining)
            if n > 0:
                X = driver.prefilter(unseen_random(driver, self.rng, driver.oversample(n)), n)
                if len(X) == 0:
                    self.done = True
                    return
                driver.evaluate(X)
            self.round = 1
            return
        predictors = self._fit()
        surrogate = SurrogateProblem(driver, predictors)
        X_cand = self._inner_search(surrogate)
        k = min(linas.candidates_per_round, driver.remaining)
        chosen = self._select(surrogate, X_cand, k)
        if len(chosen) < k:
            m, taken = k - len(chosen), {tuple(x) for x in chosen}
            extra = driver.prefilter(unseen_random(driver, self.rng, driver.oversample(m), exclude=taken), m)
            chosen = np.vstack([chosen.reshape(-1, driver.problem.n_var), extra]) if len(extra) else chosen
        if len(chosen) == 0:
            self.done = True
            return
        predicted = surrogate.values(chosen)
        records = [r for r in driver.evaluate(chosen) if r is not None]
        self._record_round(predictors, predicted[: len(records)], records)
        self.round += 1

    def _fit(self) -> dict[str, Any]:
        driver = self.driver
        records = driver.evaluator.records
        X = np.array([r["x"] for r in records], dtype=int)
        expensive = [m.name for m in driver.metrics if not m.cheap]
        xu = np.asarray(driver.space.upper_bounds)
        names = self.settings.linas.predictors
        seed = self.settings.seed + self.round
        return {m: fit_predictor(m, X, [r["values"][m] for r in records], xu, names, seed) for m in expensive}

    def _inner_search(self, surrogate: SurrogateProblem) -> np.ndarray:
        driver, linas = self.driver, self.settings.linas
        if driver.space.size - driver.evaluator.n_measured <= 2 * linas.inner_population:
            return unseen_random(driver, self.rng, 2 * linas.inner_population)  # small rest: score all of it
        measured = np.array([r["x"] for r in driver.evaluator.records], dtype=int)
        front = measured[driver.measured_front_indices()]
        n_random = max(linas.inner_population - len(front), 0)
        random = IntegerRandomSampling()._do(surrogate, n_random, random_state=self.rng) if n_random else front[:0]
        initial = np.vstack([front[: linas.inner_population], random]).astype(float)
        algorithm = NSGA2(
            pop_size=linas.inner_population,
            sampling=initial,
            crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
        )
        seed = int(self.rng.integers(0, 2**31 - 1))
        res = minimize(surrogate, algorithm, ("n_gen", linas.inner_generations), seed=seed, verbose=False)
        X = np.asarray(res.pop.get("X"), dtype=float).round().astype(int)
        unique = list(dict.fromkeys(tuple(int(v) for v in x) for x in X))
        return np.array([x for x in unique if not driver.evaluator.seen(x)], dtype=int).reshape(-1, surrogate.n_var)

    def _select(self, surrogate: SurrogateProblem, X: np.ndarray, k: int) -> np.ndarray:
        """Greedy predicted-hypervolume gain over the measured front; leftovers by rank, then crowding."""
        if len(X) == 0 or k <= 0:
            return X[:0]
        driver = self.driver
        values = surrogate.values(X)
        F = driver.problem.to_F(values)
        feasible = np.array([driver.problem.constraint_set.evaluate(v)[2] for v in values], dtype=bool)
        reference = driver.hv_reference()
        current = driver.measured_F()[driver.measured_front_indices()]
        chosen: list[int] = []
        base = hypervolume(current, reference)
        while len(chosen) < k:
            gains = [
                (hypervolume(np.vstack([current, F[i]]), reference) - base, -i)
                for i in range(len(X))
                if feasible[i] and i not in chosen
            ]
            if not gains or max(gains)[0] <= 1e-12:
                break
            gain, neg_i = max(gains)
            chosen.append(-neg_i)
            current = np.vstack([current, F[-neg_i]])
            base += gain
        rest = [i for i in range(len(X)) if i not in chosen]
        rest.sort(key=lambda i: not feasible[i])
        while len(chosen) < k and rest:
            idx = np.array(rest)
            front = idx[non_dominated(F[idx])]
            for i in front[crowding_order(F[front])]:
                if len(chosen) < k:
                    chosen.append(int(i))
            rest = [i for i in rest if i not in chosen]
        return X[chosen]

    def _record_round(self, predictors: dict[str, Any], predicted: list[dict], records: list[dict]) -> None:
        entry: dict[str, Any] = {"round": self.round, "evaluations": self.driver.evaluator.n_measured, "metrics": {}}
        for m, p in predictors.items():
            tau = kendall_tau([v[m] for v in predicted], [r["values"][m] for r in records])
            entry["metrics"][m] = {
                **p.summary(),
                "holdout_tau": None if np.isnan(tau) else tau,
                "n_holdout": len(records),
            }
        self.rounds.append(entry)

    # ---- state ------------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"done": self.done, "round": self.round, "rng": rng_state(self.rng), "rounds": self.rounds}

    def load_state(self, state: dict[str, Any], blob: bytes | None) -> None:
        super().load_state(state, blob)
        self.round = int(state["round"])
        self.rng = rng_from_state(state["rng"])
        self.rounds = list(state.get("rounds", []))

    def stats(self) -> dict[str, Any]:
        return {"rounds": self.rounds}
