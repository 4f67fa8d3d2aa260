"""The parent's pure part: fronts, hypervolume against one shared reference, and the side-by-side table.

Every row is ``{"section", "metric", "ours", "nncf", "comparison", "ahead"}`` with the cells already formatted;
``ahead`` is ``"ours"``, ``"NNCF 2.18"``, ``"tie"`` or ``""`` (no better direction). Ties: within ``RATIO_TIE``
for ratios of times, ``POINTS_TIE`` accuracy points.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

RATIO_TIE = 0.02
POINTS_TIE = 0.1
PEER = "NNCF 2.18"
COLUMNS = ("section", "metric", "ours", "nncf", "comparison", "ahead")


# ---- search fronts ---------------------------------------------------------------------------------------------------
def relative_points(points: Sequence[dict[str, float]], max_mmacs: float) -> np.ndarray:
    """``(n, 2)`` array of (MACs / max-subnet MACs, accuracy %): each side's MACs relative to its own count."""
    if not points:
        return np.zeros((0, 2))
    return np.array([[p["mmacs"] / max_mmacs, p["accuracy"]] for p in points], dtype=float)


def pareto_front(rel: np.ndarray) -> np.ndarray:
    """Non-dominated rows (fewer MACs, higher accuracy), sorted by MACs."""
    if len(rel) == 0:
        return rel
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    F = np.column_stack([rel[:, 0], -rel[:, 1]])
    front = rel[NonDominatedSorting().do(F, only_non_dominated_front=True)]
    return front[np.argsort(front[:, 0], kind="stable")]


def shared_reference(sides: Sequence[np.ndarray], macs_margin: float = 0.05, acc_margin: float = 1.0) -> np.ndarray:
    """One reference point for every side, in minimisation space (relative MACs, -accuracy): just beyond the
    maximum subnet and ``acc_margin`` points below the worst accuracy any side measured."""
    measured = [s for s in sides if len(s)]
    worst_acc = min(float(s[:, 1].min()) for s in measured) if measured else 0.0
    return np.array([1.0 + macs_margin, -(worst_acc - acc_margin)])


def hypervolume(rel: np.ndarray, reference: np.ndarray) -> float:
    """pymoo's hypervolume of the points against ``reference`` (units: relative MACs x accuracy points)."""
    if len(rel) == 0:
        return 0.0
    from pymoo.indicators.hv import HV

    F = np.column_stack([rel[:, 0], -rel[:, 1]])
    inside = np.all(F < reference, axis=1)
    return float(HV(ref_point=reference)(F[inside])) if inside.any() else 0.0


def best_within(rel: np.ndarray, ref_acc: float, acc_delta: float) -> tuple[float, float] | None:
    """(relative MACs, accuracy) of the cheapest subnet within ``acc_delta`` points of ``ref_acc``."""
    ok = rel[rel[:, 1] >= ref_acc - acc_delta] if len(rel) else rel
    if len(ok) == 0:
        return None
    i = int(np.lexsort((-ok[:, 1], ok[:, 0]))[0])
    return float(ok[i, 0]), float(ok[i, 1])


# ---- rows -------------------------------------------------------------------------------------------------------------
def row(section: str, metric: str, ours: str, nncf: str, comparison: str = "", ahead: str = "") -> dict[str, str]:
    return dict(zip(COLUMNS, (section, metric, ours, nncf, comparison, ahead)))


def judge(ours: float | None, nncf: float | None, higher_is_better: bool, kind: str = "ratio") -> tuple[str, str]:
    """``(comparison, ahead)``: ``kind="ratio"`` gives ours/NNCF, ``"points"`` the difference ours - NNCF."""
    if ours is None or nncf is None or not np.isfinite(ours) or not np.isfinite(nncf):
        return "n/a", ""
    if kind == "points":
        diff = ours - nncf
        text, tie = f"{diff:+.2f} pts", abs(diff) <= POINTS_TIE
        better_ours = diff > 0 if higher_is_better else diff < 0
    else:
        if nncf == 0:
            return "n/a", ""
        ratio = ours / nncf
        text, tie = f"{ratio:.2f}x", abs(ratio - 1.0) <= RATIO_TIE
        better_ours = ratio > 1 if higher_is_better else ratio < 1
    return text, "tie" if tie else ("ours" if better_ours else PEER)


def numeric_row(section: str, metric: str, ours: float | None, nncf: float | None, fmt: str,
                higher_is_better: bool | None, kind: str = "ratio") -> dict[str, str]:  # fmt: skip
    """A row of two measured numbers; ``higher_is_better=None``: shown side by side, no winner."""
    cells = ["n/a" if v is None else format(v, fmt) for v in (ours, nncf)]
    if higher_is_better is None:
        comparison = judge(ours, nncf, True, kind)[0]
        return row(section, metric, *cells, comparison, "")
    return row(section, metric, *cells, *judge(ours, nncf, higher_is_better, kind))


