"""Accuracy (and other expensive-objective) predictors for LINAS, chosen per objective by cross-validation.

Candidates pair a scikit-learn regressor with a feature encoding of the integer config: ``ordinal`` (index scaled to
[0, 1], good for trees) or ``onehot`` (one column per choice, good for linear and kernel models). Targets are
standardised. The candidate with the lowest cross-validated RMSE is refitted on every measured row. Encodings are
plain numpy (no sklearn pipelines): LINAS refits every round and predicts thousands of candidates per round.

Uncertainty comes for free from the cross-validation: the chosen candidate's K fold models, each fitted without one
fold, form an ensemble (as in jackknife+/CV+ prediction intervals); their spread is ``predict_std``. Why: the inner
search drives candidates to where the single refitted model is most optimistic, which on a trained supernet is
mostly where it is wrong; where the fold models disagree, the data do not pin the prediction down.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nncf_bootstrapnas.evaluation.ranking import kendall_tau


def _candidates() -> dict[str, tuple[Callable[[int], Any], str]]:
    from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, RandomForestRegressor
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import Ridge
    from sklearn.svm import SVR

    return {
        "ridge": (lambda seed: Ridge(alpha=1.0), "onehot"),
        "extra_trees": (lambda seed: ExtraTreesRegressor(n_estimators=50, random_state=seed, n_jobs=1), "ordinal"),
        "random_forest": (lambda seed: RandomForestRegressor(n_estimators=50, random_state=seed, n_jobs=1), "ordinal"),
        "gradient_boosting": (lambda seed: GradientBoostingRegressor(n_estimators=50, random_state=seed), "ordinal"),
        "svr": (lambda seed: SVR(C=10.0, epsilon=0.01), "onehot"),
        "kernel_ridge": (lambda seed: KernelRidge(alpha=0.1, kernel="rbf"), "onehot"),
    }


PREDICTOR_NAMES = ("ridge", "extra_trees", "random_forest", "gradient_boosting", "svr", "kernel_ridge")


def encode(X: np.ndarray, upper_bounds: np.ndarray, kind: str) -> np.ndarray:
    """``ordinal``: index / max index per variable; ``onehot``: one column per (variable, choice)."""
    X = np.asarray(X, dtype=float).round().astype(int).reshape(-1, len(upper_bounds))
    xu = np.asarray(upper_bounds, dtype=int)
    if kind == "ordinal":
        return X / np.maximum(xu, 1)
    offsets = np.concatenate([[0], np.cumsum(xu + 1)[:-1]])
    out = np.zeros((len(X), int(np.sum(xu + 1))))
    out[np.arange(len(X))[:, None], offsets + X] = 1.0
    return out


@dataclass
class Predictor:
    """A fitted regressor with its encoding and target standardisation."""

    name: str
    kind: str
    model: Any
    upper_bounds: np.ndarray
    mean: float
    scale: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        Z = encode(X, self.upper_bounds, self.kind)
        return np.asarray(self.model.predict(Z), dtype=float) * self.scale + self.mean


def make_predictor(name: str, X: np.ndarray, y: np.ndarray, upper_bounds: np.ndarray, seed: int = 0) -> Predictor:
    """Fit candidate ``name`` on (X, y)."""
    table = _candidates()
    if name not in table:
        raise ValueError(f"unknown LINAS predictor {name!r}; allowed: {', '.join(PREDICTOR_NAMES)}")
    build, kind = table[name]
    y = np.asarray(y, dtype=float)
    mean, scale = float(np.mean(y)), float(np.std(y)) or 1.0
    model = build(seed).fit(encode(X, upper_bounds, kind), (y - mean) / scale)
    return Predictor(name, kind, model, np.asarray(upper_bounds, dtype=int), mean, scale)


@dataclass
class FittedPredictor:
    """The chosen predictor of one metric and how well each candidate cross-validated."""

    metric: str
    predictor: Predictor
    cv_rmse: float
    cv_tau: float
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    members: list[Predictor] = field(default_factory=list)  # the fold models of the chosen candidate

    @property
    def name(self) -> str:
        return self.predictor.name

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predictor.predict(X)

    def predict_std(self, X: np.ndarray) -> np.ndarray:
        """Spread of the fold models' predictions (zeros without cross-validation)."""
        if len(self.members) < 2:
            return np.zeros(len(np.atleast_2d(X)))
        return np.std([m.predict(X) for m in self.members], axis=0)

    def summary(self) -> dict[str, Any]:
        return {"predictor": self.name, "cv_rmse": _nan_none(self.cv_rmse), "cv_tau": _nan_none(self.cv_tau)}


def fit_predictor(
    metric: str, X: np.ndarray, y: Sequence[float], upper_bounds: np.ndarray, names: Sequence[str], seed: int = 0
) -> FittedPredictor:
    """K-fold cross-validate ``names`` on (X, y) and refit the lowest-RMSE one on every row."""
    from sklearn.model_selection import KFold

    X, y = np.asarray(X, dtype=int), np.asarray(y, dtype=float)
    for name in names:
        if name not in PREDICTOR_NAMES:
            raise ValueError(f"bootstrapNAS.search.linas.predictors: unknown {name!r}; allowed: {PREDICTOR_NAMES}")
    scores: dict[str, dict[str, float]] = {}
    members: dict[str, list[Predictor]] = {}
    if len(y) >= 6 and np.ptp(y) > 0:
        folds = list(KFold(n_splits=3 if len(y) < 40 else 5, shuffle=True, random_state=seed).split(X))
        for name in names:
            pred = np.zeros_like(y)
            members[name] = [make_predictor(name, X[train], y[train], upper_bounds, seed) for train, _ in folds]
            for model, (_, test) in zip(members[name], folds):
                pred[test] = model.predict(X[test])
            scores[name] = {"cv_rmse": float(np.sqrt(np.mean((pred - y) ** 2))), "cv_tau": kendall_tau(pred, y)}
        best = min(scores, key=lambda n: (scores[n]["cv_rmse"], list(names).index(n)))
    else:  # too few or constant rows to cross-validate: the simplest model
        best = "ridge" if "ridge" in names else names[0]
        scores[best] = {"cv_rmse": float("nan"), "cv_tau": float("nan")}
    fitted = make_predictor(best, X, y, upper_bounds, seed)
    cv = scores[best]
    return FittedPredictor(metric, fitted, cv["cv_rmse"], cv["cv_tau"], scores, members.get(best, []))


def _nan_none(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
