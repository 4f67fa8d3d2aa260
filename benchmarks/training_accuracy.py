"""Supernet-training accuracy: pre-train (or load weights), convert, train with the legacy default schedule, then
measure the maximum and minimum subnets of the FULL search space (after BN adaptation) against the pre-trained model.

``--dataset digits`` (issue 4; 32x32 RGB, validation split) or ``--dataset fashion-mnist`` (issue 12; 28x28 grey,
accuracies on the official 10 000 test images, model selection never sees them). ``--kd softmax`` distils every
sampled subnet from the frozen pre-trained model.

Targets: maximum within 0.5 points of the pre-trained accuracy, minimum within 3 points. Three subnets are reported:
the maximum, the smallest subnet the schedule's last stage trains ("stage min") and the minimum of the full space.
``--schedule full`` appends one stage to the default schedule that opens every width/depth choice, so that the full
space's minimum is trained as well.

    .venv/bin/python benchmarks/training_accuracy.py --model resnet18 --kw width=0.5
    .venv/bin/python benchmarks/training_accuracy.py --model mobilenet_v2 --kw width_mult=0.5 --kw stem_stride=2
    .venv/bin/python benchmarks/training_accuracy.py --dataset fashion-mnist --model resnet18 --kw width=0.25 \
        --kw in_channels=1 --pretrain-epochs 6 --kd softmax
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path
from typing import Any

import torch

from nncf_bootstrapnas import create_supernet, load_config
from nncf_bootstrapnas.data import DigitsDataModule, FashionMNISTDataModule
from nncf_bootstrapnas.evaluation import top1_accuracy as evaluate_accuracy
from nncf_bootstrapnas.models import build_model, pretrain
from nncf_bootstrapnas.models.ref import REFERENCE_FACTORY, ModelRef
from nncf_bootstrapnas.training import TrainingData, adapt_batchnorm, fit, save_supernet


def schedule(kind: str, epochs_per_stage: int, lr: float) -> list[dict]:
    """The legacy default stages (each ``epochs_per_stage`` long), plus (``full``) a last stage with every width and
    depth choice open. Every stage restarts its cosine learning rate from ``lr`` (legacy ``init_lr``/``epochs_lr``):
    with one global cosine over all stages, the dimensions opened last would train at almost zero learning rate.
    ``width``: a width-only super-network (no depth, minimum ~4x fewer MACs) trained in one stage with every width
    open from the start, the channels reorganised by importance first; ``width-depth``: the same with elastic depth
    too (no kernel), every width and depth choice open in the one stage. ``max-only``: the same space with only the
    maximum trained (one subnet per step): the ablation that tells re-warming the learning rate from interference."""
    if kind == "max-only":
        return [{"train_dims": ["width"], "epochs": epochs_per_stage, "epochs_lr": epochs_per_stage, "init_lr": lr,
                 "width_indicator": 1}]  # fmt: skip
    if kind in ("width", "width-depth"):
        dims = ["width", "depth"] if kind == "width-depth" else ["width"]
        stage = {"train_dims": dims, "epochs": epochs_per_stage, "epochs_lr": epochs_per_stage, "init_lr": lr,
                 "width_indicator": 99, "reorg_weights": True, "bn_adapt": True}  # fmt: skip
        return [stage | ({"depth_indicator": 99} if kind == "width-depth" else {})]
    legacy = load_config({"bootstrapNAS": {"training": {}}}).sections.training.stages  # NNCF's five stages
    stages = [{k: v for k, v in s.to_json().items() if k != "init_lr"} for s in legacy]
    for stage in stages:
        stage["epochs"] = stage["epochs_lr"] = stage["epochs"] * epochs_per_stage
        stage["init_lr"] = lr
    if kind == "full":
        # indicators larger than any variable's choice count open every choice
        last = dict(stages[-1], width_indicator=99, depth_indicator=99, reorg_weights=False)
        stages.append(last)
    return stages


def supernet_config(
    kind: str,
    epochs_per_stage: int,
    lr: float,
    kd: str,
    sample: list[int],
    subnet_loss_weight: float = 1.0,
    width_multipliers: tuple[float, ...] = (1.0, 0.75, 0.5),
) -> dict[str, Any]:
    """The benchmark's config: width multipliers (default 1/0.75/0.5, min 8) + depth, or width only (``width``/``max-only``), the
    schedule of :func:`schedule`, KD from the original unless ``kd`` is ``none``, the sandwich's other subnets'
    losses weighted by ``subnet_loss_weight``."""
    width_only = kind in ("width", "max-only")
    dims = ["width"] if width_only else ["width", "depth"] if kind == "width-depth" else None
    training: dict[str, Any] = {
        "elasticity": {
            "width": {"min_width": 8, "width_multipliers": list(width_multipliers)},
            **({"available_elasticity_dims": dims} if dims else {}),
        },
        "batchnorm_adaptation": {"num_bn_adaptation_samples": 512},
        "schedule": {"list_stage_descriptions": schedule(kind, epochs_per_stage, lr)},
    }
    if kd != "none":
        training["compression"] = [{"algorithm": "knowledge_distillation", "type": kd}]
    if dims:
        training["progressivity_of_elasticity"] = dims
    if kind == "max-only":
        training["sampling"] = {"strategy": "single"}
    elif subnet_loss_weight != 1.0:
        training["sampling"] = {"subnet_loss_weight": subnet_loss_weight}
    return {"input_info": {"sample_size": sample}, "bootstrapNAS": {"training": training}}


def build_data(args: argparse.Namespace) -> tuple:
    """The data module, the loader accuracies are reported on, and the input's sample size."""
    if args.dataset == "digits":
        data = DigitsDataModule(image_size=32, channels=3, batch_size=args.batch_size, seed=0)
        return data, data.val_loader(), [1, 3, 32, 32]
    channels = int(dict(kw.split("=", 1) for kw in args.kw).get("in_channels", 1))
    data = FashionMNISTDataModule(args.data_root, channels=channels, batch_size=args.batch_size, seed=0, augment=True)
    return data, data.test_loader(batch_size=256), [1, channels, 28, 28]


