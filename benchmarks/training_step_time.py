"""Training-step cost of progressive shrinking: one step of the plain model vs the super-network with ``single``
(one random subnet) and ``sandwich`` (max + min + 2 random subnets, gradients accumulated, one optimizer step).

Same data (digits, 32x32, batch 32), same optimizer (SGD momentum), torch eager on CPU; medians over interleaved
repeats so machine-load drift affects every variant alike.

    .venv/bin/python benchmarks/training_step_time.py [--model resnet18] [--batch 32] [--repeats 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from nncf_bootstrapnas.data import DigitsDataModule
from nncf_bootstrapnas.models import build_model
from nncf_bootstrapnas.training import compose
from nncf_bootstrapnas.training.steps import train_step

ELASTICITY = {"width": {"min_width": 8, "width_multipliers": [1.0, 0.75, 0.5]}}


def _config(strategy: str) -> dict:
    training = {
        "elasticity": ELASTICITY,
        "progressivity_of_elasticity": ["kernel", "width", "depth"],
        "schedule": {"list_stage_descriptions": [{"train_dims": ["kernel", "width", "depth"], "width_indicator": 3}]},
        "lr_schedule": {"params": {"base_lr": 0.01}},
        "sampling": {"strategy": strategy, "num_random": 2},
    }
    return {"input_info": {"sample_size": [1, 3, 32, 32]}, "bootstrapNAS": {"training": training}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--small", action="store_true", help="the test-size variant of the model")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dm = DigitsDataModule(image_size=32, channels=3, batch_size=args.batch)
    batches = [b for _, b in zip(range(args.repeats + 3), dm.train_loader())]

    plain = build_model(args.model, small=args.small)
    plain_opt = torch.optim.SGD(plain.parameters(), lr=0.01, momentum=0.9)

    def plain_step(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        plain_opt.zero_grad(set_to_none=True)
        F.cross_entropy(plain(batch[0]), batch[1]).backward()
        plain_opt.step()

    steps = {"plain model": plain_step}
    for strategy in ("single", "sandwich"):
        session = compose(build_model(args.model, small=args.small), _config(strategy), with_training=True)
        ctrl = session.controller
        ctrl.auto_activate = False
        opt = torch.optim.SGD(session.model.parameters(), lr=0.01, momentum=0.9)
        ctrl.set_training_lr_scheduler_args(opt, len(batches))
        ctrl.scheduler.epoch_step(0)
        session.model.train()

        def step(batch, session=session, ctrl=ctrl, opt=opt):  # noqa: ANN001, ANN202
            ctrl.scheduler.step()
            train_step(session, batch, ctrl.scheduler.current_step, F.cross_entropy, opt, torch.device("cpu"))

        steps[f"supernet {strategy}"] = step
    plain.train()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i, batch in enumerate(batches):
        for name, fn in steps.items():
            t = time.perf_counter()
            fn(batch)
            if i >= 3:  # warm-up
                times[name].append(time.perf_counter() - t)
    base = statistics.median(times["plain model"])
    for name, values in times.items():
        med = statistics.median(values)
        row = {"variant": name, "median_ms": round(med * 1e3, 2), "vs_plain": round(med / base, 2)}
        print(json.dumps({"model": args.model, "batch": args.batch, "threads": args.threads, **row}))


if __name__ == "__main__":
    main()
