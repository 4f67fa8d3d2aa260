"""Random search: uniform over the space, without replacement, ``population`` subnets per step.

The honest baseline for the benchmark; it starts, like every algorithm, from the measured maximum and minimum subnet.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nncf_bootstrapnas.registry import SEARCH_ALGORITHMS
from nncf_bootstrapnas.subnet_search.algorithms.base import SearchAlgorithm, rng_from_state, rng_state, unseen_random


@SEARCH_ALGORITHMS.register("random")
class RandomSearch(SearchAlgorithm):
    name = "random"

    def setup(self, driver: Any) -> None:
        super().setup(driver)
        self.rng = np.random.default_rng(self.settings.seed)

    def step(self) -> None:
        n = min(self.settings.population, self.driver.remaining)
        X = self.driver.prefilter(unseen_random(self.driver, self.rng, self.driver.oversample(n)), n)
        if len(X) == 0:
            self.done = True  # every subnet of the space has been measured
            return
        self.driver.evaluate(X)

    def state(self) -> dict[str, Any]:
        return {"done": self.done, "rng": rng_state(self.rng)}

    def load_state(self, state: dict[str, Any], blob: bytes | None) -> None:
        super().load_state(state, blob)
        self.rng = rng_from_state(state["rng"])
