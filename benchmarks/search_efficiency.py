"""How many real evaluations does each search algorithm need? (NSGA2 vs random vs LINAS)

For one supernet and validate function, every algorithm runs with objectives accuracy and MACs for several seeds. The
reference hypervolume is the HV of the Pareto front of ALL evaluations of ALL runs, under one shared normalisation
(ideal/nadir of all rows); the table reports how many real evaluations each algorithm needs to reach ``--fraction``
(default 98%) of it: mean ± std over the runs that reached it, and how many never did.

    python benchmarks/search_efficiency.py --fake                 # analytic problem, seconds to minutes
    python benchmarks/search_efficiency.py                        # trained digits supernet (cached in outputs/)
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

Problem = tuple[Any, Callable[[Any, Any], float], Any, Any]  # (supernet, validate_fn, val_loader, bn_loader)


# ---- problems ---------------------------------------------------------------------------------------------------------
class AnalyticSupernet:
    """A deterministic stand-in supernet: 12 variables, ~5e6 subnets, accuracy with diminishing returns + interactions.

    Accuracy is a smooth function of the per-variable "capacity" with a few pairwise interactions and a mild
    oscillation, so the front is neither linear nor trivially separable; MACs are exact and cheap as in the real case.
    """

    def __init__(self, seed: int = 1234) -> None:
        from nncf_bootstrapnas.elasticity.search_space import SearchSpace, Variable

        variables = [Variable("width", f"block{i}", (64, 48, 40, 32, 16)) for i in range(6)]
        variables += [Variable("kernel", f"conv{i}", (7, 5, 3)) for i in range(3)]
        variables += [Variable("depth", f"stage{i}", (0, 1, 2)) for i in range(3)]
        self.search_space = SearchSpace(variables)
        rng = np.random.default_rng(seed)
        n = len(variables)
        self.cost = rng.uniform(0.3, 2.0, n)
        self.value = rng.uniform(0.1, 1.2, n)
        self.power = rng.uniform(0.7, 2.5, n)
        self.pairs = [
            (int(a), int(b), float(w))
            for a, b, w in zip(rng.integers(0, n, 6), rng.integers(0, n, 6), rng.uniform(0.2, 0.8, 6))
        ]
        self.active_config = self.search_space.maximum()
        self.seed = seed

    def _f(self, cfg: dict | None) -> np.ndarray:
        x = self.search_space.encode(cfg if cfg is not None else self.active_config)
        return x / np.maximum(self.search_space.upper_bounds, 1)

    def activate(self, cfg: dict | None) -> None:
        self.active_config = self.search_space.validate(cfg)

    def macs(self, cfg: dict | None = None) -> int:
        return int(1e6 * (3.0 + 10.0 * float(np.sum(self.cost * (1.0 - self._f(cfg)) ** 1.7))))

    def params(self, cfg: dict | None = None) -> int:
        return int(1e4 * (1.0 + float(np.sum(self.cost[::-1] * (1.0 - self._f(cfg))))))

    def accuracy(self, cfg: dict | None = None) -> float:
        f = self._f(cfg)
        loss = float(np.sum(self.value * f**self.power)) + sum(w * f[a] * f[b] for a, b, w in self.pairs)
        return 92.0 - 3.0 * loss + 0.4 * math.sin(2.5 * float(np.sum(f)))

    def extract(self, cfg: dict | None = None) -> dict:
        return {"config": self.search_space.validate(cfg)}

    def get_state(self) -> dict:
        return {"kind": "analytic", "seed": self.seed}


def analytic_validate(model: AnalyticSupernet, loader: Any) -> float:
    return model.accuracy(model.active_config)


def build_fake_problem() -> Problem:
    return AnalyticSupernet(), analytic_validate, [None], None


def build_digits_problem(
    model_name: str = "resnet18", weights: str | None = None, eval_subset: int | None = None
) -> Problem:
    """A trained digits supernet: by default the small reference model pre-trained and sandwich-trained by
    ``benchmarks/generator_digits.py`` (cached in ``outputs/``, shared with the generator and quality benchmarks);
    with ``weights``, the full-size ``model_name`` made elastic with default options and those trained weights.
    """
    import torch

    from nncf_bootstrapnas.data import DigitsDataModule
    from nncf_bootstrapnas.elasticity import create_supernet
    from nncf_bootstrapnas.models import build_model

    if weights:
        dm = DigitsDataModule(image_size=32, channels=3, batch_size=128)
        model = build_model(model_name, num_classes=dm.num_classes)
        supernet = create_supernet(model, None, example_input=(torch.zeros(1, *dm.input_shape),))
        supernet.model.load_state_dict(torch.load(weights, map_location="cpu"))
    else:
        from benchmarks.generator_digits import build_digits_supernet

        supernet, dm, info = build_digits_supernet(model_name)
        print(f"supernet: {info}", flush=True)
    val = dm.subset_loader(eval_subset, "val") if eval_subset else dm.val_loader()
    return supernet, top1_accuracy, val, dm.train_loader(shuffle=False)


def top1_accuracy(model: Any, loader: Any) -> float:
    import torch

    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return 100.0 * correct / max(total, 1)


# ---- the benchmark ----------------------------------------------------------------------------------------------------
def run_all(
    problem: Problem,
    algorithms: Sequence[str],
    seeds: Sequence[int],
    num_evals: int | dict[str, int],
    settings: dict[str, Any],
) -> dict[str, list[Any]]:
    """``{algorithm: [SearchResult per seed]}``."""
    from nncf_bootstrapnas.subnet_search import search

    supernet, validate_fn, val_loader, bn_loader = problem
    results: dict[str, list[Any]] = {}
    for algo in algorithms:
        for seed in seeds:
            start = time.perf_counter()
            res = search(supernet, {"bootstrapNAS": {"search": settings}}, validate_fn, val_loader, bn_loader,
                         algorithm=algo, num_evals=budget(num_evals, algo), seed=seed, objectives=["accuracy", "macs"], progress=False)  # fmt: skip
            print(
                f"  {algo:>7} seed {seed}: {len(res.rows)} evaluations, {time.perf_counter() - start:.1f} s", flush=True
            )
            results.setdefault(algo, []).append(res)
    return results


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


def summarise(results: dict[str, list[Any]], fraction: float = 0.98) -> dict[str, Any]:
    """Evaluations to reach ``fraction`` of the reference HV (front of all rows of all runs, shared normalisation)."""
    from nncf_bootstrapnas.subnet_search.indicators import HVReference, hypervolume, non_dominated

    runs = [r for rs in results.values() for r in rs]
    F_all = np.vstack([r.F() for r in runs])
    reference = HVReference.from_rows(F_all)
    ref_hv = hypervolume(F_all[non_dominated(F_all)], reference)
    table = {}
    for algo, rs in results.items():
        needed = [r.evaluations_to_reach(fraction * ref_hv, reference) for r in rs]
        reached = [n for n in needed if n is not None]
        final = [r.hypervolume_history(reference)[-1] / ref_hv for r in rs]
        table[algo] = {
            "evals_mean": float(np.mean(reached)) if reached else None,
            "evals_std": float(np.std(reached)) if reached else None,
            "reached": len(reached),
            "runs": len(rs),
            "never_reached": len(rs) - len(reached),
            "final_hv_fraction_mean": float(np.mean(final)),
            "wall_s_mean": float(np.mean([r.stats.get("wall_s", float("nan")) for r in rs])),
            # wall-clock rate, algorithm overhead (LINAS's predictors and inner search) included
            "evals_per_minute_mean": float(
                np.mean([60.0 * len(r.rows) / max(r.stats.get("wall_s", 0.0), 1e-9) for r in rs])
            ),
            "per_run": needed,
        }
    return {"fraction": fraction, "reference_hv": ref_hv, "reference": reference.to_json(), "algorithms": table}


def format_table(summary: dict[str, Any]) -> str:
    pct = f"{100 * summary['fraction']:g}%"
    lines = [
        f"Real evaluations to reach {pct} of the reference hypervolume {summary['reference_hv']:.4f}",
        f"{'algorithm':>10} | {'evaluations (mean ± std)':>26} | {'never reached':>13} | {'final HV / ref':>14} | "
        f"{'wall s/run':>10} | {'evals/min':>9}",
        "-" * 100,
    ]
    for algo, row in summary["algorithms"].items():
        evals = "-" if row["evals_mean"] is None else f"{row['evals_mean']:.1f} ± {row['evals_std']:.1f}"
        never = f"{row['never_reached']}/{row['runs']}"
        lines.append(
            f"{algo:>10} | {evals:>26} | {never:>13} | {row['final_hv_fraction_mean']:>14.4f} | "
            f"{row['wall_s_mean']:>10.1f} | {row['evals_per_minute_mean']:>9.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fake", action="store_true", help="analytic test problem instead of the digits supernet")
    p.add_argument("--model", default="resnet18", help="nncf_bootstrapnas.models.build_model name (digits)")
    p.add_argument("--weights", default=None, help="trained supernet state_dict (digits)")
    p.add_argument("--eval-subset", type=int, default=None, help="validation samples per evaluation (digits)")
    p.add_argument("--algorithms", nargs="+", default=["NSGA2", "random", "LINAS"])
    p.add_argument("--seeds", type=int, default=5, help="runs per algorithm (seeds 0..N-1)")
    p.add_argument("--num-evals", type=int, default=300)
    p.add_argument("--budget", nargs="*", default=[], help="per-algorithm evaluations, e.g. NSGA2=1000 random=1000")
    p.add_argument("--population", type=int, default=20)
    p.add_argument("--fraction", type=float, default=0.98)
    p.add_argument(
        "--linas", type=json.loads, default=None, help='e.g. \'{"initial_evals": 20, "candidates_per_round": 10}\''
    )
    p.add_argument("--out", type=Path, default=None, help="write summary.json (and per-run results) here")
    args = p.parse_args(argv)

    problem = build_fake_problem() if args.fake else build_digits_problem(args.model, args.weights, args.eval_subset)
    bn = {"num_bn_adaptation_samples": 0 if args.fake else 512}
    settings: dict[str, Any] = {"population": args.population, "batchnorm_adaptation": bn}
    if args.linas:
        settings["linas"] = args.linas
    budgets = parse_budgets(args.num_evals, args.budget)
    results = run_all(problem, args.algorithms, range(args.seeds), budgets, settings)
    summary = summarise(results, args.fraction)
    print(format_table(summary))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
        for algo, rs in results.items():
            for seed, r in enumerate(rs):
                r.to_json(args.out / f"{algo}_seed{seed}.json")
    return summary


if __name__ == "__main__":
    main()
