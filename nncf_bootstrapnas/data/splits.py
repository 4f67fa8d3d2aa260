"""Seeded, stratified index splits shared by every data module (numpy only, so they depend on the seed alone)."""

from __future__ import annotations

import numpy as np


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, val) indices with ``round(n_c * val_fraction)`` samples of every class ``c`` in val.

    Implemented with numpy only (not ``train_test_split``) so that the split depends on ``seed`` alone, never on the
    scikit-learn version.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_val = int(round(len(idx) * val_fraction))
        val.append(rng.permutation(idx)[:n_val])
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return train_idx, val_idx


def fixed_subset(indices: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of ``indices`` drawn once from ``seed``, sorted: the same images on every call."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(indices)[:n])
