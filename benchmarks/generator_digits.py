"""SGNAS-style generator on a trained supernet: constraint satisfaction, speed and accuracy against a searched front.

``--dataset digits`` (default): pre-train a small ResNet-18 on scikit-learn's digits (every accuracy is top-1 on its
validation split), turn it into a supernet and train it with ``fit`` (sandwich sampling, in-place distillation).
``--dataset fashion-mnist``: load a supernet artifact (``save_supernet``, ``--artifact``) trained on Fashion-MNIST,
measured as ``benchmarks/search_problems.py`` measures it (a fixed subset of ``--eval-subset`` validation images after
BN recalibration on ``--bn-samples`` training images). Then, the same on both: run one search (accuracy and MACs),
train the generator (its accuracy term from a predictor fitted on its own measured rows, not the search's), generate
for 20 MACs budgets across the range and compare with the measured Pareto front and with random configs. Every
accuracy is the search's own measurement (same validate function, validation and BN data).

    python benchmarks/generator_digits.py [--threads 2] [--search-evals 60] [--out outputs/generator_digits.json]
    python benchmarks/generator_digits.py --dataset fashion-mnist --artifact supernet.pth [--eval-subset 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

OPTIONS = {"width": {"min_width": 4, "width_multipliers": [1.0, 0.75, 0.5, 0.25]}}
BN_SAMPLES = {"digits": 128, "fashion-mnist": 512}  # digits: the setting of the runs in docs/benchmarks.md


class Setup(NamedTuple):
    """A supernet and how every accuracy of the benchmark is measured."""

    supernet: Any
    validate_fn: Any
    val_loader: Any
    bn_loader: Any
    evaluator: Any  # BNRecalibratedAccuracy with the search's validate function, loaders and BN samples
    eval_subset_size: int | None  # passed to the search (None: the validation loader is the subset)
    info: dict[str, Any]
    data: str


def supernet_training_config(epochs: int, lr: float = 1e-3) -> dict[str, Any]:
    """One progressive-shrinking stage over the whole space (every width and depth choice), sandwich sampling with
    in-place distillation: the library's own ``fit``, so the benchmarks measure a supernet trained the supported way."""
    stage = {"train_dims": ["width", "depth"], "epochs": epochs, "width_indicator": 99, "depth_indicator": 99,
             "reorg_weights": True, "bn_adapt": True}  # fmt: skip
    return {
        "input_info": {"sample_size": [1, 3, 32, 32]},
        "bootstrapNAS": {
            "training": {
                "elasticity": {"available_elasticity_dims": ["width", "depth"], **OPTIONS},
                "progressivity_of_elasticity": ["width", "depth"],
                "schedule": {"list_stage_descriptions": [stage]},
                "lr_schedule": {"params": {"base_lr": lr}},
                "sampling": {"strategy": "sandwich", "num_random": 2},
                "batchnorm_adaptation": {"num_bn_adaptation_samples": 256},
            }
        },
    }


