"""Pareto fronts and hypervolume on top of pymoo (``NonDominatedSorting``, ``HV``).

Hypervolume is computed in a normalised, minimisation space: every objective is negated if it is maximised, then
mapped with ``(f - ideal) / (nadir - ideal)`` where ideal and nadir come from the MAXIMUM and MINIMUM subnets (the two
ends of any weight-sharing trade-off, always measured first). The reference point is ``1 + margin`` in every
coordinate, so a subnet as bad as the worse end in every objective still adds volume. An objective on which the two
ends tie falls back to the range over all measured rows (or 1). The reference is fixed once per result, so the
hypervolume history is comparable across evaluations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class HVReference:
    """Normalisation and reference point of a hypervolume, in pymoo's minimisation space."""

    ideal: tuple[float, ...]
    nadir: tuple[float, ...]
    margin: float = 0.1
    source: str = "maximum/minimum subnet"

    @property
    def point(self) -> np.ndarray:
        return np.full(len(self.ideal), 1.0 + self.margin)

    def normalise(self, F: np.ndarray) -> np.ndarray:
        ideal, nadir = np.asarray(self.ideal), np.asarray(self.nadir)
        return (np.atleast_2d(F) - ideal) / (nadir - ideal)

    def to_json(self) -> dict[str, Any]:
        return {
            "ideal": list(self.ideal),
            "nadir": list(self.nadir),
            "margin": self.margin,
            "point_normalised": self.point.tolist(),
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HVReference:
        return cls(tuple(data["ideal"]), tuple(data["nadir"]), float(data["margin"]), data.get("source", ""))

    @classmethod
    def from_anchors(cls, anchors: np.ndarray, F_all: np.ndarray | None = None, margin: float = 0.1) -> HVReference:
        """Ideal/nadir of ``anchors`` (rows of F, e.g. maximum and minimum subnet); ties widen to ``F_all``."""
        anchors = np.atleast_2d(np.asarray(anchors, dtype=float))
        ideal, nadir = anchors.min(axis=0), anchors.max(axis=0)
        source = "maximum/minimum subnet"
        for j in np.flatnonzero(nadir - ideal <= 1e-12 * np.maximum(1.0, np.abs(ideal))):
            if F_all is not None and len(F_all):
                lo, hi = float(np.min(F_all[:, j])), float(np.max(F_all[:, j]))
                if hi - lo > 1e-12 * max(1.0, abs(lo)):
                    ideal[j], nadir[j] = min(ideal[j], lo), max(nadir[j], hi)
                    source = "maximum/minimum subnet, widened to all rows where they tie"
                    continue
            nadir[j] = ideal[j] + 1.0
            source = "maximum/minimum subnet, unit range where all rows tie"
        return cls(tuple(float(v) for v in ideal), tuple(float(v) for v in nadir), float(margin), source)

    @classmethod
    def from_rows(cls, F_all: np.ndarray, margin: float = 0.1) -> HVReference:
        """Ideal/nadir of all rows: a common reference for comparing several searches (benchmarks)."""
        F_all = np.atleast_2d(np.asarray(F_all, dtype=float))
        ref = cls.from_anchors(np.vstack([F_all.min(axis=0), F_all.max(axis=0)]), F_all, margin)
        return cls(ref.ideal, ref.nadir, margin, "ideal/nadir of all rows")


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``F`` (minimisation), via pymoo's non-dominated sorting."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    F = np.atleast_2d(np.asarray(F, dtype=float))
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    if len(F) == 1:
        return np.zeros(1, dtype=int)
    return np.sort(NonDominatedSorting().do(F, only_non_dominated_front=True))


def hypervolume(F: np.ndarray, reference: HVReference) -> float:
    """pymoo HV of the (unnormalised, minimisation-space) points ``F`` under ``reference``."""
    from pymoo.indicators.hv import HV

    F = np.atleast_2d(np.asarray(F, dtype=float))
    if F.size == 0:
        return 0.0
    Fn = reference.normalise(F)
    inside = np.all(Fn < reference.point, axis=1)
    if not inside.any():
        return 0.0
    return float(HV(ref_point=reference.point)(Fn[inside]))


def hypervolume_history(F: np.ndarray, feasible: Sequence[bool], reference: HVReference) -> list[float]:
    """Hypervolume of the feasible rows ``F[:k+1]`` for every ``k``; recomputed only when the front changes."""
    F = np.atleast_2d(np.asarray(F, dtype=float))
    history: list[float] = []
    front = np.zeros((0, F.shape[1] if F.size else 0))
    value = 0.0
    for f, ok in zip(F, feasible):
        if ok and not _dominated_by_any(f, front):
            keep = ~np.all(f <= front, axis=1) if len(front) else np.zeros(0, dtype=bool)
            front = np.vstack([front[keep], f[None, :]])
            value = hypervolume(front, reference)
        history.append(value)
    return history


def _dominated_by_any(f: np.ndarray, front: np.ndarray) -> bool:
    if len(front) == 0:
        return False
    return bool(np.any(np.all(front <= f, axis=1)))


def crowding_order(F: np.ndarray) -> np.ndarray:
    """Indices of ``F`` (one front) from the most to the least isolated (pymoo crowding distance)."""
    from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance

    F = np.atleast_2d(np.asarray(F, dtype=float))
    if len(F) <= 2:
        return np.arange(len(F))
    cd = calc_crowding_distance(F)
    return np.argsort(-cd, kind="stable")
