"""NSGA-II and R-NSGA-II on pymoo, driven through pymoo's ask-and-tell interface.

Integer encoding as in legacy BootstrapNAS: ``IntegerRandomSampling`` (with the maximum and minimum subnet injected into
the first population), ``SBX``/``PM`` on floats followed by ``RoundingRepair``, duplicates eliminated. Ask-and-tell lets
the driver measure under a budget and checkpoint between generations; the pymoo algorithm object (with its random
generator) is pickled as the checkpoint blob. A ``proxy_prefilter`` applies to the first population only: pymoo's
selection needs every offspring measured, so later generations cannot be filtered without changing the algorithm.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.moo.rnsga2 import RNSGA2
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.core.sampling import Sampling
from pymoo.core.termination import NoTermination
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling

from nncf_bootstrapnas.registry import SEARCH_ALGORITHMS
from nncf_bootstrapnas.subnet_search.algorithms.base import SearchAlgorithm


class AnchoredIntegerSampling(Sampling):
    """``IntegerRandomSampling`` whose first rows are given anchors (the maximum and minimum subnets)."""

    def __init__(self, anchors: np.ndarray) -> None:
        super().__init__()
        self.anchors = np.atleast_2d(np.asarray(anchors, dtype=int))
        self.random = IntegerRandomSampling()

    def _do(self, problem: Any, n_samples: int, *args: Any, random_state: Any = None, **kwargs: Any) -> np.ndarray:
        X = self.random._do(problem, n_samples, random_state=random_state)
        k = min(len(self.anchors), n_samples)
        X[:k] = self.anchors[:k]
        return X


@SEARCH_ALGORITHMS.register("NSGA2")
class NSGA2Search(SearchAlgorithm):
    """Legacy default: ``population`` subnets per generation until ``num_evals`` measurements."""

    name = "NSGA2"
    max_idle_generations = 10  # generations that only revisit measured subnets before giving up

    def _operators(self) -> dict[str, Any]:
        s = self.settings
        return {
            "pop_size": s.population,
            "sampling": AnchoredIntegerSampling(self._initial_rows()),
            "crossover": SBX(prob=s.crossover_prob, eta=s.crossover_eta, vtype=float, repair=RoundingRepair()),
            "mutation": PM(prob=s.mutation_prob, eta=s.mutation_eta, vtype=float, repair=RoundingRepair()),
            "eliminate_duplicates": True,
            "save_history": False,
        }

    def _initial_rows(self) -> np.ndarray:
        """Maximum and minimum subnet; with a proxy pre-filter also the proxy's pick of random candidates."""
        driver, n = self.driver, self.settings.population - len(self.driver.anchor_X)
        if not self.settings.proxy_prefilter or n <= 0:
            return driver.anchor_X
        rng = np.random.default_rng(self.settings.seed)
        candidates = IntegerRandomSampling()._do(driver.problem, driver.oversample(n), random_state=rng)
        return np.vstack([driver.anchor_X, driver.prefilter(candidates, n)])

    def build(self) -> Any:
        return NSGA2(**self._operators())

    def setup(self, driver: Any) -> None:
        super().setup(driver)
        if self.settings.population < 2:
            raise ValueError(
                f"bootstrapNAS.search.population = {self.settings.population} is too small for {self.name}; expected >= 2"
            )
        self.algo = self.build()
        self.algo.setup(driver.problem, termination=NoTermination(), seed=self.settings.seed, verbose=False)
        self.idle = 0

    def step(self) -> None:
        driver = self.driver
        pop = self.algo.ask()
        if pop is None or len(pop) == 0:  # pymoo found no new offspring (None when mating fails): space exhausted
            self.done = True
            return
        X = np.asarray(pop.get("X"), dtype=float).round().astype(int)
        new = len({tuple(x) for x in X if not driver.evaluator.seen(x)})
        if new > driver.remaining:
            driver.evaluate(X)  # measures what the budget allows; the generation is never told
            self.done = True
            return
        before = driver.evaluator.n_measured
        PymooEvaluator().eval(driver.problem, pop)  # SearchProblem._evaluate -> driver.evaluate (cached)
        self.algo.tell(infills=pop)
        self.idle = self.idle + 1 if driver.evaluator.n_measured == before else 0
        if self.idle >= self.max_idle_generations:
            self.done = True

    def state(self) -> dict[str, Any]:
        return {"done": self.done, "idle": self.idle, "n_gen": int(self.algo.n_iter or 0)}

    def blob(self) -> bytes:
        """The pymoo algorithm (population, RNG, operators) without its problem, which holds user objects."""
        problem, self.algo.problem = self.algo.problem, None
        try:
            return pickle.dumps(self.algo)
        finally:
            self.algo.problem = problem

    def load_state(self, state: dict[str, Any], blob: bytes | None) -> None:
        super().load_state(state, blob)
        if blob is None:
            raise ValueError(f"{self.name} checkpoint has no pickled pymoo algorithm")
        self.algo = pickle.loads(blob)
        self.algo.problem = self.driver.problem  # pickled without its problem (see blob)
        self.idle = int(state.get("idle", 0))

    def stats(self) -> dict[str, Any]:
        return {"generations": int(self.algo.n_iter or 0)}


@SEARCH_ALGORITHMS.register("RNSGA2")
class RNSGA2Search(NSGA2Search):
    """Reference-point NSGA-II: ``aspiration_points`` are given in the objectives' own units and order."""

    name = "RNSGA2"

    def build(self) -> Any:
        s, problem = self.settings, self.driver.problem  # shapes were checked with the options (config rules)
        points = np.atleast_2d(np.asarray(s.aspiration_points, dtype=float))
        weights = None if s.weights is None else np.full(problem.n_obj, 1.0) * np.asarray(s.weights, dtype=float)
        return RNSGA2(
            ref_points=points.astype(float) * problem.signs,
            epsilon=s.epsilon,
            weights=weights,
            normalization="front",
            extreme_points_as_reference_points=s.extreme_points_as_ref_points,
            **self._operators(),
        )