def build_digits_supernet(
    name: str = "resnet18",
    pretrain_epochs: int = 8,
    supernet_epochs: int = 6,
    seed: int = 0,
    cache: Path | None = ROOT / "outputs" / "bench_digits_supernet.pt",
) -> tuple[Any, Any, dict[str, Any]]:
    """(supernet, data module, info): a pre-trained small reference model made elastic and trained with ``fit``.

    The result is cached in ``cache`` (state dict + supernet state) keyed by the arguments, so the generator and the
    quality-report benchmarks train it once.
    """
    from nncf_bootstrapnas import TrainingData, fit, load_config
    from nncf_bootstrapnas.data import DigitsDataModule
    from nncf_bootstrapnas.elasticity import SuperNetwork, create_supernet
    from nncf_bootstrapnas.models import build_model, example_input, pretrain

    dm = DigitsDataModule(image_size=32, channels=3, batch_size=64, seed=seed)
    key = {
        "name": name,
        "pretrain_epochs": pretrain_epochs,
        "supernet_epochs": supernet_epochs,
        "seed": seed,
        "options": OPTIONS,
        "training": supernet_training_config(supernet_epochs),
    }
    if cache is not None and cache.exists():
        saved = torch.load(cache, map_location="cpu", weights_only=False)
        if saved.get("key") == key:
            supernet = SuperNetwork.from_state(build_model(name, small=True), saved["state"])
            supernet.load_state_dict(saved["weights"])
            return supernet.eval(), dm, {**saved["info"], "cached": str(cache)}
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    model, acc = pretrain(build_model(name, small=True), dm.train_loader(), dm.val_loader(), pretrain_epochs, seed=seed)
    t1 = time.perf_counter()
    config = load_config(supernet_training_config(supernet_epochs))
    supernet = create_supernet(model, config, example_input=example_input(name, 1))
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(supernet.parameters(), lr=1e-3, weight_decay=0.01)
    fit(supernet, TrainingData(dm.train_loader(), dm.val_loader()), config, optimizer=optimizer, progress=False)
    supernet.activate(None)
    supernet.eval()
    info = {
        "model": f"{name} (small)",
        "pretrained_val_acc": round(acc, 2),
        "pretrain_s": round(t1 - t0, 1),
        "supernet_train_s": round(time.perf_counter() - t1, 1),
        "search_space": repr(supernet.search_space),
    }
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"key": key, "state": supernet.get_state(), "weights": supernet.state_dict(), "info": info}, cache)
    return supernet, dm, info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=("digits", "fashion-mnist"), default="digits")
    p.add_argument("--artifact", type=Path, help="supernet saved by save_supernet (required for fashion-mnist)")
    p.add_argument("--data-root", default=None, help="fashion-mnist: IDX folder (default: the Debian package's)")
    p.add_argument("--eval-subset", type=int, default=2000, help="fashion-mnist: fixed validation images")
    p.add_argument("--bn-samples", type=int, default=None,
                   help="BN recalibration samples, search and measurements (default: 128 digits, 512 fashion-mnist)")  # fmt: skip
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--search-evals", type=int, default=60)
    p.add_argument("--population", type=int, default=12, help="NSGA2 population of the search")
    p.add_argument("--generator-rows", type=int, default=32)
    p.add_argument("--generator-epochs", type=int, default=10)
    p.add_argument("--targets", type=int, default=20)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.dataset == "fashion-mnist" and args.artifact is None:
        p.error("--dataset fashion-mnist needs --artifact (a supernet saved by save_supernet)")
    if args.bn_samples is None:
        args.bn_samples = BN_SAMPLES[args.dataset]
    return args


def load_setup(args: argparse.Namespace) -> Setup:
    """The supernet and the one measurement every accuracy here uses (search, generator rows, comparisons)."""
    from nncf_bootstrapnas.evaluation import BNRecalibratedAccuracy

    if args.dataset == "fashion-mnist":
        if str(ROOT) not in sys.path:  # run as a script or loaded by path: make ``benchmarks`` importable
            sys.path.insert(0, str(ROOT))
        from benchmarks.search_problems import build_fashion_problem

        supernet, validate_fn, val, bn = build_fashion_problem(args.artifact, args.eval_subset, args.data_root)
        info = {"artifact": str(args.artifact), "search_space": repr(supernet.search_space)}
        data = (
            f"Fashion-MNIST ({args.data_root or 'the Debian package'}); accuracy = top-1 % on a fixed subset of "
            f"{args.eval_subset} validation images after BN recalibration on {args.bn_samples} training images"
        )
        subset = None  # the validation loader is the fixed subset already
    else:
        from nncf_bootstrapnas.evaluation.measure import top1_accuracy

        supernet, dm, info = build_digits_supernet(seed=args.seed)
        validate_fn, val, bn = top1_accuracy, dm.val_loader(batch_size=120), dm.train_loader(batch_size=64)
        data = (
            "scikit-learn digits (32x32, 3 channels); accuracy = top-1 % on the 359 validation images after BN "
            f"recalibration on {args.bn_samples} training images"
        )
        subset = 360
    evaluator = BNRecalibratedAccuracy(val, bn_loader=bn, num_bn_samples=args.bn_samples, validate_fn=validate_fn)
    return Setup(supernet, validate_fn, val, bn, evaluator, subset, info, data)


