"""``SearchResult``: every measured subnet, the measured Pareto front, hypervolume history and the legacy "best".

All values are measurements (LINAS predictions never appear here). Plain JSON round-trips through ``to_json`` /
``from_json``; ``to_csv``, ``to_markdown`` and the PNG plots (``plots.py``) are views of the same rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nncf_bootstrapnas.subnet_search.indicators import HVReference, hypervolume_history, non_dominated
from nncf_bootstrapnas.utils.io import atomic_write_text, json_safe, write_csv

ACCURACY = "accuracy"


@dataclass(frozen=True)
class Selection:
    """The chosen row of a search, the rule that chose it and whether it meets the accuracy tolerance."""

    row: dict[str, Any]
    rule: str
    qualified: bool

    @property
    def config(self) -> dict[str, Any]:
        return self.row["config"]

    @property
    def values(self) -> dict[str, float]:
        return dict(self.row["values"])

    @property
    def index(self) -> int:
        return int(self.row["index"])


@dataclass
class SearchResult:
    """The outcome of one search; ``rows[i]`` is the i-th real evaluation (``index == i``).

    Each row: ``index``, ``x`` (encoding), ``config``, ``values`` (every measured metric), ``constraints`` (unscaled
    ``g`` per constraint, > 0 violates), ``feasible``, ``time_s``.
    """

    objectives: list[dict[str, str]]
    metrics: list[str]
    constraints: list[str]
    rows: list[dict[str, Any]]
    hv_reference: dict[str, Any]
    hv_history: list[float]
    algorithm: str
    seed: int
    ref_acc: float | None = None
    ref_acc_source: str = "not used"
    acc_delta: float = 1.0
    anchors: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    algorithm_stats: dict[str, Any] = field(default_factory=dict)
    stopped_by: str = ""

    # ---- objective space --------------------------------------------------------------------------------------------
    @property
    def objective_names(self) -> list[str]:
        return [o["name"] for o in self.objectives]

    @property
    def signs(self) -> np.ndarray:
        return np.array([-1.0 if o["direction"] == "max" else 1.0 for o in self.objectives])

    def F(self, rows: list[dict[str, Any]] | None = None) -> np.ndarray:
        """Minimisation-space objective matrix (maximised objectives negated) of ``rows`` (default: all)."""
        rows = self.rows if rows is None else rows
        F = np.array([[r["values"][n] for n in self.objective_names] for r in rows], dtype=float)
        return F.reshape(len(rows), len(self.objectives)) * self.signs

    @property
    def feasible(self) -> np.ndarray:
        return np.array([bool(r["feasible"]) for r in self.rows], dtype=bool)

    @property
    def front_indices(self) -> list[int]:
        """Row indices of the measured, feasible, non-dominated subnets, sorted by the first objective."""
        feasible = np.flatnonzero(self.feasible)
        if len(feasible) == 0:
            return []
        F = self.F()
        idx = feasible[non_dominated(F[feasible])]
        return [int(i) for i in sorted(idx, key=lambda i: (F[i][0], i))]

    @property
    def front(self) -> list[dict[str, Any]]:
        return [self.rows[i] for i in self.front_indices]

    @property
    def hypervolume(self) -> float:
        return self.hv_history[-1] if self.hv_history else 0.0

    def reference(self) -> HVReference:
        return HVReference.from_json(self.hv_reference)

    def hypervolume_history(self, reference: HVReference | None = None) -> list[float]:
        """HV after each evaluation under ``reference`` (default: this result's); benchmarks pass a shared one."""
        return hypervolume_history(self.F(), self.feasible, reference or self.reference())

    def evaluations_to_reach(self, target_hv: float, reference: HVReference | None = None) -> int | None:
        """Number of real evaluations after which the HV first reaches ``target_hv`` (None if never)."""
        for i, hv in enumerate(self.hypervolume_history(reference)):
            if hv >= target_hv - 1e-12:
                return i + 1
        return None

    # ---- anchors and the legacy "best" ------------------------------------------------------------------------------
    @property
    def maximum(self) -> dict[str, Any] | None:
        i = self.anchors.get("maximum")
        return None if i is None else self.rows[i]

    @property
    def minimum(self) -> dict[str, Any] | None:
        i = self.anchors.get("minimum")
        return None if i is None else self.rows[i]

    @property
    def efficiency_metric(self) -> str:
        """``macs`` when measured, else the first minimised objective: what the legacy "best" minimises."""
        if "macs" in self.metrics:
            return "macs"
        for o in self.objectives:
            if o["direction"] == "min":
                return o["name"]
        return self.objective_names[0]

    @property
    def best(self) -> dict[str, Any] | None:
        """Legacy selection: fewest MACs among feasible subnets with ``accuracy >= ref_acc - acc_delta``.

        ``ref_acc`` defaults to the measured maximum subnet's accuracy (legacy BootstrapNAS used -1, which made the
        tolerance test always pass and returned the smallest subnet). Without an accuracy metric: the front point
        closest to the normalised ideal point. ``None`` when no subnet qualifies.
        """
        rows = [r for r in self.rows if r["feasible"]]
        if ACCURACY in self.metrics:
            if self.ref_acc is not None:
                rows = [r for r in rows if r["values"][ACCURACY] >= self.ref_acc - self.acc_delta]
            eff = self.efficiency_metric
            return min(rows, key=lambda r: (r["values"][eff], -r["values"][ACCURACY], r["index"]), default=None)
        front = self.front
        if not front:
            return None
        dist = np.linalg.norm(self.reference().normalise(self.F(front)), axis=1)
        return front[int(np.argmin(dist))]

    def select(self) -> Selection | None:
        """THE choice of one subnet (CLI, legacy facade, reports): ``best`` when a subnet qualifies; otherwise the
        most accurate measured subnet (feasible ones first), marked ``qualified=False`` so nobody presents it as
        meeting the tolerance. None only without any row (or, lacking an accuracy metric, without a front)."""
        best = self.best
        if best is not None:
            rule = (
                f"fewest {self.efficiency_metric} with accuracy >= ref_acc - acc_delta"
                if ACCURACY in self.metrics
                else "front point closest to the ideal point"
            )
            return Selection(best, rule, True)
        rows = [r for r in self.rows if r["feasible"]] or list(self.rows)
        if not rows or ACCURACY not in self.metrics:
            return None
        top = max(rows, key=lambda r: (r["values"][ACCURACY], -r["index"]))
        ref = "unset" if self.ref_acc is None else f"{self.ref_acc:.2f}"
        rule = f"NO subnet within acc_delta={self.acc_delta} of ref_acc={ref}; most accurate measured subnet"
        return Selection(top, rule, False)

    @property
    def best_config(self) -> dict[str, Any] | None:
        best = self.best
        return None if best is None else best["config"]

    # ---- files ------------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> SearchResult:
        text = str(path_or_text)
        if not text.lstrip().startswith("{"):
            text = Path(path_or_text).read_text(encoding="utf-8")
        data = json.loads(text)
        data["hv_history"] = [0.0 if v is None else v for v in data.get("hv_history", [])]
        return cls(**data)

    def to_csv(self, path: str | Path) -> Path:
        """One line per evaluation: metrics, constraint g, flags, encoding and config (JSON)."""
        front, best = set(self.front_indices), self.best
        header = [
            "index",
            *self.metrics,
            *[f"g[{c}]" for c in self.constraints],
            "feasible",
            "on_front",
            "best",
            "hypervolume",
            "time_s",
            "x",
            "config",
        ]
        rows = [
            [
                r["index"],
                *[r["values"].get(m) for m in self.metrics],
                *r["constraints"],
                int(r["feasible"]),
                int(r["index"] in front),
                int(best is not None and r["index"] == best["index"]),
                self.hv_history[r["index"]] if r["index"] < len(self.hv_history) else "",
                round(r["time_s"], 6),
                " ".join(str(v) for v in r["x"]),
                json.dumps(r["config"], sort_keys=True),
            ]
            for r in self.rows
        ]
        return write_csv(path, [header, *rows])

    def to_markdown(self, max_front_rows: int = 15) -> str:
        from nncf_bootstrapnas.subnet_search.plots import markdown_summary

        return markdown_summary(self, max_front_rows)

    def plot_pareto(self, path: str | Path, x: str | None = None, y: str | None = None) -> Path:
        from nncf_bootstrapnas.subnet_search.plots import plot_pareto

        return plot_pareto(self, path, x, y)

    def plot_progression(self, path: str | Path) -> Path:
        from nncf_bootstrapnas.subnet_search.plots import plot_progression

        return plot_progression(self, path)

    def save(self, directory: str | Path) -> dict[str, Path]:
        """Everything at once: ``search_result.json/.csv/.md``, ``pareto_front.png``, ``search_progression.png``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.to_json(d / "search_result.json")
        atomic_write_text(d / "search_result.md", self.to_markdown())
        return {
            "json": d / "search_result.json",
            "csv": self.to_csv(d / "search_result.csv"),
            "markdown": d / "search_result.md",
            "pareto": self.plot_pareto(d / "pareto_front.png"),
            "progression": self.plot_progression(d / "search_progression.png"),
        }