def pretrained(model: torch.nn.Module, args: argparse.Namespace, data, out: Path) -> tuple[torch.nn.Module, float]:  # noqa: ANN001
    """Load ``--weights``, or pre-train and save the weights so a rerun can skip it; returns (model, seconds)."""
    if args.weights is not None:
        model.load_state_dict(torch.load(args.weights, weights_only=True))
        return model.eval(), 0.0
    t0 = time.perf_counter()
    model, _ = pretrain(
        model, data.train_loader(), data.val_loader(), epochs=args.pretrain_epochs, seed=0, progress=True
    )
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / f"pretrained_{args.dataset}_{args.model}.pth")
    return model.eval(), time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--kw", action="append", default=[], help="model keyword, e.g. width=0.5")
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument(
        "--lr", type=float, default=5e-4, help="initial learning rate of every stage (AdamW, cosine per stage)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--schedule", choices=("default", "full", "width", "width-depth", "max-only"), default="default"
    )
    parser.add_argument("--epochs-per-stage", type=int, default=1, help="length of every stage of the schedule")
    parser.add_argument("--out", default="outputs/bench_training_accuracy")
    parser.add_argument("--dataset", choices=("digits", "fashion-mnist"), default="digits")
    parser.add_argument("--data-root", default=None, help="Fashion-MNIST IDX folder (default: Debian's)")
    parser.add_argument("--weights", type=Path, default=None, help="pre-trained state_dict: skip pre-training")
    parser.add_argument("--kd", choices=("none", "softmax", "mse"), default="none", help="distil from the original")
    parser.add_argument("--train-subset", type=int, default=None, help="supernet training images (default: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--subnet-loss-weight", type=float, default=1.0, help="sampling.subnet_loss_weight")
    parser.add_argument(
        "--width-multipliers", default="1.0,0.75,0.5", help="elasticity.width.width_multipliers, comma-separated"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kwargs = {k: ast.literal_eval(v) for k, v in (kw.split("=", 1) for kw in args.kw)}
    data, test, sample = build_data(args)
    train, val = data.train_loader(), data.val_loader()
    out = Path(args.out)

    torch.manual_seed(0)
    model = build_model(args.model, **kwargs)
    model, t_pre = pretrained(model, args, data, out)
    pre_acc = evaluate_accuracy(model, test)

    config = load_config(
        supernet_config(
            args.schedule,
            args.epochs_per_stage,
            args.lr,
            args.kd,
            sample,
            args.subnet_loss_weight,
            tuple(float(v) for v in args.width_multipliers.split(",")),
        )
    )
    supernet = create_supernet(model, config)
    fit_train = data.train_loader(num_samples=args.train_subset) if args.train_subset else train
    optimizer = torch.optim.AdamW(supernet.parameters(), lr=args.lr, weight_decay=0.0)
    t1 = time.perf_counter()
    result = fit(
        supernet,
        TrainingData(fit_train, val),
        config,
        optimizer=optimizer,
        checkpoint_dir=out / f"{args.model}_{args.schedule}_x{args.epochs_per_stage}",
    )
    t_fit = time.perf_counter() - t1
    sn = result.supernet
    # the artifact search/quality/generator benchmarks load (`--artifact`): rebuilt from the recorded factory
    ref = ModelRef(REFERENCE_FACTORY, {"name": args.model, **kwargs})
    save_supernet(out / "supernet.pth", sn, model=ref, original=model, meta={"benchmark": "training_accuracy"})
    rows = {}
    roles = (
        ("max", sn.search_space.maximum()),
        ("stage_min", sn.stage_space.minimum()),  # smallest subnet the last stage trains
        ("min", sn.search_space.minimum()),
    )
    for role, cfg in roles:
        sn.activate(cfg)
        adapt_batchnorm(sn, data.train_loader(), 2000 if args.dataset != "digits" else 512)
        rows[role] = {"accuracy": evaluate_accuracy(sn, test), "macs": sn.macs(), "params": sn.params()}
    report = {
        "dataset": args.dataset,
        "measured_on": f"{len(test.dataset)} {'test' if args.dataset != 'digits' else 'validation'} images",
        "kd": args.kd,
        "subnet_loss_weight": args.subnet_loss_weight,
        "width_multipliers": args.width_multipliers,
        "train_subset": args.train_subset,
        "model": args.model,
        "model_kwargs": kwargs,
        "pretrained_accuracy": pre_acc,
        "pretrained_macs": sn.macs(sn.search_space.maximum()),
        "max": rows["max"],
        "min": rows["min"],
        "stage_min": rows["stage_min"],
        "schedule": args.schedule,
        "max_gap_points": pre_acc - rows["max"]["accuracy"],
        "min_gap_points": pre_acc - rows["min"]["accuracy"],
        "stage_min_gap_points": pre_acc - rows["stage_min"]["accuracy"],
        "search_space": repr(sn.search_space),
        "pretrain_s": t_pre,
        "supernet_training_s": t_fit,
        "epochs": result.epochs_run,
    }
    print(json.dumps(report, indent=1))
    print(
        "\n| model | schedule | pre-trained | max (gap) | stage min (gap) | full-space min (gap) | MACs max/stage min/min | time |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"(kd {args.kd}, {len(test.dataset)} images, MACs ratio max/min {rows['max']['macs'] / rows['min']['macs']:.1f}x)"
    )
    cells = [f"{rows[r]['accuracy']:.2f} ({rows[r]['accuracy'] - pre_acc:+.2f})" for r in ("max", "stage_min", "min")]
    macs = "/".join(f"{rows[r]['macs'] / 1e6:.1f}M" for r in ("max", "stage_min", "min"))
    print(f"| {args.model} {kwargs} | {args.schedule} | {pre_acc:.2f} | {' | '.join(cells)} | {macs} | {t_fit:.0f} s |")


if __name__ == "__main__":
    main()
