"""SGNAS-style generator on a digits supernet: constraint satisfaction, speed and accuracy against a searched front.

Steps: pre-train a small ResNet-18 on scikit-learn's digits (the only real data here; every accuracy is top-1 on its
validation split), turn it into a supernet and train it with ``fit`` (sandwich sampling, in-place distillation), run one search (accuracy and
MACs), train the generator (its accuracy term from a predictor fitted on its own measured rows, not the search's), then
generate for 20 MACs budgets across the range and compare with the measured Pareto front and with random configs.

    python benchmarks/generator_digits.py [--threads 2] [--search-evals 60] [--out outputs/generator_digits.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

OPTIONS = {"width": {"min_width": 4, "width_multipliers": [1.0, 0.75, 0.5, 0.25]}}


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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--search-evals", type=int, default=60)
    p.add_argument("--generator-rows", type=int, default=32)
    p.add_argument("--generator-epochs", type=int, default=10)
    p.add_argument("--targets", type=int, default=20)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from nncf_bootstrapnas.evaluation import BNRecalibratedAccuracy
    from nncf_bootstrapnas.evaluation.measure import top1_accuracy
    from nncf_bootstrapnas.generator import evaluate_generator, random_baseline, train_generator

    supernet, dm, info = build_digits_supernet(seed=args.seed)
    print(f"supernet: {info}")
    val = dm.val_loader(batch_size=120)
    bn = dm.train_loader(batch_size=64)
    evaluator = BNRecalibratedAccuracy(val, bn_loader=bn, num_bn_samples=128)

    search_result, search_s = None, None
    try:
        from nncf_bootstrapnas.subnet_search import search

        t0 = time.perf_counter()
        search_result = search(
            supernet,
            validate_fn=top1_accuracy,
            val_loader=val,
            bn_loader=bn,
            objectives=["accuracy", "macs"],
            algorithm="NSGA2",
            num_evals=args.search_evals,
            population=12,
            seed=args.seed,
            progress=False,
            eval_subset_size=360,
            num_bn_adaptation_samples=128,
        )
        search_s = time.perf_counter() - t0
    except Exception as exc:  # the search package is developed in parallel; the generator numbers stand alone
        print(f"search unavailable: {type(exc).__name__}: {exc}")

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

    front = []
    if search_result is not None:
        front = [(float(r["values"]["macs"]), evaluator.score(supernet, r["config"])) for r in search_result.front]

    def accuracy_gaps(rows: list[dict[str, Any]]) -> list[float]:
        """Measure every generated subnet; gap = its accuracy - the best front accuracy under the same budget."""
        gaps = []
        for row in rows:
            row["accuracy"] = evaluator.score(supernet, row["config"])
            feasible = [a for m, a in front if m <= row["target"]]
            row["front_accuracy"] = max(feasible) if feasible else None
            if feasible:
                gaps.append(row["accuracy"] - row["front_accuracy"])
        return gaps

    gaps = accuracy_gaps(ours["rows"])
    # The same generator, its accuracy term fitted on the search's measured rows instead of its own 32 (what a user
    # who has already searched once would do): does it reach the front?
    from_search = None
    if search_result is not None:
        t0 = time.perf_counter()
        gen_s2 = train_generator(
            supernet, predictor=search_result, epochs=args.generator_epochs, lr=5e-3, seed=args.seed
        )
        ours_s2 = evaluate_generator(supernet, gen_s2, values)
        gaps_s2 = accuracy_gaps(ours_s2["rows"])
        from_search = {
            "train_s": round(time.perf_counter() - t0, 1),
            "fraction_under_budget": ours_s2["fraction_under_budget"],
            "fraction_within_band": ours_s2["fraction_within_band"],
            "accuracy_gap_vs_front_mean": float(np.mean(gaps_s2)) if gaps_s2 else None,
            "accuracy_gap_vs_front_median": float(np.median(gaps_s2)) if gaps_s2 else None,
        }
    summary = {
        "data": "scikit-learn digits (32x32, 3 channels); accuracy = top-1 % on the 359 validation images after BN "
        "recalibration on 128 training images",
        "supernet": info,
        "cost_model_error": gen.meta["cost_model_error"],
        "predictor_stats": gen.meta["predictor_stats"],
        "generator_train_s": round(gen_s, 1),
        "generator_time_breakdown_s": gen.meta["time_breakdown_s"],
        "generator_rows_measured": args.generator_rows,
        "search_s": round(search_s, 1) if search_s is not None else None,
        "search_evals": args.search_evals if search_result is not None else None,
        "front_size": len(front),
        "targets": len(values),
        "generator": {k: v for k, v in ours.items() if k != "rows"},
        "random_configs": {k: v for k, v in rand.items() if k != "rows"},
        "accuracy_gap_vs_front_mean": float(np.mean(gaps)) if gaps else None,
        "accuracy_gap_vs_front_median": float(np.median(gaps)) if gaps else None,
        "generator_from_search_rows": from_search,
        "rows": [{k: v for k, v in r.items() if k != "config"} for r in ours["rows"]],
    }
    print(f"\n{'target MMACs':>12} {'gen MMACs':>10} {'gen acc':>8} {'front acc':>9}")
    for r in ours["rows"]:
        fa = f"{r['front_accuracy']:.2f}" if r["front_accuracy"] is not None else "-"
        print(f"{r['target'] / 1e6:12.3f} {r['cost'] / 1e6:10.3f} {r['accuracy']:8.2f} {fa:>9}")
    g, rb = summary["generator"], summary["random_configs"]
    print(
        f"\ngenerator: {100 * g['fraction_under_budget']:.0f}% under budget, {100 * g['fraction_within_band']:.0f}% within "
        f"[budget - {100 * gen.meta['tolerance']:.0f}% of range, budget], mean |error| {100 * g['mean_abs_error_of_range']:.1f}% "
        f"of range, {g['ms_per_generation']:.2f} ms per generation"
    )
    print(
        f"random configs: {100 * rb['fraction_under_budget']:.0f}% under budget, {100 * rb['fraction_within_band']:.0f}% within, "
        f"mean |error| {100 * rb['mean_abs_error_of_range']:.1f}% of range"
    )
    print(
        f"generator training {gen_s:.1f} s (incl. {args.generator_rows} measured rows) vs one search {summary['search_s']} s "
        f"({summary['search_evals']} evaluations)"
    )
    if gaps:
        print(
            f"accuracy of generated subnet - best front accuracy under the same budget: mean {np.mean(gaps):+.2f}, "
            f"median {np.median(gaps):+.2f} points over {len(gaps)} budgets"
        )
    if from_search is not None:
        print(f"generator fitted on the search's rows: {json.dumps(from_search)}")
    print(f"generator time breakdown (s): {gen.meta['time_breakdown_s']}")
    print(f"cost model: {json.dumps(gen.meta['cost_model_error'])}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


if __name__ == "__main__":
    main()
