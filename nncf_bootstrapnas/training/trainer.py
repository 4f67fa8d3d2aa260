"""``fit``: progressive shrinking with the built-in training step (stages, sandwich sampling, validation,
checkpoints, resume, torchrun).

Resume granularity: a checkpoint is written at the end of every ``checkpoint_every_epochs`` epochs and, optionally,
every ``checkpoint_every_steps`` steps inside an epoch (both in ``bootstrapNAS.training``). Data order
(``ResumableSampler``: seeded per epoch), subnet sampling (seeded per step), learning rate (a function of the counters)
and RNG states are all restored, so a run killed at any moment and resumed ends with the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.training.bn_adaptation import split_batch
from nncf_bootstrapnas.training.checkpoint import LAST
from nncf_bootstrapnas.training.composition import Composition, as_config, compose, rebind_optimizer
from nncf_bootstrapnas.training.contract import model_device
from nncf_bootstrapnas.training.distributed import fixed_order, make_resumable, rank, world_size
from nncf_bootstrapnas.training.loop import (
    EpochLoop,
    FitResult,
    ValFn,
    read_training_checkpoint,
    resume_composition,
)
from nncf_bootstrapnas.training.settings import LoopOptions
from nncf_bootstrapnas.training.steps import Criterion, take, train_step

logger = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """What ``fit`` trains with.

    ``train``: ``(inputs, targets)`` batches; a map-style DataLoader is rebuilt over a seeded, resumable, rank-aware
    sampler (its batch size is per process under torchrun). ``val``: validated after every epoch on the minimum and
    maximum subnets. ``bn`` / ``calibration``: data for BN adaptation and quantization ranges (default: the training
    data in a fixed seeded order, the same on every run and rank). ``example_input``: for tracing the model (default:
    the config's ``input_info``, else one sample of ``train``).
    """

    train: Iterable[Any]
    val: Iterable[Any] | None = None
    bn: Iterable[Any] | None = None
    calibration: Iterable[Any] | None = None
    example_input: Any = None


def fit(
    model: nn.Module,
    data: TrainingData,
    config: Any = None,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    val_fn: ValFn | None = None,
    criterion: Criterion | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool | str | Path = False,
    progress: bool = True,
    tensorboard_writer: Any = None,
) -> FitResult:
    """Train a super-network with progressive shrinking; the model stays on its device (CPU or CUDA).

    Args:
        model: a pre-trained model (turned into a super-network, quantized when the config's top-level
            ``compression`` asks for it) or a super-network.
        data: the loaders (:class:`TrainingData`).
        config: Config, dict or path; its ``bootstrapNAS.training`` section holds the schedule and the loop options
            (``epochs`` rescales the schedule, ``checkpoint_every_epochs``, ``checkpoint_every_steps``, ``seed``).
            None: the checkpoint's config when resuming, else the schema defaults with a global cosine learning rate
            from ``optimizer``'s rate (or 0.01).
        optimizer: default SGD (momentum 0.9, nesterov); its rate follows the config's schedule.
        val_fn: ``val_fn(model, loader)`` returns acc1 or (acc1, acc5, loss); default: top-1/top-5/loss.
        criterion: task loss (default cross-entropy).
        checkpoint_dir: ``supernet_last.pth`` / ``supernet_best.pth`` (training checkpoints) go there (rank 0 only).
        resume: True resumes from ``checkpoint_dir/supernet_last.pth`` if it exists; a path resumes from that file.
        progress: rich progress bars (rank 0). tensorboard_writer: a SummaryWriter for per-epoch scalars.
    """
    resume_path = _resume_path(resume, checkpoint_dir)
    checkpoint = read_training_checkpoint(resume_path) if resume_path is not None else None
    if config is None:
        config = checkpoint.training.get("config") if checkpoint is not None else _default_config(optimizer)
    config = as_config(config)
    options = LoopOptions.from_config(config)
    ordered = fixed_order(data.train, options.seed)  # same batches on every run and rank
    if checkpoint is None:
        example = data.example_input
        if example is None and not config.input_info:
            example = _first_inputs(data.train)
        calibration = data.calibration if data.calibration is not None else ordered
        composition = compose(model, config, example_input=example, calibration_data=calibration, with_training=True)
        if options.epochs is not None:
            _scale_stages(composition, options.epochs)
    else:
        composition = resume_composition(model, checkpoint, config)
    ctrl = composition.controller
    ctrl.auto_activate = False  # the built-in step activates each of the step's subnets itself
    ctrl.set_bn_adaptation_data(data.bn if data.bn is not None else ordered)
    resumable = make_resumable(data.train, options.seed, world_size(), rank())
    if resumable is None:
        logger.warning("the training loader cannot be rebuilt (custom sampler or iterable dataset): resume is exact "
                       "only if the loader itself is deterministic per epoch")  # fmt: skip
    epoch_batches = len(resumable) if resumable is not None else len(data.train)  # type: ignore[arg-type]
    steps_per_epoch = min(epoch_batches, ctrl.settings.train_steps or epoch_batches)
    if checkpoint is not None:
        saved = checkpoint.training["controller"]["scheduler"].get("steps_per_epoch")
        if saved not in (None, steps_per_epoch):
            raise ValueError(
                f"the checkpoint was trained with {saved} steps per epoch, this loader gives {steps_per_epoch}; "
                "resume with the same data, batch size and world size"
            )
    if optimizer is None:
        optimizer = _default_optimizer(composition)
    else:
        rebind_optimizer(optimizer, model, composition.model)
    ctrl.set_training_lr_scheduler_args(optimizer, steps_per_epoch)
    loop = EpochLoop(composition, optimizer, options=options, checkpoint_dir=checkpoint_dir, val_loader=data.val,
                     val_fn=val_fn, criterion=criterion, show_progress=progress,
                     tensorboard_writer=tensorboard_writer, resumed=checkpoint)  # fmt: skip
    device = model_device(composition.model)
    criterion = loop.criterion
    every_steps = options.checkpoint_every_steps

    def train_epoch(epoch: int, skip: int) -> float:
        batches = resumable.epoch(epoch, skip) if resumable is not None else iter(data.train)
        sampler = getattr(data.train, "sampler", None)
        if resumable is None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)  # type: ignore[union-attr]
        bar = loop.bars.add(f"epoch {epoch + 1}/{ctrl.get_total_num_epochs()}", total=steps_per_epoch, completed=skip)
        loss_sum, n = 0.0, 0
        for i, batch in take(batches, steps_per_epoch - skip):
            ctrl.scheduler.step()
            stats = train_step(composition, batch, ctrl.scheduler.current_step, criterion, optimizer, device)
            loss_sum, n = loss_sum + stats["loss"], n + 1
            bar.advance(info=f"loss {stats['loss']:.4f} lr {optimizer.param_groups[0]['lr']:.2e}")
            done = skip + i + 1
            if every_steps and done % every_steps == 0 and done < steps_per_epoch:
                loop.save(epoch, done, {"epoch": epoch, "step_in_epoch": done}, False)
        bar.remove()
        return loss_sum / max(1, n)

    return loop.run(train_epoch)


def _resume_path(resume: bool | str | Path, checkpoint_dir: str | Path | None) -> Path | None:
    if not resume:
        return None
    if not isinstance(resume, bool):
        return Path(resume)
    if checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir (or pass the checkpoint path as resume=...)")
    path = Path(checkpoint_dir) / LAST
    return path if path.is_file() else None  # nothing to resume yet: start fresh


def _scale_stages(composition: Composition, epochs: int) -> None:
    """Spread ``epochs`` over the stages in proportion to their configured lengths (each keeps at least one)."""
    stages = composition.controller.scheduler.list_stage_descriptors
    if epochs < len(stages):
        raise ValueError(
            f"epochs={epochs} is fewer than the {len(stages)} stages of the schedule; give at least one each"
        )
    total = sum(s.epochs for s in stages)
    shares = [max(1, int(epochs * s.epochs / total)) for s in stages]
    i = len(shares) - 1
    while sum(shares) != epochs:  # hand out / take back the rounding remainder from the last stages
        if sum(shares) < epochs:
            shares[i] += 1
        elif shares[i] > 1:
            shares[i] -= 1
        i = (i - 1) % len(shares)
    for stage, n in zip(stages, shares):
        stage.epochs = n
        if stage.epochs_lr is not None:
            stage.epochs_lr = n


def _default_optimizer(composition: Composition) -> torch.optim.Optimizer:
    sched = composition.controller.scheduler
    lr = sched.global_lr.base_lr if sched.global_lr is not None else sched.list_stage_descriptors[0].init_lr or 1e-3
    params = [p for p in composition.model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=3e-5)


def _default_config(optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Schema defaults (legacy five-stage schedule), but a global cosine from the optimizer's rate (or 0.01): the
    legacy per-stage default of 3.5e-6 is meant for fine-tuning ImageNet models and barely moves small ones."""
    base_lr = float(optimizer.param_groups[0]["lr"]) if optimizer is not None else 0.01
    return {"bootstrapNAS": {"training": {"lr_schedule": {"params": {"base_lr": base_lr}}}}}


def _first_inputs(loader: Iterable[Any]) -> tuple[torch.Tensor, ...]:
    """One sample of the first batch: the example input for tracing when the config has no input_info."""
    args, _ = split_batch(next(iter(loader)))
    return tuple(a[:1] if isinstance(a, torch.Tensor) else a for a in args)


__all__ = ["FitResult", "TrainingData", "fit"]
