"""Files of the quality report: ``report.json`` (plain JSON, NaN/inf as null), ``report.md`` and ``scatter.png``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncf_bootstrapnas.utils.io import atomic_write_text, save_figure, write_json

if TYPE_CHECKING:
    from .quality import QualityReport

STAT_COLUMNS = ("kendall_tau", "spearman_rho", "sparse_kendall_tau", "top_k_overlap", "n")
CI_COLUMNS = ("kendall_tau", "spearman_rho")  # the statistics with bootstrap intervals


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def stat_cell(stats: dict[str, Any], column: str) -> str:
    """``0.83 [0.71, 0.91]`` for a statistic with an interval, else the plain value."""
    ci = stats.get(f"{column}_ci") if column in CI_COLUMNS else None
    if ci is None:
        return _fmt(stats.get(column))
    return f"{_fmt(stats.get(column), 2)} [{_fmt(ci[0], 2)}, {_fmt(ci[1], 2)}]"


def _pick_cell(pick: dict[str, Any], reference: str) -> str:
    if pick["index"] is None:
        return "n/a"
    regret = "best" if pick["picked_best"] else f"−{_fmt(pick['regret'], 2)}"
    return f"#{pick['index']}: {_fmt(pick[reference], 2)} ({regret})"


def selection_markdown(selection: dict[str, Any]) -> list[str]:
    """One row per mechanism, one column per MACs budget: the pick, its stand-alone accuracy and its regret."""
    ref, budgets = selection["reference"], selection["budgets"]
    head = [f"<= {b['macs_budget'] / 1e6:.3f} MMACs (n = {b['feasible']})" for b in budgets]
    lines = [
        "| mechanism | " + " | ".join(head) + " | mean regret | best picks |",
        "|---|" + "---|" * (len(budgets) + 2),
        "| *best within budget* | "
        + " | ".join(f"#{b['best_index']}: {_fmt(b['best_acc'], 2)}" for b in budgets)
        + " | – | – |",
    ]
    for name, summary in selection["summary"].items():
        cells = [_pick_cell(b["picks"][name], ref) for b in budgets]
        tail = f"{_fmt(summary['mean_regret'], 2)} | {summary['best_picks']}/{summary['budgets']}"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {tail} |")
    return lines


def _selection_section(report: QualityReport) -> list[str]:
    sel = report.selection
    if sel is None:
        return []
    pred = sel["predictor"]
    return [
        "",
        "## Selection mechanisms: the final pick within a MACs budget",
        "",
        f"Each mechanism picks its highest-scoring subnet with MACs <= budget; cells: `#index: {sel['reference']} "
        "(−regret)` or `(best)`, regret = best stand-alone accuracy within the budget minus the pick's. `macs` picks the largest "
        f"subnet that fits; `predictor` is `PredictorSelection` predicting {pred['target']} from the "
        f"{pred['features']}, scored out of fold ({pred['folds']} folds: no subnet is scored by a model fitted on it).",
        "",
        *selection_markdown(sel),
    ]


def to_markdown(report: QualityReport) -> str:
    s = report.settings
    ref = report.reference
    lines = [
        "# Super-network quality report",
        "",
        f"{s['measured_subnets']} subnets stratified over MACs (always the minimum and maximum), reference ranking: "
        f"**{ref}** ({'stand-alone fine-tune of ' + str(s['finetune_epochs']) + ' epoch(s)' if ref == 'standalone_acc' else 'no fine-tune'}), "
        f"BN recalibration on {s['bn_samples']} samples, top-k with k = {s['top_k']}. Accuracies are top-1 in percent on "
        "the validation loader given to the report.",
        "",
        "## Rank agreement with the reference",
        "",
        "MACs and params are baselines: a proxy (or inherited accuracy) that does not beat them adds nothing. "
        + _ci_note(s),
        "",
        "| signal | Kendall tau | Spearman rho | sparse Kendall tau | top-k overlap | n |",
        "|---|---|---|---|---|---|",
    ]
    for name, stats in report.correlations.items():
        lines.append(f"| {name} | " + " | ".join(stat_cell(stats, c) for c in STAT_COLUMNS) + " |")
    lines += _selection_section(report)
    proxies = list(s.get("proxies", []))
    lines += [
        "",
        "## Subnets",
        "",
        "| # | MMACs | params | inherited | inherited + BN | stand-alone | "
        + " | ".join(proxies)
        + (" |" if proxies else "|"),
        "|---|---|---|---|---|---|" + "---|" * len(proxies),
    ]
    for r in report.rows:
        cells = [
            str(r["index"]),
            f"{r['macs'] / 1e6:.3f}",
            str(r["params"]),
            _fmt(r["inherited_acc"], 2),
            _fmt(r["inherited_bn_acc"], 2),
            _fmt(r.get("standalone_acc"), 2),
        ] + [f"{r['proxies'][p]:.4g}" for p in proxies]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Time: sampling {report.timings.get('sampling_s', 0):.1f} s, measuring {report.timings.get('measure_s', 0):.1f} s, "
        f"analysis {report.timings.get('analysis_s', 0):.1f} s.",
        "",
    ]
    return "\n".join(lines)


def _ci_note(settings: dict[str, Any]) -> str:
    if not settings.get("bootstrap_resamples"):
        return ""
    return (
        f"Brackets: {100 * settings['confidence']:.0f} % percentile-bootstrap intervals over the subnets "
        f"({settings['bootstrap_resamples']} resamples, seed {settings['seed']}; resamples with a constant side skipped)."
    )


def scatter_png(report: QualityReport, path: Path) -> None:
    """Inherited accuracy (without and with BN recalibration) against the reference, with the diagonal."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ref = np.array([r[report.reference] for r in report.rows], dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    series = [("inherited_acc", "inherited, no BN recalibration", "o", "none")]
    if report.reference != "inherited_bn_acc":
        series.append(("inherited_bn_acc", "inherited + BN recalibration", "s", "C1"))
    for key, label, marker, face in series:
        tau = report.correlations[key]["kendall_tau"]
        y = np.array([r[key] for r in report.rows], dtype=float)
        ax.scatter(
            ref,
            y,
            marker=marker,
            facecolors=face,
            edgecolors="C0" if face == "none" else "C1",
            label=f"{label} (tau={_fmt(tau, 2)})",
        )
    every = np.concatenate([ref] + [np.array([r[k] for r in report.rows], dtype=float) for k, *_ in series])
    lo, hi = float(np.nanmin(every)), float(np.nanmax(every))
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=0.8, label="y = x")
    ax.set_xlabel(f"{report.reference} (%)")
    ax.set_ylabel("supernet-inherited accuracy (%)")
    ax.set_title("Supernet quality: inherited vs reference accuracy")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def write_report(report: QualityReport, out_dir: Path) -> dict[str, str]:
    """Write the three files; returns ``{"json": ..., "markdown": ..., "scatter": ...}`` paths."""
    files = {
        "json": str(out_dir / "report.json"),
        "markdown": str(out_dir / "report.md"),
        "scatter": str(out_dir / "scatter.png"),
    }
    report.files = files
    scatter_png(report, Path(files["scatter"]))
    atomic_write_text(files["markdown"], to_markdown(report))
    write_json(files["json"], report.to_json())
    return files


__all__ = ["scatter_png", "selection_markdown", "stat_cell", "to_markdown", "write_report"]
