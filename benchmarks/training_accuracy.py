"""Issue 4's accuracy figures: pre-train on digits (32x32), convert, train with the legacy default schedule, then
measure the maximum and minimum subnets of the FULL search space (after BN adaptation) against the pre-trained model.

Targets: maximum within 0.5 points of the pre-trained accuracy, minimum within 3 points.

    .venv/bin/python benchmarks/training_accuracy.py --model resnet18 --kw width=0.5
    .venv/bin/python benchmarks/training_accuracy.py --model mobilenet_v2 --kw width_mult=0.5 --kw stem_stride=2
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.models import build_model  # noqa: E402
from examples.pretrain import evaluate_accuracy, pretrain  # noqa: E402
from nncf_bootstrapnas import create_supernet, load_config  # noqa: E402
from nncf_bootstrapnas.data import DigitsDataModule  # noqa: E402
from nncf_bootstrapnas.training import adapt_batchnorm, fit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--kw", action="append", default=[], help="model keyword, e.g. width=0.5")
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=5e-4, help="supernet training (AdamW, cosine)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="outputs/bench_training_accuracy")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kwargs = {k: ast.literal_eval(v) for k, v in (kw.split("=", 1) for kw in args.kw)}
    data = DigitsDataModule(image_size=32, channels=3, batch_size=64, seed=0)
    train, val = data.train_loader(), data.val_loader()

    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = build_model(args.model, **kwargs)
    model, pre_acc = pretrain(model, train, val, epochs=args.pretrain_epochs, seed=0)
    t_pre = time.perf_counter() - t0

    config = load_config(
        {
            "input_info": {"sample_size": [1, 3, 32, 32]},
            "bootstrapNAS": {
                "training": {
                    "elasticity": {"width": {"min_width": 8, "width_multipliers": [1.0, 0.75, 0.5]}},
                    "lr_schedule": {"params": {"base_lr": args.lr}},
                    "batchnorm_adaptation": {"num_bn_adaptation_samples": 512},
                }
            },
        }
    )
    supernet = create_supernet(model, config)
    optimizer = torch.optim.AdamW(supernet.parameters(), lr=args.lr, weight_decay=0.0)
    t1 = time.perf_counter()
    result = fit(supernet, train, val, config=config, optimizer=optimizer, checkpoint_dir=Path(args.out) / args.model)
    t_fit = time.perf_counter() - t1
    sn = result.supernet
    rows = {}
    for role, cfg in (("max", sn.search_space.maximum()), ("min", sn.search_space.minimum())):
        sn.activate(cfg)
        adapt_batchnorm(sn, data.train_loader(), 512)
        rows[role] = {"accuracy": evaluate_accuracy(sn, val), "macs": sn.macs(), "params": sn.params()}
    report = {
        "model": args.model,
        "model_kwargs": kwargs,
        "pretrained_accuracy": pre_acc,
        "pretrained_macs": sn.macs(sn.search_space.maximum()),
        "max": rows["max"],
        "min": rows["min"],
        "max_gap_points": pre_acc - rows["max"]["accuracy"],
        "min_gap_points": pre_acc - rows["min"]["accuracy"],
        "search_space": repr(sn.search_space),
        "pretrain_s": t_pre,
        "supernet_training_s": t_fit,
        "epochs": result.epochs_run,
    }
    print(json.dumps(report, indent=1))
    print(f"\n| model | pre-trained acc | max acc (gap) | max MACs | min acc (gap) | min MACs | train time |")
    print(f"|---|---|---|---|---|---|---|")
    print(f"| {args.model} {kwargs} | {pre_acc:.2f} | {rows['max']['accuracy']:.2f} ({report['max_gap_points']:+.2f}) | "
          f"{rows['max']['macs'] / 1e6:.1f}M | {rows['min']['accuracy']:.2f} ({report['min_gap_points']:+.2f}) | "
          f"{rows['min']['macs'] / 1e6:.1f}M | {t_fit:.0f} s |")  # fmt: skip


if __name__ == "__main__":
    main()