def run_search(setup: Setup, args: argparse.Namespace) -> tuple[Any, float | None]:
    """One NSGA2 search (accuracy, MACs) and its wall time; (None, None) if the search package fails."""
    try:
        from nncf_bootstrapnas.subnet_search import search

        extra = {"eval_subset_size": setup.eval_subset_size} if setup.eval_subset_size else {}
        t0 = time.perf_counter()
        result = search(
            setup.supernet,
            validate_fn=setup.validate_fn,
            val_loader=setup.val_loader,
            bn_loader=setup.bn_loader,
            objectives=["accuracy", "macs"],
            algorithm="NSGA2",
            num_evals=args.search_evals,
            population=args.population,
            seed=args.seed,
            progress=False,
            num_bn_adaptation_samples=args.bn_samples,
            **extra,
        )
        return result, time.perf_counter() - t0
    except Exception as exc:  # the search package is developed in parallel; the generator numbers stand alone
        print(f"search unavailable: {type(exc).__name__}: {exc}")
        return None, None


def accuracy_gaps(setup: Setup, rows: list[dict[str, Any]], front: list[tuple[float, float]]) -> list[float]:
    """Measure every generated subnet; gap = its accuracy - the best front accuracy under the same budget."""
    gaps = []
    for row in rows:
        row["accuracy"] = setup.evaluator.score(setup.supernet, row["config"])
        feasible = [a for m, a in front if m <= row["target"]]
        row["front_accuracy"] = max(feasible) if feasible else None
        if feasible:
            gaps.append(row["accuracy"] - row["front_accuracy"])
    return gaps


