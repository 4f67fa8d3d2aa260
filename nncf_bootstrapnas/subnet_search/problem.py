"""The pymoo problem: integer-encoded subnets -> (F, G) in pymoo's minimisation form.

Maximised objectives are negated for pymoo; constraints arrive as scaled ``G <= 0`` (see ``constraints.py``). The
problem holds no model: evaluation is delegated to an :class:`Evaluator`, which is dropped when the problem is pickled
(pymoo algorithms keep a reference to their problem and are pickled into checkpoints).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.core.problem import Problem

from nncf_bootstrapnas.subnet_search.constraints import ConstraintSet
from nncf_bootstrapnas.subnet_search.objectives import Objective


class SearchProblem(Problem):
    """Integer problem over ``space`` (bounds from ``space.lower_bounds/upper_bounds``)."""

    def __init__(
        self,
        space: Any,
        objectives: Sequence[Objective],
        constraints: ConstraintSet | None = None,
        evaluator: Any = None,
    ) -> None:
        if len(space) == 0:
            raise ValueError("the search space has no variables: every elastic dimension is fixed, nothing to search")
        self.objectives = list(objectives)
        self.constraint_set = constraints if constraints is not None else ConstraintSet()
        self.evaluator = evaluator
        self.space_json = space.to_json()
        super().__init__(
            n_var=len(space),
            n_obj=len(self.objectives),
            n_ieq_constr=len(self.constraint_set),
            xl=np.asarray(space.lower_bounds, dtype=int),
            xu=np.asarray(space.upper_bounds, dtype=int),
            vtype=int,
        )
        self.signs = np.array([-1.0 if o.direction == "max" else 1.0 for o in self.objectives])

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    def to_F(self, values: Sequence[Mapping[str, float]]) -> np.ndarray:
        """Minimisation-space objective matrix of measured value dicts."""
        F = np.array([[v[o.name] for o in self.objectives] for v in values], dtype=float)
        return F.reshape(len(values), self.n_obj) * self.signs

    def from_F(self, F: np.ndarray) -> np.ndarray:
        """Back to the objectives' own units and directions."""
        return np.atleast_2d(F) * self.signs

    def to_G(self, values: Sequence[Mapping[str, float]]) -> np.ndarray:
        G = [self.constraint_set.evaluate(v)[1] for v in values]
        return np.array(G, dtype=float).reshape(len(values), self.n_ieq_constr)

    def _evaluate(self, X: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        if self.evaluator is None:
            raise RuntimeError("SearchProblem has no evaluator attached; set problem.evaluator before evaluating")
        records = self.evaluator.evaluate(X)
        values = [r["values"] for r in records]
        out["F"] = self.to_F(values)
        if self.n_ieq_constr:
            out["G"] = self.to_G(values)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["evaluator"] = None
        return state
