"""Pre-train a reference model on digits: the "pre-trained model" BootstrapNAS starts from.

    python -m examples.pretrain --model resnet18 --epochs 5 --out outputs/resnet18.pth [--width 0.5] [--small]

Writes the ``state_dict`` to ``--out`` and a JSON sidecar (``outputs/resnet18.json``) with the model name, its keyword
arguments, the data layout and the validation accuracy, which ``nncf_bootstrapnas.models.load_pretrained`` uses to
rebuild the model. The training itself is the library's ``nncf_bootstrapnas.models.pretrain``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from nncf_bootstrapnas.data import DigitsDataModule
from nncf_bootstrapnas.models import SMALL_KWARGS, build_model, data_kwargs
from nncf_bootstrapnas.models.pretrain import WIDTH_ARG, pretrain, save_pretrained


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
    parser.add_argument("--model", required=True, help="a name from nncf_bootstrapnas.models.MODELS")
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
        model_kwargs = {**SMALL_KWARGS[args.model], **model_kwargs}

    dkw = data_kwargs(args.model)
    dm = DigitsDataModule(batch_size=args.batch_size, seed=args.seed, **dkw)
    train = dm.subset_loader(args.train_subset, "train", shuffle=True) if args.train_subset else dm.train_loader()
    torch.manual_seed(args.seed)
    model = build_model(args.model, num_classes=dm.num_classes, **model_kwargs)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.model} {model_kwargs} ({n_params:,} parameters) on {dm}")
    start = time.perf_counter()
    model, acc = pretrain(model, train, dm.val_loader(), args.epochs, args.lr, args.seed, args.optimizer, progress=True)
    seconds = time.perf_counter() - start
    print(f"validation accuracy {acc:.2f}% after {args.epochs} epochs in {seconds:.1f} s")
    meta = {
        "model": args.model,
        "model_kwargs": model_kwargs,
        "num_classes": dm.num_classes,
        "data": {**dkw, "seed": args.seed},  # DigitsDataModule(**data) reproduces the split
        "val_accuracy": acc,
        "epochs": args.epochs,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "seed": args.seed,
        "train_seconds": round(seconds, 2),
        "torch": torch.__version__,
    }
    save_pretrained(model, args.out, meta)
    print(f"saved {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
