"""Differentiable cost (MACs or params) of a subnet from per-variable choices, for training the generator.

A per-variable table (cost change when one variable moves away from the maximum, all others at maximum) is exact for
one variable but not additive: a convolution between width groups ``u`` and ``v`` costs ``F * s_u * s_v`` (``s`` = kept
fraction), so shrinking both saves less than the two deltas together; a skipped block's cost depends on the widths
inside it, and an elastic kernel scales a convolution whose widths also change. The fitted model is multilinear:
one coefficient per (variable, choice) plus a product term for every pair and triple of variables found to interact
(the joint change differs from the sum of the lower-order changes, measured from the maximum subnet). A width enters a
product as its fraction ``s``; depth and kernel enter as choice indicators. Coefficients are fitted by least squares on
sampled configs; the errors of the additive table and of the fitted model on held-out samples are in ``error``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

CONSTRAINTS = ("macs", "params")
Term = tuple[int, ...]


def cost_function(supernet: Any, constraint: str):  # noqa: ANN201
    if constraint not in CONSTRAINTS:
        raise ValueError(f"generator constraint {constraint!r} is not supported; allowed: {', '.join(CONSTRAINTS)}")
    return getattr(supernet, constraint)


def onehot(space: Any, encodings: np.ndarray) -> np.ndarray:
    """One column per (variable, choice) of integer encodings ``(n, num_variables)``."""
    sizes = [len(v.choices) for v in space.variables]
    enc = np.asarray(encodings, dtype=int).reshape(-1, len(sizes))
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    out = np.zeros((len(enc), int(sum(sizes))))
    out[np.arange(len(enc))[:, None], offsets + enc] = 1.0
    return out


def split_onehot(space: Any, flat: torch.Tensor) -> list[torch.Tensor]:
    sizes = [len(v.choices) for v in space.variables]
    return list(torch.split(flat, sizes, dim=1))


def _basis(space: Any, onehots: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per variable, the columns it enters products with: ``(B, 1)`` width fraction, else ``(B, C - 1)`` indicators."""
    out = []
    for v, h in zip(space.variables, onehots):
        if v.dim == "width":
            frac = torch.as_tensor(np.asarray(v.choices, float) / v.choices[0], dtype=h.dtype)
            out.append((h @ frac)[:, None])
        else:
            out.append(h[:, 1:])
    return out


def _products(bases: list[torch.Tensor], terms: Sequence[Term]) -> torch.Tensor:
    cols = []
    for term in terms:
        prod = bases[term[0]]
        for j in term[1:]:
            prod = (prod[:, :, None] * bases[j][:, None, :]).reshape(prod.shape[0], -1)
        cols.append(prod)
    return torch.cat(cols, dim=1) if cols else bases[0][:, :0]


