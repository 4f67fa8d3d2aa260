"""Plain supervised pretraining of the reference models on digits: the "pre-trained model" BootstrapNAS starts from.

    python -m examples.pretrain --model resnet18 --epochs 5 --out outputs/resnet18.pth [--width 0.5] [--small]

Writes the ``state_dict`` to ``--out`` and a JSON sidecar (``outputs/resnet18.json``) with the model name, its keyword
arguments, the data layout and the validation accuracy, which :func:`load_pretrained` uses to rebuild the model.
The UNet trains on per-pixel targets (``DigitsDataModule(target="segmentation")``: each stroke pixel carries the
digit's label, background pixels are ignored), so its "accuracy" is the accuracy over stroke pixels.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from examples.models import build_model, data_kwargs
from nncf_bootstrapnas.data import IGNORE_INDEX, DigitsDataModule
from nncf_bootstrapnas.evaluation import top1_accuracy

# Name of each model's width-multiplier argument, for the CLI's --width.
WIDTH_ARG = {
    "resnet18": "width",
    "resnet50": "width",
    "vgg11_bn": "width",
    "mobilenet_v2": "width_mult",
    "mobilenet_v3": "width_mult",
    "efficientnet_b0": "width_mult",
}
DEFAULT_LR = {"sgd": 0.05, "adamw": 2e-3}


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def evaluate_accuracy(model: nn.Module, loader: Iterable) -> float:
    """Top-1 accuracy in percent (dense outputs: over labelled pixels); the library's ``top1_accuracy``."""
    return top1_accuracy(model, loader)


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {name!r}")


def pretrain(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable,
    epochs: int = 5,
    lr: float | None = None,
    seed: int = 0,
    optimizer: str = "adamw",
    weight_decay: float | None = None,
    progress: bool = False,
) -> tuple[nn.Module, float]:
    """Train with cross-entropy and a per-step cosine schedule; return the model (in eval mode) and val accuracy (%).

    AdamW (lr 2e-3, weight decay 0.05) by default: on tiny budgets (one epoch of a few hundred samples) it is far more
    reliable than SGD, whose BatchNorm running statistics often lag the weights and collapse eval accuracy to chance.

    ``seed`` fixes dropout/stochastic-depth randomness; the order of batches is the loader's (seeded) business.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if optimizer not in DEFAULT_LR:
        raise ValueError(f"optimizer must be one of {sorted(DEFAULT_LR)}, got {optimizer!r}")
    torch.manual_seed(seed)
    lr = DEFAULT_LR[optimizer] if lr is None else lr
    weight_decay = (5e-4 if optimizer == "sgd" else 0.05) if weight_decay is None else weight_decay
    opt = make_optimizer(model, optimizer, float(lr), weight_decay)
    steps_per_epoch = len(train_loader)  # type: ignore[arg-type]
    total_steps = max(1, epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    )
    device = _device_of(model)

    bar = _progress_bar() if progress else None
    task = bar.add_task("pretrain", total=total_steps, info="") if bar else None
    if bar:
        bar.start()
    try:
        for epoch in range(epochs):
            model.train()
            running, seen = 0.0, 0
            for images, targets in train_loader:
                images, targets = images.to(device), targets.to(device)
                loss = F.cross_entropy(model(images), targets, ignore_index=IGNORE_INDEX)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                scheduler.step()
                running += loss.item() * len(images)
                seen += len(images)
                if bar:
                    bar.update(task, advance=1, info=f"epoch {epoch + 1}/{epochs} loss {running / seen:.3f}")
            if bar:
                acc = evaluate_accuracy(model, val_loader)
                bar.console.print(
                    f"epoch {epoch + 1}/{epochs}: train loss {running / max(seen, 1):.4f}, val {acc:.2f}%"
                )
    finally:
        if bar:
            bar.stop()
    accuracy = evaluate_accuracy(model, val_loader)
    model.eval()
    return model, accuracy


def _progress_bar():
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )


def load_pretrained(path: str | Path) -> nn.Module:
    """Rebuild a model saved by the CLI from its JSON sidecar and load its weights (eval mode)."""
    path = Path(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    model = build_model(meta["model"], num_classes=meta["num_classes"], **meta["model_kwargs"])
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def _parse_kw(items: list[str]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--kw expects KEY=VALUE, got {item!r}")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a name from examples.models.MODELS")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True, help="where to write the state_dict (.pth)")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--optimizer", choices=["sgd", "adamw"], default="adamw")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="the small test variant")
    parser.add_argument("--width", type=float, default=None, help="width multiplier (resnet, vgg, mobilenet, effnet)")
    parser.add_argument("--kw", action="append", default=[], metavar="KEY=VALUE", help="extra model arguments (JSON)")
    parser.add_argument("--train-subset", type=int, default=None, help="train on this many samples only")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    model_kwargs = _parse_kw(args.kw)
    if args.width is not None:
        if args.model not in WIDTH_ARG:
            parser.error(f"--width is not supported for {args.model}; use --kw")
        model_kwargs[WIDTH_ARG[args.model]] = args.width
    if args.small:
        from examples.models import SMALL_KWARGS

        model_kwargs = {**SMALL_KWARGS[args.model], **model_kwargs}
    optimizer = args.optimizer

    dkw = data_kwargs(args.model)
    dm = DigitsDataModule(batch_size=args.batch_size, seed=args.seed, **dkw)
    train = dm.subset_loader(args.train_subset, "train", shuffle=True) if args.train_subset else dm.train_loader()
    torch.manual_seed(args.seed)
    model = build_model(args.model, num_classes=dm.num_classes, **model_kwargs)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.model} {model_kwargs} ({n_params:,} parameters) on {dm}")
    start = time.perf_counter()
    model, acc = pretrain(model, train, dm.val_loader(), args.epochs, args.lr, args.seed, optimizer, progress=True)
    seconds = time.perf_counter() - start
    print(f"validation accuracy {acc:.2f}% after {args.epochs} epochs in {seconds:.1f} s")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)
    meta = {
        "model": args.model,
        "model_kwargs": model_kwargs,
        "num_classes": dm.num_classes,
        "data": {**dkw, "seed": args.seed},  # DigitsDataModule(**data) reproduces the split
        "val_accuracy": acc,
        "epochs": args.epochs,
        "optimizer": optimizer,
        "lr": args.lr,
        "seed": args.seed,
        "train_seconds": round(seconds, 2),
        "torch": torch.__version__,
    }
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"saved {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
