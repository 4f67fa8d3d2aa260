"""A legacy NNCF 2.x BootstrapNAS training script, ported by changing its imports.

Pre-trains a model on the digits set, converts it into a super-network with INT8 quantization-aware training
(top-level ``compression``), trains it with progressive shrinking through the legacy ``EpochBasedTrainingAlgorithm``
and its ``train_epoch_fn`` / ``val_fn`` callbacks, and leaves ``supernet_last.pth`` / ``supernet_best.pth``::

    python -m examples.legacy_train --out outputs/legacy            # a few minutes on CPU
    python -m examples.legacy_train --out outputs/legacy --resume   # continue from supernet_last.pth

Where a legacy script had ``from nncf.experimental.torch.nas.bootstrapNAS import EpochBasedTrainingAlgorithm`` and
``NNCFConfig.from_json``, this one imports them from ``nncf_bootstrapnas``; the loop below is the legacy one.
"""

from __future__ import annotations

import argparse
import copy
import logging
from pathlib import Path

import torch
from torch import nn

from nncf_bootstrapnas import EpochBasedTrainingAlgorithm, load_config
from nncf_bootstrapnas.data import DigitsDataModule
from nncf_bootstrapnas.evaluation import top1_accuracy
from nncf_bootstrapnas.models import build_model, pretrain

CONFIG = {
    "input_info": {"sample_size": [1, 3, 32, 32]},
    "bootstrapNAS": {
        "training": {
            "algorithm": "progressive_shrinking",
            "progressivity_of_elasticity": ["kernel", "width", "depth"],
            "batchnorm_adaptation": {"num_bn_adaptation_samples": 256},
            "schedule": {
                "list_stage_descriptions": [
                    {"train_dims": ["kernel", "width"], "epochs": 1, "width_indicator": 2, "init_lr": 0.01},
                    {
                        "train_dims": ["kernel", "width"],
                        "epochs": 1,
                        "width_indicator": 3,
                        "reorg_weights": True,
                        "bn_adapt": True,
                        "init_lr": 0.005,
                    },
                    {
                        "train_dims": ["kernel", "width", "depth"],
                        "epochs": 1,
                        "width_indicator": 3,
                        "depth_indicator": 1,
                        "bn_adapt": True,
                        "init_lr": 0.005,
                    },
                ]
            },  # fmt: skip
            "elasticity": {"width": {"min_width": 8, "width_multipliers": [1.0, 0.75, 0.5]}},
            "sampling": {"strategy": "single"},  # legacy behaviour: one random subnet per step
            "compression": [{"algorithm": "knowledge_distillation", "type": "softmax", "temperature": 2.0}],
            "seed": 0,
        }
    },
    "compression": [{"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 128}}}],
}


def accuracy(output: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...] = (1,)) -> list[float]:
    """Legacy helper: top-k accuracies in percent."""
    with torch.no_grad():
        top = output.topk(max(topk), 1, True, True).indices.t()
        correct = top.eq(target.view(1, -1).expand_as(top))
        return [float(correct[:k].reshape(-1).float().sum()) * 100.0 / target.size(0) for k in topk]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=None, help="steps per epoch (legacy --train-steps)")
    parser.add_argument("--out", default="outputs/legacy")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    dm = DigitsDataModule(image_size=32, channels=3, batch_size=64, seed=0)
    train_loader, val_loader = dm.train_loader(), dm.val_loader(batch_size=256)
    model = build_model(args.model, small=True)
    pretrained = out / "pretrained.pth"
    if pretrained.is_file():
        model.load_state_dict(torch.load(pretrained, weights_only=True))
    else:
        model, acc = pretrain(model, train_loader, val_loader, epochs=args.pretrain_epochs)
        torch.save(model.state_dict(), pretrained)
        print(f"pre-trained {args.model}: {acc:.2f}% top-1")

    config = copy.deepcopy(CONFIG)
    if args.train_steps:
        config["bootstrapNAS"]["training"]["train_steps"] = args.train_steps
    nncf_config = load_config(config)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=3e-5)

    # ---- the legacy callbacks, unchanged -----------------------------------------------------------------------------
    def train_epoch_fn(loader, model_, compression_ctrl, epoch, optimizer_):  # noqa: ANN001
        model_.train()
        for i, (input_, target) in enumerate(loader):
            compression_ctrl.scheduler.step()
            output = model_(input_)
            loss = criterion(output, target) + compression_ctrl.loss()
            optimizer_.zero_grad()
            loss.backward()
            optimizer_.step()
            if args.train_steps and i + 1 >= args.train_steps:
                break

    def validate_model_fn(model_, loader):  # noqa: ANN001
        model_.eval()
        top1 = top5 = loss = 0.0
        n = 0
        with torch.no_grad():
            for input_, target in loader:
                output = model_(input_)
                a1, a5 = accuracy(output, target, topk=(1, 5))
                top1, top5 = top1 + a1 * len(target), top5 + a5 * len(target)
                loss, n = loss + float(criterion(output, target)) * len(target), n + len(target)
        return top1 / n, top5 / n, loss / n

    last = out / "supernet_last.pth"
    if args.resume and last.is_file():
        training_algorithm = EpochBasedTrainingAlgorithm.from_checkpoint(model, last)
    else:
        training_algorithm = EpochBasedTrainingAlgorithm.from_config(model, nncf_config)
    supernet, elasticity_ctrl = training_algorithm.run(
        train_epoch_fn, train_loader, validate_model_fn, val_loader, optimizer, str(out), None, args.train_steps
    )

    handler = elasticity_ctrl.multi_elasticity_handler
    for name, activate in (("maximal", handler.activate_maximum_subnet), ("minimal", handler.activate_minimum_subnet)):
        activate()
        elasticity_ctrl.prepare_for_validation()
        macs = handler.count_flops_and_weights_for_active_subnet()[0] / 2_000_000
        print(f"{name} subnet: top-1 {top1_accuracy(supernet, val_loader):.2f}%, {macs:.2f} MMACs (INT8 QAT)")
    print(f"checkpoints: {last}, {out / 'supernet_best.pth'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
