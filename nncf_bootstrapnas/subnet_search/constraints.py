"""Constraints of a search (``"macs <= 50e6"``, ``"accuracy >= ref_acc - acc_delta"``) as pymoo sees them.

Parsing is the config package's (``config.Constraint``, the one syntax). Here they reach pymoo as ``G <= 0`` (so
the algorithms steer away from infeasible subnets instead of discarding them after the fact). Each ``g`` is divided
by ``max(|bound|, 1)`` so that MACs (1e6) and accuracy (1) constraints weigh alike in pymoo's summed constraint
violation; rows keep the unscaled ``metric - bound`` (or ``bound - metric``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from nncf_bootstrapnas.config.constraints import OPS, Constraint, ConstraintError


class ConstraintSet:
    """All constraints of a search with the environment their bounds are evaluated in."""

    def __init__(self, specs: Sequence[Any] = ()) -> None:
        self.constraints = [Constraint.parse(s, f"bootstrapNAS.search.constraints[{i}]") for i, s in enumerate(specs)]
        self.env: dict[str, float | None] = {}

    def __len__(self) -> int:
        return len(self.constraints)

    def __iter__(self) -> Iterator[Constraint]:
        return iter(self.constraints)

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(c.objective for c in self.constraints))

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.constraints]

    def evaluate(self, values: Mapping[str, float]) -> tuple[list[float], list[float], bool]:
        """(unscaled g, scaled g for pymoo, feasible) of one measured row."""
        raw = [c.g(values[c.objective], self.env) for c in self.constraints]
        scaled = [g / c.scale(self.env) for g, c in zip(raw, self.constraints)]
        return raw, scaled, all(g <= 0 for g in raw)


__all__ = ["OPS", "Constraint", "ConstraintError", "ConstraintSet"]
