"""BN adaptation for a subnet: ours (reset + exact cumulative average) vs ``nncf.batch_norm_adaptation`` (NNCF 3: keeps
the old statistics and the layer's momentum) on the same batches.

A pre-trained model is turned into a super-network; a subnet that skips every skippable block (full widths, so the
pre-trained weights still work) is evaluated with the maximum subnet's statistics, then after each adaptation. Reported: time, validation top-1, and the distance
of the running statistics from the exact ones (ours over the whole training split).

    .venv/bin/python benchmarks/training_bn_adaptation.py [--model resnet18] [--samples 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch
from torch import nn

from nncf_bootstrapnas.data import DigitsDataModule
from nncf_bootstrapnas.elasticity import create_supernet
from nncf_bootstrapnas.evaluation import top1_accuracy as evaluate_accuracy
from nncf_bootstrapnas.models import build_model, pretrain
from nncf_bootstrapnas.training import adapt_batchnorm
from nncf_bootstrapnas.training.bn_adaptation import bn_layers


def _stats(model: nn.Module) -> list[torch.Tensor]:
    return [torch.cat([m.running_mean, m.running_var]).clone() for m in bn_layers(model)]


def _distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Mean relative L1 distance of the running statistics, over the layers."""
    return float(sum(((x - y).abs().sum() / y.abs().sum().clamp_min(1e-8)) for x, y in zip(a, b)) / len(a))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--pretrain-epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import nncf

    dm = DigitsDataModule(image_size=32, channels=3, batch_size=64)
    train, val = dm.train_loader(), dm.val_loader(batch_size=256)
    model, _ = pretrain(build_model(args.model, small=True), train, val, epochs=args.pretrain_epochs)
    options = {"width": {"min_width": 8, "width_multipliers": [1.0, 0.75, 0.5]}}
    sn = create_supernet(model, options, example_input=torch.zeros(1, 3, 32, 32)).eval()
    cfg = sn.search_space.maximum()
    cfg["depth"] = sn.search_space.minimum()["depth"]
    sn.activate(cfg)
    batch = dm.calibration_loader(num_samples=args.samples, batch_size=64)
    start = copy.deepcopy(sn.state_dict())

    exact = copy.deepcopy(sn)
    adapt_batchnorm(exact, dm.train_loader(shuffle=False))
    reference = _stats(exact)
    rows = [{"method": "none (maximum subnet's statistics)", "ms": 0.0, "top1": evaluate_accuracy(sn, val),
             "stat_distance": _distance(_stats(sn), reference)}]  # fmt: skip

    def run(name: str, fn) -> None:  # noqa: ANN001
        sn.load_state_dict(start)
        t = time.perf_counter()
        fn()
        ms = (time.perf_counter() - t) * 1e3
        rows.append({"method": name, "ms": round(ms, 1), "top1": evaluate_accuracy(sn, val),
                     "stat_distance": _distance(_stats(sn), reference)})  # fmt: skip

    run("ours: reset + cumulative average", lambda: adapt_batchnorm(sn, batch, args.samples))
    dataset = nncf.Dataset(batch, lambda b: b[0])
    run("nncf.batch_norm_adaptation", lambda: nncf.batch_norm_adaptation(sn, dataset, num_iterations=len(batch)))
    rows.append({"method": "exact (whole training split)", "ms": None, "top1": evaluate_accuracy(exact, val),
                 "stat_distance": 0.0})  # fmt: skip
    for row in rows:
        print(json.dumps({"model": args.model, "samples": args.samples, **row}))


if __name__ == "__main__":
    main()