def short(text: str, limit: int = 110) -> str:
    """A failure message cut for a table cell (the JSON keeps it whole)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _flag(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "no")


def exact(r: dict[str, Any], rtol: float = 1e-5) -> bool | None:
    """Max-subnet output equals the original's to float32 round-off: |diff| <= rtol * max(1, |original|max)."""
    if not r.get("converts"):
        return None
    return r["max_abs_diff"] <= rtol * max(1.0, r.get("reference_abs_max", 1.0))


def coverage_rows(ours: dict[str, Any], nncf: dict[str, Any]) -> list[dict[str, str]]:
    """Per model: converts, exact at max, elastic elements, min/max MACs, generation time; then the totals."""
    rows, section = [], "generation coverage"
    names = list(dict.fromkeys([*ours, *nncf]))
    totals = {"ours": [0, 0], "nncf": [0, 0]}
    for name in names:
        a, b = (
            ours.get(name, {"converts": False, "error": "not run"}),
            nncf.get(name, {"converts": False, "error": "not run"}),
        )
        conv = [bool(r.get("converts")) for r in (a, b)]
        exacts = [exact(r) for r in (a, b)]
        for key, c, e in zip(("ours", "nncf"), conv, exacts):
            totals[key][0] += c
            totals[key][1] += bool(e)
        cells = [_flag(c) if c else f"no: {short(r.get('error', '?'))}" + (f" (in {r['where']})" if r.get("where") else "")
                 for c, r in zip(conv, (a, b))]  # fmt: skip
        ahead = "tie" if conv[0] == conv[1] else ("ours" if conv[0] else PEER)
        rows.append(row(section, f"{name}: converts", *cells, "", ahead))
        if not any(conv):
            continue
        cells = [f"{_flag(e)} ({r['max_abs_diff']:.1e})" if e is not None else "n/a" for e, r in zip(exacts, (a, b))]
        ahead = "tie" if exacts[0] == exacts[1] else ("ours" if exacts[0] else PEER)
        rows.append(row(section, f"{name}: max subnet == original (max abs diff; rtol 1e-5)", *cells, "", ahead))
        cells = [f"{r['width']} / {r['kernel']} / {r['depth']}" if r.get("converts") else "n/a" for r in (a, b)]
        rows.append(row(section, f"{name}: elastic width groups / kernels / skippable blocks", *cells))
        errors = [r.get("depth_error") for r in (a, b)]
        if any(errors):
            cells = [f"fails: {short(e)}" if e else "ok" for e in errors]
            ahead = "tie" if all(errors) else ("ours" if errors[1] else PEER)
            rows.append(row(section, f"{name}: full depth search space (every block of a group skippable)", *cells,
                            "", ahead))  # fmt: skip
        errors = [r.get("min_error") for r in (a, b)]
        if any(errors):
            cells = [f"fails: {short(e)}" if e else "ok" for e in errors]
            rows.append(row(section, f"{name}: minimum subnet activates", *cells, "",
                            "tie" if all(errors) else ("ours" if errors[1] else PEER)))  # fmt: skip
        fractions = [r["macs_min"] / r["macs_max"] if r.get("macs_min") and r.get("macs_max") else None for r in (a, b)]
        rows.append(numeric_row(section, f"{name}: min-subnet MACs / max-subnet MACs", *fractions, ".3f", False))
        rows.append(numeric_row(section, f"{name}: generation time (s)",
                                *[r.get("generation_s") if r.get("converts") else None for r in (a, b)], ".2f", False))  # fmt: skip
    n = len(names)
    for i, what in enumerate(("models converted", "models exact at the maximum subnet")):
        o, p = totals["ours"][i], totals["nncf"][i]
        rows.append(
            row(section, what, f"{o}/{n}", f"{p}/{n}", f"{o - p:+d}", "tie" if o == p else ("ours" if o > p else PEER))
        )
    return rows


def timing_rows(ours: dict[str, float], nncf: dict[str, float], batch: int) -> list[dict[str, str]]:
    section = f"overhead (batch {batch}, max subnet)"
    rows = []
    for kind in ("forward", "step"):
        label = "forward (eval, no grad)" if kind == "forward" else "training step (fwd + bwd + SGD)"
        rows.append(numeric_row(section, f"plain model {label} (ms)", ours[f"plain_{kind}"] * 1e3,
                                nncf[f"plain_{kind}"] * 1e3, ".1f", None))  # fmt: skip
        rows.append(numeric_row(section, f"supernet {label} (ms)", ours[f"supernet_{kind}"] * 1e3,
                                nncf[f"supernet_{kind}"] * 1e3, ".1f", False))  # fmt: skip
        ratios = [t[f"supernet_{kind}"] / t[f"plain_{kind}"] for t in (ours, nncf)]
        rows.append(numeric_row(section, f"supernet / plain, {label}", *ratios, ".3f", False))
    return rows