def gap_stats(gaps: list[float]) -> dict[str, Any]:
    """Mean and median gap, and over how many budgets (those with a front point under them)."""
    return {
        "accuracy_gap_vs_front_mean": float(np.mean(gaps)) if gaps else None,
        "accuracy_gap_vs_front_median": float(np.median(gaps)) if gaps else None,
        "budgets_compared": len(gaps),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)

    from nncf_bootstrapnas.generator import evaluate_generator, random_baseline, train_generator

    setup = load_setup(args)
    supernet, evaluator = setup.supernet, setup.evaluator
    print(f"supernet: {setup.info}")
    search_result, search_s = run_search(setup, args)

    t0 = time.perf_counter()
    gen = train_generator(
        supernet,
        evaluator=evaluator,
        num_rows=args.generator_rows,
        epochs=args.generator_epochs,
        lr=5e-3,
        seed=args.seed,
    )
    gen_s = time.perf_counter() - t0
    lo, hi = gen.cost_lo, gen.cost_hi
    values = np.linspace(lo + 0.05 * (hi - lo), hi, args.targets)
    ours = evaluate_generator(supernet, gen, values)
    rand = random_baseline(supernet, supernet.search_space, values, "macs", gen.meta["tolerance"], seed=args.seed)

    front, rescore_diff = [], None
    if search_result is not None:
        searched = [(r, evaluator.score(supernet, r["config"])) for r in search_result.front]
        front = [(float(r["values"]["macs"]), acc) for r, acc in searched]
        rescore_diff = max((abs(acc - float(r["values"]["accuracy"])) for r, acc in searched), default=None)

    gaps = accuracy_gaps(setup, ours["rows"], front)
    # strict=True (CLI --strict): the same generator, its choices stepped down until the exact MACs meet the budget
    strict = evaluate_generator(supernet, gen, values, strict=True)
    strict_block = {
        **{k: v for k, v in strict.items() if k != "rows"},
        **gap_stats(accuracy_gaps(setup, strict["rows"], front)),
    }
    # The same generator, its accuracy term fitted on the search's measured rows instead of its own (what a user
    # who has already searched once would do): does it reach the front?
    from_search = None
    if search_result is not None:
        t0 = time.perf_counter()
        gen_s2 = train_generator(
            supernet, predictor=search_result, epochs=args.generator_epochs, lr=5e-3, seed=args.seed
        )
        train_s2 = time.perf_counter() - t0
        ours_s2 = evaluate_generator(supernet, gen_s2, values)
        from_search = {
            "train_s": round(train_s2, 1),
            "fraction_under_budget": ours_s2["fraction_under_budget"],
            "fraction_within_band": ours_s2["fraction_within_band"],
            "ms_per_generation": ours_s2["ms_per_generation"],
            **gap_stats(accuracy_gaps(setup, ours_s2["rows"], front)),
        }
    summary = {
        "dataset": args.dataset,
        "data": setup.data,
        "supernet": setup.info,
        "cost_model_error": gen.meta["cost_model_error"],
        "predictor_stats": gen.meta["predictor_stats"],
        "generator_train_s": round(gen_s, 1),
        "generator_time_breakdown_s": gen.meta["time_breakdown_s"],
        "generator_rows_measured": args.generator_rows,
        "search_s": round(search_s, 1) if search_s is not None else None,
        "search_evals": args.search_evals if search_result is not None else None,
        "generator_train_over_search": round(gen_s / search_s, 3) if search_s else None,
        "front_size": len(front),
        "front_rescore_max_abs_diff": rescore_diff,
        "targets": len(values),
        "tolerance": gen.meta["tolerance"],
        "generator": {k: v for k, v in ours.items() if k != "rows"},
        "generator_strict": strict_block,
        "random_configs": {k: v for k, v in rand.items() if k != "rows"},
        **gap_stats(gaps),
        "generator_from_search_rows": from_search,
        "rows": [{k: v for k, v in r.items() if k != "config"} for r in ours["rows"]],
    }
    print_summary(summary, ours["rows"])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def print_summary(summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """The per-budget table and the headline numbers."""
    print(f"\n{'target MMACs':>12} {'gen MMACs':>10} {'gen acc':>8} {'front acc':>9}")
    for r in rows:
        fa = f"{r['front_accuracy']:.2f}" if r["front_accuracy"] is not None else "-"
        print(f"{r['target'] / 1e6:12.3f} {r['cost'] / 1e6:10.3f} {r['accuracy']:8.2f} {fa:>9}")
    g, rb, tol = summary["generator"], summary["random_configs"], summary["tolerance"]
    print(
        f"\ngenerator: {100 * g['fraction_under_budget']:.0f}% under budget, {100 * g['fraction_within_band']:.0f}% within "
        f"[budget - {100 * tol:.0f}% of range, budget], mean |error| {100 * g['mean_abs_error_of_range']:.1f}% "
        f"of range, {g['ms_per_generation']:.2f} ms per generation"
    )
    print(
        f"random configs: {100 * rb['fraction_under_budget']:.0f}% under budget, {100 * rb['fraction_within_band']:.0f}% within, "
        f"mean |error| {100 * rb['mean_abs_error_of_range']:.1f}% of range"
    )
    print(
        f"generator training {summary['generator_train_s']} s (incl. {summary['generator_rows_measured']} measured rows) "
        f"vs one search {summary['search_s']} s ({summary['search_evals']} evaluations)"
    )
    if summary["budgets_compared"]:
        print(
            f"accuracy of generated subnet - best front accuracy under the same budget: mean "
            f"{summary['accuracy_gap_vs_front_mean']:+.2f}, median {summary['accuracy_gap_vs_front_median']:+.2f} "
            f"points over {summary['budgets_compared']} budgets (front of {summary['front_size']}, re-measured: max "
            f"|diff| to the search's values {summary['front_rescore_max_abs_diff']:.3f})"
        )
    st = summary["generator_strict"]
    shown = "n/a" if st["accuracy_gap_vs_front_mean"] is None else f"{st['accuracy_gap_vs_front_mean']:+.2f}"
    print(
        f"generator, strict=True: {100 * st['fraction_under_budget']:.0f}% under budget, "
        f"{100 * st['fraction_within_band']:.0f}% within, {st['ms_per_generation']:.2f} ms per generation, "
        f"mean gap vs front {shown} points over {st['budgets_compared']} budgets"
    )
    if summary["generator_from_search_rows"] is not None:
        print(f"generator fitted on the search's rows: {json.dumps(summary['generator_from_search_rows'])}")
    print(f"generator time breakdown (s): {summary['generator_time_breakdown_s']}")
    print(f"cost model: {json.dumps(summary['cost_model_error'])}")


if __name__ == "__main__":
    main()
