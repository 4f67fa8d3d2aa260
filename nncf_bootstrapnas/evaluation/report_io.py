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


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


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
        "MACs and params are baselines: a proxy (or inherited accuracy) that does not beat them adds nothing.",
        "",
        "| signal | Kendall tau | Spearman rho | sparse Kendall tau | top-k overlap | n |",
        "|---|---|---|---|---|---|",
    ]
    for name, stats in report.correlations.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(stats.get(c)) for c in STAT_COLUMNS) + " |")
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
        f"Time: sampling {report.timings.get('sampling_s', 0):.1f} s, measuring {report.timings.get('measure_s', 0):.1f} s.",
        "",
    ]
    return "\n".join(lines)


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


__all__ = ["scatter_png", "to_markdown", "write_report"]
