"""Rank agreement between a cheap predictor of subnet quality and a reference measurement.

Kendall tau and Spearman rho come from ``scipy.stats``; the sparse Kendall tau (Yu et al. 2020, "Evaluating the Search
Phase of Neural Architecture Search") treats accuracies closer than 0.1 percentage points as ties by rounding them to
0.1 % before Kendall tau. Rows where either value is NaN are left out of the correlations (``-inf``, e.g. NASWOT of a
collapsed network, is a valid "worst" rank); the top-k overlap ranks NaN and ``-inf`` predictor values last.

``bootstrap_ci`` gives percentile-bootstrap intervals of Kendall tau-b and Spearman rho: with 8-30 subnets one swapped
pair moves tau by 0.05-0.1, so a point estimate alone over-states what a report can tell apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

SPARSE_DECIMALS = 1  # accuracies in percent rounded to 0.1 %


def _valid_pairs(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mask = ~np.isnan(pred) & ~np.isnan(ref)
    return pred[mask], ref[mask]


def _degenerate(p: np.ndarray, r: np.ndarray) -> bool:
    return len(p) < 2 or len(np.unique(p)) < 2 or len(np.unique(r)) < 2


def _stat(result: object) -> float:
    value = getattr(result, "statistic", None)
    if value is None:
        value = result[0]  # type: ignore[index]
    value = float(value)
    return value if math.isfinite(value) else float("nan")


def kendall_tau(pred: Sequence[float], ref: Sequence[float]) -> float:
    """Kendall tau-b over the non-NaN pairs; NaN if fewer than two or either side is constant."""
    from scipy.stats import kendalltau

    p, r = _valid_pairs(np.asarray(pred, float), np.asarray(ref, float))
    if _degenerate(p, r):
        return float("nan")
    return _stat(kendalltau(p, r))


def spearman_rho(pred: Sequence[float], ref: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    p, r = _valid_pairs(np.asarray(pred, float), np.asarray(ref, float))
    if _degenerate(p, r):
        return float("nan")
    return _stat(spearmanr(p, r))


def sparse_kendall_tau(pred: Sequence[float], ref: Sequence[float], pred_is_accuracy: bool) -> float:
    """Kendall tau after rounding accuracies (percent) to 0.1 %; a non-accuracy predictor is not rounded."""
    p = np.asarray(pred, float)
    p = np.round(p, SPARSE_DECIMALS) if pred_is_accuracy else p
    return kendall_tau(p, np.round(np.asarray(ref, float), SPARSE_DECIMALS))


def top_k_indices(values: Sequence[float], k: int) -> list[int]:
    """Indices of the ``k`` largest values; ties keep the row order, NaN and -inf come last."""
    v = np.asarray(values, float)
    v = np.where(np.isfinite(v) | (v == np.inf), v, -np.inf)
    order = sorted(range(len(v)), key=lambda i: (-v[i], i))
    return order[: max(0, min(k, len(v)))]


def top_k_overlap(pred: Sequence[float], ref: Sequence[float], k: int) -> float:
    """``|top_k(pred) & top_k(ref)| / k`` with ``k`` capped at the number of rows (1.0 = same top-k set)."""
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {k}")
    k = min(k, len(ref))
    if k == 0:
        return float("nan")
    return len(set(top_k_indices(pred, k)) & set(top_k_indices(ref, k))) / k


def _tau_b_rows(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Kendall tau-b of every row pair of ``p`` and ``r`` (B x n), vectorised: B resamples cost one numpy pass."""
    dp = np.sign(p[:, :, None] - p[:, None, :])
    dr = np.sign(r[:, :, None] - r[:, None, :])
    upper = np.triu(np.ones(p.shape[1], dtype=bool), 1)
    concordance = (dp * dr)[:, upper].sum(1)
    untied = np.count_nonzero(dp[:, upper], axis=1) * np.count_nonzero(dr[:, upper], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return concordance / np.sqrt(untied)


def _rho_rows(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Spearman rho of every row pair: Pearson correlation of the (average-tie) ranks within each row."""
    from scipy.stats import rankdata

    a, b = rankdata(p, axis=1), rankdata(r, axis=1)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


def bootstrap_ci(
    pred: Sequence[float], ref: Sequence[float], resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Percentile-bootstrap intervals of Kendall tau-b and Spearman rho over resampled (pred, ref) pairs.

    Rows with NaN on either side are dropped first (as for the point estimates). Resamples in which either side is
    constant have no correlation and are skipped rather than counted as 0; ``resamples_used`` says how many were
    left. The same ``seed`` draws the same row indices for every signal of equal length, so intervals are paired.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    from scipy.stats import rankdata

    p, r = _valid_pairs(np.asarray(pred, float), np.asarray(ref, float))
    p, r = rankdata(p), rankdata(r)  # ranks: -inf is a valid worst value, and the statistics only see ranks
    nan_ci = {"kendall_tau_ci": [math.nan, math.nan], "spearman_rho_ci": [math.nan, math.nan], "resamples_used": 0}
    if _degenerate(p, r) or resamples < 1:
        return nan_ci
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // (len(p) * len(p)))  # bound the B x n x n sign tensors
    taus, rhos = [], []
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, len(p), size=(min(chunk, resamples - start), len(p)))
        bp, br = p[idx], r[idx]
        ok = (np.ptp(bp, axis=1) > 0) & (np.ptp(br, axis=1) > 0)
        taus.append(_tau_b_rows(bp[ok], br[ok]))
        rhos.append(_rho_rows(bp[ok], br[ok]))
    tau, rho = np.concatenate(taus), np.concatenate(rhos)
    if len(tau) < 2:
        return nan_ci
    q = [50 * (1 - confidence), 50 * (1 + confidence)]
    return {
        "kendall_tau_ci": [float(v) for v in np.percentile(tau, q)],
        "spearman_rho_ci": [float(v) for v in np.percentile(rho, q)],
        "resamples_used": len(tau),
    }


def rank_agreement(pred: Sequence[float], ref: Sequence[float], top_k: int, pred_is_accuracy: bool) -> dict[str, float]:
    """Every agreement statistic of one predictor against the reference."""
    p, r = np.asarray(pred, float), np.asarray(ref, float)
    return {
        "kendall_tau": kendall_tau(p, r),
        "spearman_rho": spearman_rho(p, r),
        "sparse_kendall_tau": sparse_kendall_tau(p, r, pred_is_accuracy),
        "top_k_overlap": top_k_overlap(p, r, top_k),
        "n": int(np.sum(~np.isnan(p) & ~np.isnan(r))),
    }


__all__ = [
    "bootstrap_ci",
    "kendall_tau",
    "rank_agreement",
    "sparse_kendall_tau",
    "spearman_rho",
    "top_k_indices",
    "top_k_overlap",
]
