"""PNG plots and the Markdown summary of a :class:`SearchResult`.

Figures are drawn on matplotlib's Agg canvas directly (``Figure`` + ``FigureCanvasAgg``), never through pyplot, so
plotting works headless and does not change the caller's matplotlib backend or global state.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncf_bootstrapnas.utils.io import save_figure

if TYPE_CHECKING:
    from nncf_bootstrapnas.subnet_search.result import SearchResult


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols)
    return fig, axes


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    fig.tight_layout()
    return save_figure(fig, path)


def _axes_metrics(result: SearchResult, x: str | None, y: str | None) -> tuple[str, str]:
    names = result.objective_names
    if x is None:
        x = result.efficiency_metric if result.efficiency_metric in result.metrics else names[0]
    if y is None:
        y = next((n for n in names if n != x), x)
    for m in (x, y):
        if m not in result.metrics:
            raise ValueError(f"cannot plot {m!r}: not a measured metric; measured: {result.metrics}")
    return x, y


def _label(m: str) -> str:
    return {"macs": "MACs", "params": "parameters", "latency_ms": "latency (ms)"}.get(m, m)


def plot_pareto(result: SearchResult, path: str | Path, x: str | None = None, y: str | None = None) -> Path:
    """All evaluations grey, infeasible ones crossed, the measured front highlighted, maximum subnet and best marked."""
    x, y = _axes_metrics(result, x, y)
    fig, ax = _figure(6.4, 4.8)
    vals = np.array([[r["values"][x], r["values"][y]] for r in result.rows])
    feas = result.feasible
    ax.scatter(vals[feas, 0], vals[feas, 1], s=12, color="0.65", label=f"evaluated ({len(result.rows)})")
    if (~feas).any():
        ax.scatter(vals[~feas, 0], vals[~feas, 1], s=14, marker="x", color="0.8", label="infeasible")
    front = result.front_indices
    if front:
        fv = vals[sorted(front, key=lambda i: vals[i, 0])]
        ax.plot(fv[:, 0], fv[:, 1], "-o", color="tab:red", ms=5, lw=1.2, label=f"measured Pareto front ({len(front)})")
    if result.maximum is not None:
        m = result.maximum["values"]
        ax.scatter(
            [m[x]], [m[y]], s=110, marker="s", color="tab:blue", edgecolors="black", label="maximum subnet", zorder=5
        )
    choice = result.select()
    if choice is not None:
        b, label = choice.values, "selected" if choice.qualified else "selected (none within acc_delta)"
        ax.scatter([b[x]], [b[y]], s=160, marker="*", color="gold", edgecolors="black", label=label, zorder=6)
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    ax.set_title(f"Search results ({result.algorithm})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_progression(result: SearchResult, path: str | Path, x: str | None = None, y: str | None = None) -> Path:
    """Left: hypervolume vs real evaluations. Right: evaluations coloured by their order (legacy progression view)."""
    x, y = _axes_metrics(result, x, y)
    fig, (ax_hv, ax_sc) = _figure(11.0, 4.4, ncols=2)
    hv = np.asarray(result.hv_history, dtype=float)
    ax_hv.plot(np.arange(1, len(hv) + 1), hv, color="tab:green")
    ax_hv.set_xlabel("real evaluations")
    ax_hv.set_ylabel("hypervolume (normalised objectives)")
    ax_hv.set_title(f"Hypervolume ({result.algorithm}), reference {result.hv_reference.get('point_normalised')}")
    ax_hv.grid(alpha=0.3)
    vals = np.array([[r["values"][x], r["values"][y]] for r in result.rows])
    sc = ax_sc.scatter(vals[:, 0], vals[:, 1], c=np.arange(len(vals)), cmap="viridis", s=12, marker="D", alpha=0.7)
    fig.colorbar(sc, ax=ax_sc, label="evaluation index")
    if result.maximum is not None:
        m = result.maximum["values"]
        ax_sc.scatter([m[x]], [m[y]], s=110, marker="s", color="tab:blue", edgecolors="black", label="maximum subnet")
        ax_sc.legend(fontsize=8)
    ax_sc.set_xlabel(_label(x))
    ax_sc.set_ylabel(_label(y))
    ax_sc.set_title("Search progression")
    ax_sc.grid(alpha=0.3)
    return _save(fig, path)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not np.isfinite(v):
            return "-"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return str(v)


def markdown_summary(result: SearchResult, max_front_rows: int = 15) -> str:
    """A short report: settings, budget, hypervolume, the selected subnet and the measured front."""
    s = result.stats
    objectives = ", ".join(f"{o['name']} ({o['direction']})" for o in result.objectives)
    lines = [
        f"# Search result ({result.algorithm})",
        "",
        f"- objectives: {objectives}",
        f"- constraints: {', '.join(result.constraints) or 'none'}",
        f"- real evaluations: {len(result.rows)} (cache hits {s.get('cache_hits', 0)}), "
        f"{_fmt(s.get('evals_per_minute'))} evaluations/minute, stopped by: {result.stopped_by or '-'}",
        f"- seed: {result.seed}; feasible: {int(result.feasible.sum())}/{len(result.rows)}",
        f"- hypervolume: {_fmt(result.hypervolume)} (objectives normalised by {result.hv_reference.get('source')}, "
        f"reference point {result.hv_reference.get('point_normalised')})",
        f"- ref_acc: {_fmt(result.ref_acc)} ({result.ref_acc_source}), acc_delta: {_fmt(result.acc_delta)}",
        "",
    ]
    cols = list(result.metrics)
    choice = result.select()
    lines += ["## Selected subnet", ""]
    if choice is None:
        lines += ["No subnet to select.", ""]
    else:
        values = ", ".join(f"{m} = {_fmt(choice.values[m])}" for m in cols)
        lines += [f"Evaluation #{choice.index} ({choice.rule}): {values}", ""]
        if result.maximum is not None:
            lines += ["Maximum subnet: " + ", ".join(f"{m} = {_fmt(result.maximum['values'][m])}" for m in cols), ""]
    front = result.front
    lines += [f"## Measured Pareto front ({len(front)} subnets)", "", "| # | " + " | ".join(cols) + " |"]
    lines.append("|" + "---|" * (len(cols) + 1))
    step = max(1, int(np.ceil(len(front) / max_front_rows)))
    for r in front[::step]:
        lines.append(f"| {r['index']} | " + " | ".join(_fmt(r["values"][m]) for m in cols) + " |")
    rounds = result.algorithm_stats.get("rounds")
    if rounds:
        lines += ["", "## LINAS predictors (Kendall tau on each round's newly measured subnets)", ""]
        lines += ["| round | evaluations | metric | predictor | cv tau | held-out tau |", "|---|---|---|---|---|---|"]
        for r in rounds:
            for m, d in r["metrics"].items():
                lines.append(
                    f"| {r['round']} | {r['evaluations']} | {m} | {d['predictor']} | {_fmt(d['cv_tau'])} | "
                    f"{_fmt(d['holdout_tau'])} |"
                )
    return "\n".join(lines) + "\n"