class CostModel:
    """``cost = b + sum_v theta_v[a_v] + sum_terms beta_term * prod(basis)`` in absolute units (MACs or params)."""

    def __init__(
        self,
        space: Any,
        constraint: str,
        coef: np.ndarray,
        terms: Sequence[Term],
        lo: float,
        hi: float,
        error: Mapping[str, Any] | None = None,
    ) -> None:
        self.space, self.constraint = space, constraint
        self.coef = np.asarray(coef, dtype=float)
        self.terms: list[Term] = [tuple(int(j) for j in t) for t in terms]
        self.lo, self.hi = float(lo), float(hi)
        self.error = dict(error or {})
        self.table: list[list[float]] = []  # per variable and choice: cost change from the maximum, others at maximum

    # ---- fitting ----------------------------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls, supernet: Any, space: Any = None, constraint: str = "macs", num_samples: int = 300, seed: int = 0
    ) -> CostModel:
        """Detect interacting pairs and triples from the maximum, fit on ``num_samples`` random configs (plus the
        minimum and maximum) and test on as many more."""
        space = space if space is not None else supernet.search_space
        cost = cost_function(supernet, constraint)
        nvar = len(space.variables)
        if nvar == 0:
            raise ValueError("generator: the search space has no variables; nothing to generate")
        memo: dict[frozenset[int], float] = {}

        def at_min(vars_: Sequence[int]) -> float:
            """Cost with ``vars_`` at their minimum, the rest at the maximum (memoised)."""
            key = frozenset(vars_)
            if key not in memo:
                enc = np.zeros(nvar, dtype=int)
                for j in key:
                    enc[j] = space.upper_bounds[j]
                memo[key] = float(cost(space.decode(enc)))
            return memo[key]

        def interaction(vars_: Sequence[int]) -> float:  # inclusion-exclusion from the maximum
            return sum(
                (-1) ** (len(vars_) - r) * at_min(sub)
                for r in range(len(vars_) + 1)
                for sub in itertools.combinations(vars_, r)
            )

        tol = 1e-9 * max(abs(at_min(())), 1.0)
        pairs = [p for p in itertools.combinations(range(nvar), 2) if abs(interaction(p)) > tol]
        near: dict[int, set[int]] = {j: set() for j in range(nvar)}
        for u, w in pairs:
            near[u].add(w)
            near[w].add(u)
        # a third variable is only tried if it interacts with one of the pair (keeps this O(pairs * degree))
        candidates = {tuple(sorted((u, w, z))) for u, w in pairs for z in near[u] | near[w] if z not in (u, w)}
        triples = sorted(t for t in candidates if abs(interaction(t)) > tol)
        rng = np.random.default_rng(seed)
        top = space.upper_bounds
        train = np.array([space.encode(space.sample(rng)) for _ in range(num_samples)] + [np.zeros(nvar, int), top])
        test = np.array([space.encode(space.sample(rng)) for _ in range(num_samples)])
        y_train = np.array([float(cost(space.decode(e))) for e in train])
        y_test = np.array([float(cost(space.decode(e))) for e in test])
        model = cls(space, constraint, np.zeros(0), [*pairs, *triples], lo=at_min(range(nvar)), hi=at_min(()))
        X = model._features(train)
        scale = max(abs(model.hi), 1.0)
        gram = X.T @ X + 1e-8 * len(X) * np.eye(X.shape[1])
        model.coef = np.linalg.solve(gram, X.T @ (y_train / scale)) * scale
        table = [
            [_single_delta(space, cost, j, i, model.hi) for i in range(len(v.choices))]
            for j, v in enumerate(space.variables)
        ]
        additive = model.hi + np.array([sum(table[j][e[j]] for j in range(nvar)) for e in test])
        model.table = table
        model.error = {
            "num_train": int(len(train)),
            "num_test": int(len(test)),
            "interacting_pairs": len(pairs),
            "interacting_triples": len(triples),
            "num_features": int(X.shape[1]),
            "additive_table": _errors(additive, y_test),
            "fitted": _errors(model.predict_encodings(test), y_test),
        }
        return model

    def _features(self, encodings: np.ndarray) -> np.ndarray:
        oh = torch.as_tensor(onehot(self.space, encodings), dtype=torch.float64)
        return self._torch_features(split_onehot(self.space, oh)).numpy()

    def _torch_features(self, onehots: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([torch.cat(list(onehots), dim=1), _products(_basis(self.space, onehots), self.terms)], dim=1)

    # ---- prediction ---------------------------------------------------------------------------------------------------
    def predict_encodings(self, encodings: np.ndarray) -> np.ndarray:
        return self._features(encodings) @ self.coef

    def predict(self, configs: Sequence[Mapping[str, Mapping[str, int]]]) -> np.ndarray:
        return self.predict_encodings(np.array([self.space.encode(c) for c in configs]))

    def normalise(self, value: Any) -> Any:
        """Absolute cost -> [0, 1] between the minimum and maximum subnets."""
        return (value - self.lo) / max(self.hi - self.lo, 1e-12)

    def torch_cost(self, onehots: Sequence[torch.Tensor]) -> torch.Tensor:
        """Normalised cost of a batch of (possibly straight-through) one-hot choices, one ``(B, C_v)`` per variable."""
        feats = self._torch_features(onehots)
        cost = feats @ torch.as_tensor(self.coef, dtype=feats.dtype)
        return (cost - self.lo) / max(self.hi - self.lo, 1e-12)


def _single_delta(space: Any, cost: Any, j: int, index: int, full: float) -> float:
    if index == 0:
        return 0.0
    enc = np.zeros(len(space.variables), dtype=int)
    enc[j] = index
    return float(cost(space.decode(enc))) - full


def _errors(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    rel = np.abs(pred - true) / np.maximum(np.abs(true), 1e-12)
    return {"mean_rel_error": float(np.mean(rel)), "max_rel_error": float(np.max(rel))}


__all__ = ["CONSTRAINTS", "CostModel", "cost_function", "onehot", "split_onehot"]
