"""How many real evaluations does each search algorithm need? (NSGA2, R-NSGA-II, random, LINAS)

For one supernet and validate function, every algorithm runs with the same objectives (default accuracy and MACs)
for several seeds. The reference hypervolume is the HV of the Pareto front of ALL evaluations of ALL runs, under one
shared normalisation (ideal/nadir of all rows); the table reports how many real evaluations each algorithm needs to
reach ``--fraction`` (default 98%) of it: mean ± std over the runs that reached it, and how many never did; then the
mean HV fraction after given numbers of evaluations and the ratios of evaluations needed. ``--out`` also gets
``hv_vs_evaluations.png``. ``--linas-variant NAME=JSON`` adds a LINAS run with other ``linas`` options (e.g. the
earlier LINAS: ``LINAS-v1='{"ucb_kappa": 0, "exploration_share": 0, "deduplicate_equivalent": false}'``).

    python benchmarks/search_efficiency.py --fake                 # analytic problem, seconds to minutes
    python benchmarks/search_efficiency.py                        # trained digits supernet (cached in outputs/)
    python benchmarks/search_efficiency.py --dataset fashion-mnist --artifact supernet.pth --eval-subset 2000 \
        --objectives accuracy,latency_lut
    python benchmarks/search_efficiency.py --summarise OUT_DIR       # re-summarise (and re-plot) saved runs
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

Problem = tuple[Any, Callable[[Any, Any], float], Any, Any]  # (supernet, validate_fn, val_loader, bn_loader)


# ---- the benchmark ----------------------------------------------------------------------------------------------------
def run_all(
    problem: Problem,
    algorithms: Sequence[str],
    seeds: Sequence[int],
    num_evals: int | dict[str, int],
    settings: dict[str, Any],
    objectives: Sequence[str] = ("accuracy", "macs"),
    variants: dict[str, dict[str, Any]] | None = None,
) -> dict[str, list[Any]]:
    """``{algorithm: [SearchResult per seed]}``; a name in ``variants`` runs LINAS with those ``linas`` options."""
    from nncf_bootstrapnas.subnet_search import search

    supernet, validate_fn, val_loader, bn_loader = problem
    results: dict[str, list[Any]] = {}
    for name in algorithms:
        algo, options = (
            ("LINAS", variant_settings(settings, variants[name])) if name in (variants or {}) else (name, settings)
        )
        if algo != "RNSGA2":  # the aspiration points are R-NSGA-II's alone
            options = {k: v for k, v in options.items() if k != "aspiration_points"}
        for seed in seeds:
            start = time.perf_counter()
            res = search(supernet, {"bootstrapNAS": {"search": options}}, validate_fn, val_loader, bn_loader,
                         algorithm=algo, num_evals=budget(num_evals, name), seed=seed, objectives=list(objectives),
                         progress=False)  # fmt: skip
            print(
                f"  {name:>8} seed {seed}: {len(res.rows)} evaluations, {time.perf_counter() - start:.1f} s", flush=True
            )
            results.setdefault(name, []).append(res)
    return results


def variant_settings(settings: dict[str, Any], linas: dict[str, Any]) -> dict[str, Any]:
    return {**settings, "linas": {**settings.get("linas", {}), **linas}}


def budget(num_evals: int | dict[str, int], algorithm: str) -> int:
    return num_evals.get(algorithm, num_evals["default"]) if isinstance(num_evals, dict) else num_evals


def parse_budgets(default: int, items: Sequence[str]) -> dict[str, int]:
    """``["NSGA2=1000", "random=1000"]`` -> per-algorithm budgets, others ``default``."""
    out = {"default": default}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            raise SystemExit(f"--budget expects ALGORITHM=N (e.g. NSGA2=1000), got {item!r}")
        out[name] = int(value)
    return out


def parse_variants(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``['LINAS-v1={"ucb_kappa": 0}']`` -> ``{"LINAS-v1": {"ucb_kappa": 0}}``."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--linas-variant expects NAME=JSON, got {item!r}")
        out[name] = json.loads(value)
    return out


def summarise(results: dict[str, list[Any]], fraction: float = 0.98, at: Sequence[int] = ()) -> dict[str, Any]:
    """Evaluations to reach ``fraction`` of the reference HV (front of all rows of all runs, shared normalisation);
    mean HV fraction after each of ``at`` evaluations."""
    from nncf_bootstrapnas.subnet_search.indicators import HVReference, hypervolume, non_dominated

    runs = [r for rs in results.values() for r in rs]
    F_all = np.vstack([r.F() for r in runs])
    reference = HVReference.from_rows(F_all)
    ref_hv = hypervolume(F_all[non_dominated(F_all)], reference)
    table, curves = {}, {}
    for algo, rs in results.items():
        histories = [np.asarray(r.hypervolume_history(reference)) for r in rs]
        needed = [first_reach(h, fraction * ref_hv) for h in histories]
        curves[algo] = [h / ref_hv for h in histories]
        reached = [n for n in needed if n is not None]
        walls = [r.stats.get("wall_s", float("nan")) for r in rs]
        table[algo] = {
            "evals_mean": float(np.mean(reached)) if reached else None,
            "evals_std": float(np.std(reached)) if reached else None,
            "reached": len(reached),
            "runs": len(rs),
            "never_reached": len(rs) - len(reached),
            "budget_max": max(len(c) for c in curves[algo]),
            "final_hv_fraction_mean": float(np.mean([c[-1] for c in curves[algo]])),
            "hv_fraction_at": {str(n): hv_at(curves[algo], n) for n in at},
            "wall_s_mean": float(np.mean(walls)),
            # wall-clock rate, algorithm overhead (LINAS's predictors and inner search) included
            "evals_per_minute_mean": float(np.mean([60.0 * len(r.rows) / max(w, 1e-9) for r, w in zip(rs, walls)])),
            "per_run": needed,
        }
    summary = {"fraction": fraction, "reference_hv": ref_hv, "reference": reference.to_json(), "algorithms": table}
    return {**summary, "curves": {a: [c.tolist() for c in cs] for a, cs in curves.items()}}


def first_reach(history: np.ndarray, target: float) -> int | None:
    """Evaluations after which ``history`` first reaches ``target`` (``SearchResult.evaluations_to_reach``)."""
    hit = np.flatnonzero(history >= target - 1e-12)
    return int(hit[0]) + 1 if len(hit) else None


def hv_at(curves: Sequence[np.ndarray], n: int) -> float | None:
    """Mean HV fraction after ``n`` evaluations over the runs that made ``n`` (None if none did)."""
    values = [c[n - 1] for c in curves if len(c) >= n]
    return float(np.mean(values)) if values else None


def format_table(summary: dict[str, Any]) -> str:
    pct = f"{100 * summary['fraction']:g}%"
    rows = summary["algorithms"]
    at = next(iter(rows.values()))["hv_fraction_at"] if rows else {}
    lines = [
        f"Real evaluations to reach {pct} of the reference hypervolume {summary['reference_hv']:.4f}",
        f"{'algorithm':>10} | {'evaluations (mean ± std)':>26} | {'never reached':>13} | {'final HV / ref':>14} | "
        f"{'wall s/run':>10} | {'evals/min':>9}",
        "-" * 100,
    ]
    for algo, row in rows.items():
        evals = "-" if row["evals_mean"] is None else f"{row['evals_mean']:.1f} ± {row['evals_std']:.1f}"
        never = f"{row['never_reached']}/{row['runs']} in {row['budget_max']}"
        lines.append(
            f"{algo:>10} | {evals:>26} | {never:>13} | {row['final_hv_fraction_mean']:>14.4f} | "
            f"{row['wall_s_mean']:>10.1f} | {row['evals_per_minute_mean']:>9.1f}"
        )
    if at:
        lines += [
            "",
            "Mean HV / reference after N evaluations",
            f"{'algorithm':>10} | " + " | ".join(f"{n:>6}" for n in at),
        ]
        for algo, row in rows.items():
            cells = ["-" if v is None else f"{v:.4f}" for v in row["hv_fraction_at"].values()]
            lines.append(f"{algo:>10} | " + " | ".join(f"{c:>6}" for c in cells))
    return "\n".join(lines + ratio_lines(summary))


def ratio_lines(summary: dict[str, Any]) -> list[str]:
    """Per LINAS run set and other algorithm: the ratio of evaluations to the target (a run that never reached it
    counts at its budget, so the ratio is a lower bound; LINAS's own mean is over its runs that reached it), and the
    ratio at equal mean HV (the highest level both mean curves reach)."""
    rows, curves = summary["algorithms"], summary.get("curves", {})
    out = []
    for linas in [a for a in rows if a.startswith("LINAS")]:
        mine, row_l = rows[linas]["evals_mean"], rows[linas]
        for other, row in rows.items():
            if other == linas:
                continue
            line = f"{other} / {linas}:"
            if mine is not None and row["reached"]:
                bounded = [n if n is not None else row["budget_max"] for n in row["per_run"]]
                sign = "" if row["never_reached"] == 0 else ">= "
                line += f" to target {sign}{np.mean(bounded) / mine:.1f}x ({other} {row['reached']}/{row['runs']},"
                line += f" {linas} {row_l['reached']}/{row_l['runs']} runs reached it);"
            elif mine is not None:
                line += (
                    f" to target > {row['budget_max'] / mine:.1f}x ({other} never reached it in {row['budget_max']});"
                )
            if other in curves and linas in curves:
                level, n_other, n_mine = equal_hv(curves[other], curves[linas])
                line += f" at equal mean HV {level:.4f}: {n_other} vs {n_mine} evaluations = {n_other / n_mine:.1f}x"
            out.append(line)
    return ["", *out] if out else []


def mean_curve(curves: Sequence[Sequence[float]]) -> np.ndarray:
    n = min(len(c) for c in curves)
    return np.mean([np.asarray(c[:n]) for c in curves], axis=0)


def equal_hv(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> tuple[float, int, int]:
    """(level, evaluations of a, of b): the first evaluation at which each mean curve reaches the highest mean HV
    fraction both reach."""
    ma, mb = mean_curve(a), mean_curve(b)
    level = float(min(ma.max(), mb.max()))
    return level, int(np.argmax(ma >= level - 1e-12)) + 1, int(np.argmax(mb >= level - 1e-12)) + 1


def load_results(folder: Path) -> dict[str, list[Any]]:
    """``{algorithm: [SearchResult per seed]}`` from the ``ALGO_seedN.json`` files a run with ``--out`` wrote."""
    from nncf_bootstrapnas.subnet_search import SearchResult

    results: dict[str, list[Any]] = {}
    paths = sorted(
        folder.glob("*_seed*.json"), key=lambda p: (p.stem.rsplit("_seed", 1)[0], int(p.stem.rsplit("_seed", 1)[1]))
    )
    for path in paths:
        results.setdefault(path.stem.rsplit("_seed", 1)[0], []).append(SearchResult.from_json(path))
    return results


def plot_curves(summary: dict[str, Any], path: Path) -> Path:
    """Mean HV / reference against real evaluations (band: min-max over seeds), one line per algorithm."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from nncf_bootstrapnas.utils.io import save_figure

    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for algo, curves in summary["curves"].items():
        n = min(len(c) for c in curves)
        Y = np.array([c[:n] for c in curves])
        x = np.arange(1, n + 1)
        ax.plot(x, Y.mean(axis=0), label=f"{algo} ({len(curves)} seeds)")
        ax.fill_between(x, Y.min(axis=0), Y.max(axis=0), alpha=0.2)
    ax.axhline(summary["fraction"], color="grey", linestyle="--", linewidth=1, label=f"{100 * summary['fraction']:g}%")
    ax.set(xscale="log", xlabel="real evaluations", ylabel="hypervolume / reference", ylim=(0.8, 1.005))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return save_figure(fig, path, dpi=120, bbox_inches="tight")


def build_problem(args: argparse.Namespace) -> Problem:
    """(supernet, validate_fn, val_loader, bn_loader) of ``benchmarks/search_problems.py``."""
    sys.path.insert(0, str(ROOT))  # run as a script or loaded by path: make ``benchmarks`` importable
    from benchmarks.search_problems import build_digits_problem, build_fake_problem, build_fashion_problem

    if args.fake:
        return build_fake_problem(args.fake_noise, args.fake_quantum, args.fake_conditional)
    if args.dataset == "fashion-mnist":
        if args.artifact is None:
            raise SystemExit("--dataset fashion-mnist needs --artifact (a supernet saved by save_supernet)")
        return build_fashion_problem(args.artifact, args.eval_subset or 2000, args.data_root)
    return build_digits_problem(args.model, args.weights, args.eval_subset)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fake", action="store_true", help="analytic test problem instead of a trained supernet")
    p.add_argument("--fake-noise", type=float, default=0.0, help="per-subnet accuracy noise, points (--fake)")
    p.add_argument("--fake-quantum", type=float, default=0.0, help="accuracy step, points, e.g. 100/359 (--fake)")
    p.add_argument("--fake-conditional", action="store_true", help="depth makes widths inactive (--fake)")
    p.add_argument("--dataset", choices=("digits", "fashion-mnist"), default="digits")
    p.add_argument("--artifact", type=Path, default=None, help="supernet artifact (fashion-mnist)")
    p.add_argument("--data-root", default=None, help="Fashion-MNIST folder (default: the Debian package's)")
    p.add_argument("--model", default="resnet18", help="nncf_bootstrapnas.models.build_model name (digits)")
    p.add_argument("--weights", default=None, help="trained supernet state_dict (digits)")
    p.add_argument("--eval-subset", type=int, default=None,
                   help="validation images per evaluation (default: all for digits, 2000 for fashion-mnist)")  # fmt: skip
    p.add_argument("--bn-samples", type=int, default=None,
                   help="BN recalibration images per subnet (default: 512 digits, the search's default fashion-mnist)")  # fmt: skip
    p.add_argument("--objectives", default="accuracy,macs", help="comma-separated objectives; latency = latency_ms")
    p.add_argument("--algorithms", nargs="+", default=["NSGA2", "random", "LINAS"])
    p.add_argument(
        "--aspiration-points", type=json.loads, default=None,
        help="R-NSGA-II's points in the objectives' units and order, e.g. '[[90.5, 12e6]]' (needed with RNSGA2)",
    )  # fmt: skip
    p.add_argument("--linas-variant", nargs="*", default=[], help="NAME=JSON: LINAS with other linas options")
    p.add_argument("--seeds", type=int, default=5, help="runs per algorithm (seeds 0..N-1)")
    p.add_argument("--num-evals", type=int, default=300)
    p.add_argument("--budget", nargs="*", default=[], help="per-algorithm evaluations, e.g. NSGA2=1000 random=1000")
    p.add_argument("--population", type=int, default=20)
    p.add_argument("--fraction", type=float, default=0.98)
    p.add_argument("--at", type=int, nargs="*", default=[50, 100, 150, 200, 300, 600, 1000, 3000, 10000])
    p.add_argument(
        "--linas", type=json.loads, default=None, help='e.g. \'{"initial_evals": 20, "candidates_per_round": 10}\''
    )
    p.add_argument("--out", type=Path, default=None, help="write summary.json, per-run results and the plot here")
    p.add_argument("--summarise", type=Path, default=None, help="only re-summarise the runs saved in this --out folder")
    args = p.parse_args(argv)
    if "RNSGA2" in args.algorithms and args.aspiration_points is None and args.summarise is None:
        p.error("--algorithms RNSGA2 needs --aspiration-points (R-NSGA-II searches around them)")
    return args


def search_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``bootstrapNAS.search`` options shared by every run (BN samples: 0 fake, 512 digits, else the default)."""
    bn = (
        args.bn_samples
        if args.bn_samples is not None
        else 0
        if args.fake
        else 512
        if args.dataset == "digits"
        else None
    )
    settings: dict[str, Any] = {"population": args.population}
    if args.aspiration_points is not None:
        settings["aspiration_points"] = args.aspiration_points
    if bn is not None:
        settings["batchnorm_adaptation"] = {"num_bn_adaptation_samples": bn}
    if args.linas:
        settings["linas"] = args.linas
    return settings


def report(results: dict[str, list[Any]], args: argparse.Namespace, out: Path | None) -> dict[str, Any]:
    """Summarise, print, and (``out``) write summary.json and the plot."""
    longest = max(len(r.rows) for rs in results.values() for r in rs)
    summary = summarise(results, args.fraction, [n for n in args.at if n <= longest])
    print(format_table(summary))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "curves"}, indent=1))
        print(f"plot: {plot_curves(summary, out / 'hv_vs_evaluations.png')}")
    return summary


def shared_objectives(names: Sequence[str]) -> list[Any]:
    """The objectives of every run; ``latency_lut`` becomes one LatencyLUT for the whole invocation. Each search
    otherwise fills its own table, and on a 2-vCPU VM two tables put the same maximum subnet at 0.21 and 0.40 ms
    (2026-12-04): whole fronts moved against the shared reference, so the algorithms were not compared on one problem."""
    if "latency_lut" not in names:
        return list(names)
    from nncf_bootstrapnas.deployment import LatencyLUT
    from nncf_bootstrapnas.subnet_search.objectives import LatencyLut

    table = LatencyLut(lut=LatencyLUT())
    return [table if n == "latency_lut" else n for n in names]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.summarise is not None:
        return report(load_results(args.summarise), args, args.summarise)
    problem = build_problem(args)
    variants = parse_variants(args.linas_variant)
    algorithms = [*args.algorithms, *[v for v in variants if v not in args.algorithms]]
    objectives = shared_objectives(["latency_ms" if o == "latency" else o for o in args.objectives.split(",") if o])
    budgets = parse_budgets(args.num_evals, args.budget)
    results = run_all(problem, algorithms, range(args.seeds), budgets, search_settings(args), objectives, variants)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for algo, rs in results.items():
            for seed, r in enumerate(rs):
                r.to_json(args.out / f"{algo}_seed{seed}.json")
    return report(results, args, args.out)


if __name__ == "__main__":
    main()
