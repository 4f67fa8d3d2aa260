"""Supernet quality report on a digits ResNet-18 supernet: does inherited accuracy rank subnets like fine-tuning does?

Builds the same supernet as ``generator_digits.py`` (small ResNet-18 pre-trained on scikit-learn's digits, made
elastic, sandwich-trained briefly; digits is the only real data here, every accuracy is top-1 on its validation split),
then runs ``quality_report`` and prints Kendall tau of inherited accuracy (with and without BN recalibration) against
stand-alone fine-tuned accuracy, with MACs, params and the zero-cost proxies beside it.

    python benchmarks/quality_report.py [--subnets 8] [--finetune-epochs 1] [--out outputs/quality_report]
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subnets", type=int, default=8)
    p.add_argument("--finetune-epochs", type=int, default=1)
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--supernet-epochs", type=int, default=6)
    p.add_argument("--out", type=Path, default=Path("outputs/quality_report"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from generator_digits import build_digits_supernet

    from nncf_bootstrapnas.evaluation import quality_report

    supernet, dm, info = build_digits_supernet(supernet_epochs=args.supernet_epochs, seed=args.seed)
    print(f"supernet: {info}")
    t0 = time.perf_counter()
    report = quality_report(
        supernet,
        dm.train_loader(batch_size=64),
        dm.val_loader(batch_size=120),
        num_subnets=args.subnets,
        finetune_epochs=args.finetune_epochs,
        top_k=args.top_k,
        bn_samples=256,
        seed=args.seed,
        out_dir=args.out,
    )
    seconds = time.perf_counter() - t0
    print(f"\nreference: {report.reference}; {len(report.rows)} subnets; report {seconds:.1f} s; files {report.files}")
    print(f"{'signal':<20} {'Kendall':>8} {'Spearman':>9} {'sparse KT':>10} {'top-k':>6}")
    for name, s in report.correlations.items():
        cells = [s["kendall_tau"], s["spearman_rho"], s["sparse_kendall_tau"], s["top_k_overlap"]]
        print(f"{name:<20} " + " ".join(f"{c:>8.3f}" if c == c else f"{'n/a':>8}" for c in cells))
    print(f"\n{'MMACs':>8} {'inherited':>9} {'+BN':>7} {'fine-tuned':>10}")
    for r in report.rows:
        print(
            f"{r['macs'] / 1e6:8.3f} {r['inherited_acc']:9.2f} {r['inherited_bn_acc']:7.2f} {r.get('standalone_acc', float('nan')):10.2f}"
        )
    return {"supernet": info, "report": report.to_json(), "seconds": seconds}


if __name__ == "__main__":
    main()
