"""Supernet quality report: does inherited accuracy rank (and pick) subnets like stand-alone fine-tuning does?

``--dataset digits`` (default) builds the same supernet as ``generator_digits.py`` (small ResNet-18 pre-trained on
scikit-learn's digits, made elastic, trained briefly; every accuracy is top-1 on its 359-image validation split).
``--dataset fashion-mnist`` loads a supernet artifact (``save_supernet``, ``--artifact``) trained on Fashion-MNIST and
measures it on a fixed validation subset (``--eval-subset``), fine-tuning on a fixed training subset
(``--finetune-subset``). Then ``quality_report`` prints Kendall tau / Spearman rho with bootstrap intervals of every
signal against stand-alone fine-tuned accuracy (MACs, params and zero-cost proxies beside it), and the
selection-mechanism comparison: the pick within MACs budgets by each signal and by an out-of-fold predictor.

    python benchmarks/quality_report.py [--subnets 8] [--finetune-epochs 1] [--out outputs/quality_report]
    python benchmarks/quality_report.py --dataset fashion-mnist --artifact supernet.pth [--eval-subset 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
for path in (HERE.parent, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

BN_SAMPLES = {"digits": 256, "fashion-mnist": 512}  # digits: the setting of the measured runs in docs/benchmarks.md


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=("digits", "fashion-mnist"), default="digits")
    p.add_argument("--artifact", type=Path, help="supernet saved by save_supernet (required for fashion-mnist)")
    p.add_argument("--eval-subset", type=int, default=2000, help="fashion-mnist: fixed validation images")
    p.add_argument("--finetune-subset", type=int, default=5000, help="fashion-mnist: fixed training images")
    p.add_argument("--batch-size", type=int, default=256, help="fashion-mnist loaders")
    p.add_argument("--bn-samples", type=int, help="BN recalibration samples (default: 256 digits, 512 fashion-mnist)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subnets", type=int, default=8)
    p.add_argument("--finetune-epochs", type=int, default=1)
    p.add_argument("--finetune-lr", type=float, help="stand-alone fine-tune learning rate (default: the schema's)")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the intervals (0: none)")
    p.add_argument("--supernet-epochs", type=int, default=6, help="digits: supernet training epochs")
    p.add_argument("--out", type=Path, default=Path("outputs/quality_report"))
    args = p.parse_args(argv)
    if args.dataset == "fashion-mnist" and args.artifact is None:
        p.error("--dataset fashion-mnist needs --artifact (a supernet saved by save_supernet)")
    return args


def fashion_problem(args: argparse.Namespace) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(supernet, fine-tune/BN loader, validation loader, info); inputs shaped as search_problems.py infers them."""
    from nncf_bootstrapnas import load_supernet
    from nncf_bootstrapnas.data import FashionMNISTDataModule

    supernet = load_supernet(args.artifact)
    convs = [m for m in supernet.modules() if isinstance(m, torch.nn.Conv2d)]
    channels = convs[0].in_channels if convs else 1
    example = getattr(supernet, "example_input", None)
    size = int(example[0].shape[-1]) if isinstance(example, (tuple, list)) and hasattr(example[0], "shape") else 28
    dm = FashionMNISTDataModule(None, channels=channels, image_size=size, batch_size=args.batch_size, seed=0)
    info = {"artifact": str(args.artifact), "data": dm.describe(), "space": repr(supernet.search_space)}
    val = dm.subset_loader(args.eval_subset, "val")
    return supernet, dm.train_loader(num_samples=args.finetune_subset), val, info


def digits_problem(args: argparse.Namespace) -> tuple[Any, Any, Any, dict[str, Any]]:
    from generator_digits import build_digits_supernet

    supernet, dm, info = build_digits_supernet(supernet_epochs=args.supernet_epochs, seed=args.seed)
    return supernet, dm.train_loader(batch_size=64), dm.val_loader(batch_size=120), info


def print_report(report: Any, seconds: float) -> None:
    from nncf_bootstrapnas.evaluation.report_io import selection_markdown, stat_cell

    print(f"\nreference: {report.reference}; {len(report.rows)} subnets; report {seconds:.1f} s; files {report.files}")
    columns = ("kendall_tau", "spearman_rho", "sparse_kendall_tau", "top_k_overlap")
    print(f"{'signal':<20} {'Kendall [CI]':>20} {'Spearman [CI]':>20} {'sparse KT':>10} {'top-k':>6}")
    for name, s in report.correlations.items():
        cells = [stat_cell(s, c) for c in columns]
        print(f"{name:<20} {cells[0]:>20} {cells[1]:>20} {cells[2]:>10} {cells[3]:>6}")
    print(f"\n{'MMACs':>8} {'inherited':>9} {'+BN':>7} {'fine-tuned':>10}")
    for r in report.rows:
        tuned = r.get("standalone_acc", float("nan"))
        print(f"{r['macs'] / 1e6:8.3f} {r['inherited_acc']:9.2f} {r['inherited_bn_acc']:7.2f} {tuned:10.2f}")
    if report.selection is not None:
        print("\nselection within MACs budgets (#pick: stand-alone accuracy (regret)):")
        print("\n".join(selection_markdown(report.selection)))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from nncf_bootstrapnas.evaluation import quality_report

    build = fashion_problem if args.dataset == "fashion-mnist" else digits_problem
    supernet, train_loader, val_loader, info = build(args)
    print(f"supernet: {info}")
    t0 = time.perf_counter()
    report = quality_report(
        supernet,
        train_loader,
        val_loader,
        num_subnets=args.subnets,
        finetune_epochs=args.finetune_epochs,
        finetune_lr=args.finetune_lr,
        top_k=args.top_k,
        bn_samples=args.bn_samples if args.bn_samples is not None else BN_SAMPLES[args.dataset],
        bootstrap=args.bootstrap,
        seed=args.seed,
        out_dir=args.out,
    )
    seconds = time.perf_counter() - t0
    print_report(report, seconds)
    return {"dataset": args.dataset, "supernet": info, "report": report.to_json(), "seconds": seconds}


if __name__ == "__main__":
    main()
