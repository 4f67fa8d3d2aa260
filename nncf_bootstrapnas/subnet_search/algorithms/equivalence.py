"""Canonical encodings: tell when two different encodings are the same subnet, so LINAS never measures it twice.

Why: with elastic depth, the widths of a skipped block do nothing, so one subnet has many encodings. On the digits
supernet 16 % of LINAS's 300 evaluations (30-70 % of a late round's batch) re-measured a subnet already measured
under another encoding. The encoding cache cannot see this; exact costs can: a variable is taken as inactive in
``x`` when no alternative choice of it changes the signature, and the canonical encoding sets every inactive
variable to its first choice. The signature is the cheap objectives that need no subnet extraction (MACs,
parameters), else the supernet's ``macs``; each probe is one such computation (about a tenth of a millisecond for
MACs), never a measurement. Without either, the canonical encoding is the encoding itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

Key = tuple[int, ...]


class Equivalence:
    """Memoised canonical encodings of one search's subnets (see module docstring)."""

    def __init__(self, driver: Any, enabled: bool = True) -> None:
        self.driver = driver
        fast = [m.name for m in driver.metrics if m.cheap and "extract" not in getattr(m, "needs", ())]
        macs = getattr(driver.evaluator.spec.supernet, "macs", None)
        self.cheap = fast if enabled else []
        self.macs = macs if enabled and not fast and callable(macs) else None
        self.upper = np.asarray(driver.space.upper_bounds, dtype=int)
        self._memo: dict[Key, Key] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.cheap) or self.macs is not None

    def canonical(self, x: Iterable[int]) -> Key:
        """``x`` with every variable that no cheap objective notices set to choice 0."""
        key = tuple(int(v) for v in x)
        if not self.enabled:
            return key
        if key not in self._memo:
            self._memo[key] = self._probe(np.array(key, dtype=int))
        return self._memo[key]

    def _probe(self, x: np.ndarray) -> Key:
        variants, owners = [], []
        for i, upper in enumerate(self.upper):
            for choice in range(int(upper) + 1):
                if choice != x[i]:
                    variants.append(np.where(np.arange(len(x)) == i, choice, x))
                    owners.append(i)
        if not variants:
            return tuple(int(v) for v in x)
        values = self._signature(np.vstack([x[None, :], *variants]))
        changed = np.zeros(len(x), dtype=bool)
        for row, i in zip(values[1:], owners):
            changed[i] |= bool(np.any(row != values[0]))
        return tuple(int(v) if changed[i] else 0 for i, v in enumerate(x))

    def _signature(self, X: np.ndarray) -> np.ndarray:
        if self.cheap:
            return self.driver.evaluator.cheap_values(X, self.cheap)
        space = self.driver.space
        return np.array([[float(self.macs(space.decode(x)))] for x in X])

    def measured_keys(self) -> set[Key]:
        """Canonical encodings of every measured subnet."""
        return {self.canonical(r["x"]) for r in self.driver.evaluator.records}
