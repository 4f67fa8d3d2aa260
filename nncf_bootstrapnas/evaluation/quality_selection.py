"""Selection-mechanism comparison of the quality report: which cheap score picks the best subnet within a budget?

Rank correlations over all subnets say how well a signal orders the whole range; a search only needs the final pick
within a MACs budget to be good. For each budget every mechanism (inherited accuracy with and without BN
recalibration, MACs as the "largest that fits" baseline, each zero-cost proxy, and a predictor of BN-recalibrated
accuracy from the subnet encoding) picks its highest-scoring subnet with MACs <= budget; the pick is judged by its
stand-alone accuracy. Regret = best stand-alone accuracy within the budget minus the pick's.

The predictor is ``PredictorSelection`` (the ``predictor`` mechanism, extra trees on the ordinal encoding, no MACs
feature) scored out of fold: a subnet is scored only by a model fitted without it, else it would predict its own
training target and look perfect.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .selection import PredictorSelection

PREDICTOR = "predictor"
PREDICTOR_TARGET = "inherited_bn_acc"
BUDGET_QUANTILES = (1 / 3, 2 / 3, 1.0)


def default_budgets(macs: Sequence[float]) -> list[float]:
    """The 1/3 and 2/3 quantiles and the maximum of the measured MACs (distinct, ascending)."""
    return sorted({float(b) for b in np.quantile(np.asarray(macs, float), BUDGET_QUANTILES)})


def out_of_fold_scores(
    space: Any,
    configs: Sequence[Mapping[str, Mapping[str, int]]],
    targets: Sequence[float],
    seed: int = 0,
    regressor_factory: Callable[[], Any] | None = None,
    max_folds: int = 5,
) -> tuple[np.ndarray, int]:
    """Predictor scores of ``configs``, each from a ``PredictorSelection`` fitted on the other folds only.

    K-fold with ``min(max_folds, n)`` folds (leave-one-out for few subnets), shuffled by ``seed``. Returns the scores
    (NaN for all when fewer than 3 rows: a fold model needs two rows) and the number of folds.
    """
    from sklearn.model_selection import KFold

    n = len(configs)
    scores = np.full(n, np.nan)
    if n < 3:
        return scores, 0
    folds = min(max_folds, n)
    y = np.asarray(targets, float)
    for train, test in KFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros((n, 1))):
        regressor = regressor_factory() if regressor_factory is not None else None
        model = PredictorSelection(space, regressor=regressor, seed=seed)
        model.fit([configs[i] for i in train], y[train])
        for i in test:
            scores[i] = model.score(None, configs[i])
    return scores, folds


def mechanism_scores(
    rows: Sequence[Mapping[str, Any]], proxies: Sequence[str], predictor: np.ndarray
) -> dict[str, np.ndarray]:
    """Higher-is-better score of every row under every mechanism, keyed by the report's signal names."""
    scores = {c: np.array([r[c] for r in rows], float) for c in ("inherited_bn_acc", "inherited_acc", "macs")}
    for p in proxies:
        scores[f"proxy:{p}"] = np.array([r["proxies"][p] for r in rows], float)
    scores[PREDICTOR] = np.asarray(predictor, float)
    return scores


def pick(scores: np.ndarray, feasible: np.ndarray) -> int | None:
    """Index of the highest score among ``feasible`` rows (NaN never picked; ties: the first, i.e. fewest MACs)."""
    candidates = [i for i in np.flatnonzero(feasible) if not math.isnan(scores[i])]
    if not candidates:
        return None
    return max(candidates, key=lambda i: (scores[i], -i))


def _budget_entry(
    budget: float, rows: Sequence[Mapping[str, Any]], scores: Mapping[str, np.ndarray], reference: str
) -> dict[str, Any]:
    macs = np.array([r["macs"] for r in rows], float)
    ref = np.array([r[reference] for r in rows], float)
    feasible = macs <= budget
    best = pick(ref, feasible)
    best_acc = ref[best] if best is not None else math.nan
    picks: dict[str, dict[str, Any]] = {}
    for name, values in scores.items():
        i = pick(values, feasible)
        if i is None:
            picks[name] = {"index": None, "macs": None, reference: None, "regret": None, "picked_best": False}
            continue
        regret = float(best_acc - ref[i])
        picks[name] = {"index": int(i), "macs": int(macs[i]), reference: float(ref[i]), "regret": regret}
        picks[name]["picked_best"] = bool(regret <= 0.0)
    return {
        "macs_budget": float(budget),
        "feasible": int(feasible.sum()),
        "best_index": best,
        "best_acc": float(best_acc),
        "picks": picks,
    }


def _summary(budgets: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Mean regret over the budgets a mechanism could pick in, and how often it picked the best subnet."""
    out = {}
    for name in names:
        regrets = [b["picks"][name]["regret"] for b in budgets if b["picks"][name]["regret"] is not None]
        out[name] = {
            "mean_regret": float(np.mean(regrets)) if regrets else math.nan,
            "best_picks": sum(bool(b["picks"][name]["picked_best"]) for b in budgets),
            "budgets": len(budgets),
        }
    return out


def compare_selection(
    rows: Sequence[Mapping[str, Any]],
    space: Any,
    proxies: Sequence[str],
    reference: str = "standalone_acc",
    budgets: Sequence[float] | None = None,
    seed: int = 0,
    regressor_factory: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """The selection section of the report: per budget and mechanism the pick and its regret, and a summary.

    ``regressor_factory`` replaces the predictor's regressor (a fresh one per fold); tests use it to spy on fits.
    """
    targets = [r[PREDICTOR_TARGET] for r in rows]
    predictor, folds = out_of_fold_scores(space, [r["config"] for r in rows], targets, seed, regressor_factory)
    scores = mechanism_scores(rows, proxies, predictor)
    chosen = default_budgets([r["macs"] for r in rows]) if budgets is None else sorted(float(b) for b in budgets)
    entries = [_budget_entry(b, rows, scores, reference) for b in chosen]
    return {
        "reference": reference,
        "mechanisms": list(scores),
        "predictor": {
            "target": PREDICTOR_TARGET,
            "features": "ordinal subnet encoding (no MACs)",
            "folds": folds,
            "out_of_fold_scores": [float(v) for v in predictor],
        },
        "budgets": entries,
        "summary": _summary(entries, list(scores)),
    }


__all__ = ["compare_selection", "default_budgets", "mechanism_scores", "out_of_fold_scores", "pick"]