def training_rows(ours: dict[str, Any], nncf: dict[str, Any], ref_acc: float) -> list[dict[str, str]]:
    section = "accuracy after the same training"
    rows = [
        row(section, "original (pre-trained) model accuracy (%)", f"{ref_acc:.2f}", f"{ref_acc:.2f}", "same weights")
    ]
    for name in ("max", "min"):
        for key, how in (
            ("accuracy", "each library's BN adaptation"),
            ("accuracy_common_bn", "same exact BN recalibration"),
        ):
            rows.append(numeric_row(section, f"{name}imum subnet accuracy (%), {how}", ours.get(f"{name}_{key}"),
                                    nncf.get(f"{name}_{key}"), ".2f", True, "points"))  # fmt: skip
    fractions = [r["min_macs"] / r["max_macs"] for r in (ours, nncf)]
    rows.append(numeric_row(section, "minimum-subnet MACs / maximum (each side's count)", *fractions, ".3f", False))
    rows.append(numeric_row(section, "maximum-subnet MACs (M, each side's count)", ours["max_macs"] / 1e6,
                            nncf["max_macs"] / 1e6, ".2f", None))  # fmt: skip
    cells = [f"{s['space']['width']} / {s['space']['kernel']} / {s['space']['depth']}" for s in (ours, nncf)]
    rows.append(row(section, "elastic width groups / kernels / skippable blocks", *cells))
    return rows


def search_summary(side: dict[str, Any], reference: np.ndarray, ref_acc: float, acc_delta: float) -> dict[str, Any]:
    """Front, hypervolume and best-within-delta of one side, MACs relative to its own maximum subnet."""
    rel = relative_points(side["search"]["points"], side["max_macs"] / 1e6)
    front = pareto_front(rel)
    return {"evaluated": len(rel), "records": side["search"]["records"], "front": front.tolist(),
            "hypervolume": hypervolume(rel, reference), "best": best_within(rel, ref_acc, acc_delta)}  # fmt: skip


def search_rows(ours: dict[str, Any], nncf: dict[str, Any], acc_delta: float, num_evals: int) -> list[dict[str, str]]:
    section = f"search (NSGA-II, num_evals {num_evals})"
    rows = [numeric_row(section, "distinct subnets evaluated (search records)", ours["evaluated"], nncf["evaluated"],
                        "d", None)]  # fmt: skip
    rows[-1]["ours"] += f" ({ours['records']})"
    rows[-1]["nncf"] += f" ({nncf['records']})"
    rows.append(numeric_row(section, "hypervolume of the found front (shared reference)", ours["hypervolume"],
                            nncf["hypervolume"], ".3f", True))  # fmt: skip
    rows.append(numeric_row(section, "subnets on the found front", len(ours["front"]), len(nncf["front"]), "d", None))
    bests = [s["best"] for s in (ours, nncf)]
    for i, (what, fmt, higher) in enumerate((("MACs / max", ".3f", False), ("accuracy (%)", ".2f", True))):
        values = [None if b is None else b[i] for b in bests]
        kind = "points" if i == 1 else "ratio"
        rows.append(
            numeric_row(section, f"best subnet within acc_delta={acc_delta:g}: {what}", *values, fmt, higher, kind)
        )
    return rows


def wall_rows(ours: dict[str, Any], nncf: dict[str, Any]) -> list[dict[str, str]]:
    section = "wall time (s)"
    labels = {
        "generation_s": "super-network generation",
        "train_s": "progressive-shrinking training",
        "search_s": "search",
        "process_wall_s": "training worker process (all of the above, incl. imports)",
    }
    return [
        numeric_row(section, label, ours.get(key), nncf.get(key), ".1f", False)
        for key, label in labels.items()
        if key in ours or key in nncf
    ]


# ---- output ----------------------------------------------------------------------------------------------------------
def ahead_of_us(rows: Sequence[dict[str, str]]) -> list[str]:
    return [f"{r['section']}: {r['metric']} ({r['ours']} vs {r['nncf']})" for r in rows if r["ahead"] == PEER]


def markdown(rows: Sequence[dict[str, str]], env: dict[str, Any], notes: Sequence[str] = ()) -> str:
    head = ["# nncf_bootstrapnas vs NNCF 2.18 BootstrapNAS, measured side by side", ""]
    head += [f"- {key}: {value}" for key, value in env.items()]
    lines = [*head, "", "| section | metric | ours | NNCF 2.18 | ours vs NNCF | ahead |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join(str(r[c]).replace("|", "/") for c in COLUMNS) + " |")
    peer = ahead_of_us(rows)
    lines += ["", "## Where NNCF 2.18 is ahead", ""]
    lines += [f"- {item}" for item in peer] if peer else ["- nowhere in this run"]
    if notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, rows: Sequence[dict[str, str]], env: dict[str, Any], raw: dict[str, Any],
                  notes: Sequence[str] = ()) -> dict[str, Path]:  # fmt: skip
    """``peer_table.md``, ``peer_table.csv`` and ``peer_results.json`` (rows, environment, notes, raw worker data)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "peer_table.md", "csv": out / "peer_table.csv", "json": out / "peer_results.json"}
    paths["md"].write_text(markdown(rows, env, notes))
    with paths["csv"].open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    data = {"env": env, "rows": list(rows), "ahead_nncf": ahead_of_us(rows), "notes": list(notes), "raw": raw}
    paths["json"].write_text(json.dumps(data, indent=1, default=float))
    return paths
