"""The search-algorithm protocol: propose subnets, let the driver measure them, read the values back.

An algorithm never measures anything itself: ``driver.evaluate(X)`` measures (respecting the evaluation budget and
the cache) and returns records. ``step()`` is one generation or round; between steps the driver checkpoints
``state()`` (plain JSON) and ``blob()`` (optional bytes, e.g. a pickled pymoo algorithm). Register your own with
``@SEARCH_ALGORITHMS.register("name")`` on a subclass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nncf_bootstrapnas.subnet_search.driver import SearchDriver
    from nncf_bootstrapnas.subnet_search.settings import SearchSettings


class SearchAlgorithm:
    """Base class of all search algorithms (see module docstring)."""

    name: str = ""

    def __init__(self, settings: SearchSettings) -> None:
        self.settings = settings
        self.done = False
        self.driver: SearchDriver | None = None

    def setup(self, driver: SearchDriver) -> None:
        """Called once per process before the first step (also when resuming, before ``load_state``)."""
        self.driver = driver

    def step(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        return {"done": self.done}

    def blob(self) -> bytes | None:
        return None

    def load_state(self, state: dict[str, Any], blob: bytes | None) -> None:
        self.done = bool(state.get("done", False))

    def stats(self) -> dict[str, Any]:
        """Algorithm-specific facts for the result (e.g. LINAS predictor quality per round)."""
        return {}


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """JSON form of a numpy Generator's state (its bit generator's state dict)."""
    return rng.bit_generator.state


def rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng


def unseen_random(driver: SearchDriver, rng: np.random.Generator, n: int, exclude: set | None = None) -> np.ndarray:
    """Up to ``n`` distinct, never-measured encodings, uniformly at random (rejection sampling).

    When the unmeasured part of the space is small, the remaining configs are enumerated instead, so a nearly
    exhausted space still yields every config it has left.
    """
    space = driver.space
    xu = np.asarray(space.upper_bounds, dtype=int)
    picked: list[tuple[int, ...]] = []
    taken = set(exclude or ())
    left = space.size - driver.evaluator.n_measured - len(taken)
    if left <= 0:
        return np.zeros((0, len(xu)), dtype=int)
    if left <= 4 * n and space.size <= 200_000:
        remaining = [x for x in _enumerate(xu) if not driver.evaluator.seen(x) and x not in taken]
        order = rng.permutation(len(remaining))[:n]
        return np.array([remaining[i] for i in order], dtype=int).reshape(-1, len(xu))
    attempts = 0
    while len(picked) < n and attempts < 1000 * n:
        attempts += 1
        x = tuple(int(v) for v in rng.integers(0, xu + 1))
        if x in taken or driver.evaluator.seen(x):
            continue
        taken.add(x)
        picked.append(x)
    return np.array(picked, dtype=int).reshape(-1, len(xu))


def _enumerate(xu: np.ndarray):
    import itertools

    return itertools.product(*[range(int(u) + 1) for u in xu])
