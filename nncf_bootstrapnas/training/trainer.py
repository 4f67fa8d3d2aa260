"""``fit``: the built-in progressive-shrinking loop (stages, sandwich sampling, validation, checkpoints, resume, DDP).

Resume granularity: a checkpoint is written at the end of every epoch (``checkpoint_every_epochs``) and, optionally,
every ``checkpoint_every_steps`` steps inside an epoch. Data order (``ResumableSampler``: seeded per epoch), subnet
sampling (seeded per step), learning rate (a function of the counters) and RNG states are all restored, so a run
killed at any moment and resumed ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.training.checkpoint import (
    BEST,
    LAST,
    atomic_save,
    load_optimizer_state,
    rank_rng,
    read_checkpoint,
    rng_state,
    set_rng_state,
)
from nncf_bootstrapnas.training.distributed import (
    ResumableLoader,
    ResumableSampler,
    barrier,
    broadcast_module_state,
    gather_objects,
    is_distributed,
    is_main_process,
    make_resumable,
    rank,
    world_size,
    wrap_ddp,
)
from nncf_bootstrapnas.training.session import (
    TrainingSession,
    build_session,
    normalize_config,
    rebind_optimizer,
    resume_session,
)
from nncf_bootstrapnas.training.steps import Criterion, Progress, evaluate, take, train_step

logger = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What ``fit`` returns: the trained super-network, its controller and what happened."""

    supernet: nn.Module
    controller: Any
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    last_checkpoint: Path | None = None
    best_checkpoint: Path | None = None
    resumed_from: Path | None = None
    compression_controllers: list[Any] = field(default_factory=list)

    @property
    def epochs_run(self) -> int:
        return len(self.history)


def _scale_stages(session: TrainingSession, epochs: int) -> None:
    """Spread ``epochs`` over the stages in proportion to their configured lengths (each keeps at least one)."""
    stages = session.controller.scheduler.list_stage_descriptors
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


def _default_optimizer(model: nn.Module, session: TrainingSession) -> torch.optim.Optimizer:
    sched = session.controller.scheduler
    lr = sched.global_lr.base_lr if sched.global_lr is not None else sched.list_stage_descriptors[0].init_lr or 1e-3
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=3e-5)


def _default_config(optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Schema defaults (legacy five-stage schedule), but a global cosine from the optimizer's rate (or 0.01): the
    legacy per-stage default of 3.5e-6 is meant for fine-tuning ImageNet models and barely moves small ones."""
    base_lr = float(optimizer.param_groups[0]["lr"]) if optimizer is not None else 0.01
    return {"bootstrapNAS": {"training": {"lr_schedule": {"params": {"base_lr": base_lr}}}}}


def _first_inputs(loader: Iterable[Any]) -> tuple[torch.Tensor, ...]:
    """One sample of the first batch: the example input for tracing when the config has no input_info."""
    from nncf_bootstrapnas.training.bn_adaptation import split_batch

    args, _ = split_batch(next(iter(loader)))
    return tuple(a[:1] if isinstance(a, torch.Tensor) else a for a in args)


def _bn_loader(loader: Any, seed: int) -> Iterable[Any]:
    """A fixed, shuffled order of the training set for BN adaptation: the same batches every time, on every rank."""
    resumable = make_resumable(loader, seed + 7919, 1, 0)
    if resumable is None:
        return loader
    resumable.sampler.shuffle = True
    resumable.sampler.set_epoch(0)
    return resumable.loader


def fit(
    supernet_or_model: nn.Module,
    train_loader: Iterable[Any],
    val_loader: Iterable[Any] | None = None,
    config: Any = None,
    epochs: int | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool | str | Path = False,
    *,
    criterion: Criterion | None = None,
    val_fn: Callable[[nn.Module, Iterable[Any]], Any] | None = None,
    example_input: Any = None,
    bn_loader: Iterable[Any] | None = None,
    calibration_loader: Iterable[Any] | None = None,
    checkpoint_every_steps: int | None = None,
    progress: bool = True,
    tensorboard_writer: Any = None,
) -> FitResult:
    """Train a super-network with progressive shrinking.

    Args:
        supernet_or_model: a pre-trained model (turned into a super-network, quantized when the config's top-level
            ``compression`` asks for it) or a super-network.
        train_loader: ``(inputs, targets)`` batches; a map-style DataLoader is rebuilt over a seeded, resumable,
            rank-aware sampler (its batch size is per process under torchrun).
        val_loader: validated after every epoch on the minimum and maximum subnets, after BN adaptation.
        config: Config, dict or path. None: the checkpoint's config when resuming, else the schema defaults with a
            global cosine learning rate from ``optimizer``'s rate (or 0.01). ``epochs`` rescales the schedule.
        example_input: for tracing the model; default: the config's input_info, else one sample of train_loader.
        optimizer: default SGD (momentum 0.9, nesterov); its rate follows the config's schedule.
        checkpoint_dir: ``supernet_last.pth`` / ``supernet_best.pth`` go there (rank 0 only).
        resume: True resumes from ``checkpoint_dir/supernet_last.pth`` if it exists; a path resumes from that file.
        criterion: task loss (default cross-entropy). ``val_fn(model, loader)`` returns acc1 or (acc1, acc5, loss).
        bn_loader / calibration_loader: data for BN adaptation and quantization ranges (default: the training data in
            a fixed seeded order, the same on every run and rank).
        checkpoint_every_steps: also checkpoint inside epochs, every that many steps.
    """
    criterion = criterion or nn.CrossEntropyLoss()
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    resume_path = None
    if resume:
        resume_path = Path(resume) if not isinstance(resume, bool) else (ckpt_dir / LAST if ckpt_dir else None)
        if resume_path is None:
            raise ValueError("resume=True needs checkpoint_dir (or pass the checkpoint path as resume=...)")
        if isinstance(resume, bool) and not resume_path.is_file():
            resume_path = None  # nothing to resume yet: start fresh
    ckpt = read_checkpoint(resume_path) if resume_path is not None else None
    if config is None:
        config = ckpt["training_config"] if ckpt is not None else _default_config(optimizer)
    config = normalize_config(config)
    if example_input is None and not config.input_info:
        example_input = _first_inputs(train_loader)

    training_seed = int(config.bootstrapnas_training.get("seed", 0))
    fixed_order = _bn_loader(train_loader, training_seed)  # same batches on every run and rank
    calibration = calibration_loader if calibration_loader is not None else fixed_order
    if ckpt is None:
        session = build_session(supernet_or_model, config, example_input, calibration)
        if epochs is not None:
            _scale_stages(session, epochs)
    else:
        session = resume_session(supernet_or_model, ckpt, config)
    ctrl, supernet = session.controller, session.supernet
    ctrl.auto_activate = False
    device = next((p.device for p in supernet.parameters()), torch.device("cpu"))

    resumable = make_resumable(train_loader, training_seed, world_size(), rank())
    if resumable is None:
        logger.warning("train_loader cannot be rebuilt (custom sampler or iterable dataset): resume is exact only if "
                       "the loader itself is deterministic per epoch")  # fmt: skip
    epoch_batches = len(resumable) if resumable is not None else len(train_loader)  # type: ignore[arg-type]
    settings = ctrl.settings
    steps_per_epoch = min(epoch_batches, settings.train_steps or epoch_batches)
    ctrl.set_bn_adaptation_data(bn_loader if bn_loader is not None else fixed_order)

    if optimizer is None:
        optimizer = _default_optimizer(session.model, session)
    else:
        rebind_optimizer(optimizer, supernet_or_model, session.model)
    ctrl.set_training_lr_scheduler_args(optimizer, steps_per_epoch)
    start_epoch, skip = 0, 0
    best: dict[str, Any] = {}
    if ckpt is not None:
        load_optimizer_state(ckpt, optimizer)
        start_epoch, skip, best = int(ckpt["epoch"]), int(ckpt["step_in_epoch"]), dict(ckpt.get("best") or {})
        if ckpt["controller"]["scheduler"].get("steps_per_epoch") not in (None, steps_per_epoch):
            raise ValueError(
                f"the checkpoint was trained with {ckpt['controller']['scheduler']['steps_per_epoch']} steps per epoch, "
                f"this loader gives {steps_per_epoch}; resume with the same data, batch size and world size"
            )
        state = rank_rng(ckpt, rank())
        if state is not None:
            set_rng_state(state)
    forward = wrap_ddp(session.model)
    total_epochs = ctrl.get_total_num_epochs()
    every_epochs = int(config.bootstrapnas_training.get("checkpoint_every_epochs", 1))
    result = FitResult(supernet, ctrl, best=best, resumed_from=resume_path, compression_controllers=session.compression)
    sched = ctrl.scheduler

    def save(epoch: int, step_in_epoch: int, metrics: dict[str, Any], is_best: bool) -> None:
        rng = gather_objects(rng_state())
        if ckpt_dir is None or not is_main_process():
            return
        data = session.checkpoint(optimizer, rng=rng, epoch=epoch, step_in_epoch=step_in_epoch,
                                  step=sched.current_step + 1, metrics=metrics, best=result.best)  # fmt: skip
        result.last_checkpoint = atomic_save(data, ckpt_dir / LAST)
        if is_best:
            result.best_checkpoint = atomic_save(data, ckpt_dir / BEST)

    with Progress(progress, total_epochs) as bars:
        for epoch in range(start_epoch, total_epochs):
            if skip == 0:
                sched.epoch_step(epoch)
            stage = sched.current_stage_idx
            batches = resumable.epoch(epoch, skip) if resumable is not None else iter(train_loader)
            if resumable is None and hasattr(getattr(train_loader, "sampler", None), "set_epoch"):
                train_loader.sampler.set_epoch(epoch)  # type: ignore[union-attr]
            bars.start_epoch(epoch, stage, len(sched.list_stage_descriptors), steps_per_epoch, skip)
            started, loss_sum, n = time.perf_counter(), 0.0, 0
            supernet.train()
            for i, batch in take(batches, steps_per_epoch - skip):
                sched.step()
                stats = train_step(session, forward, batch, sched.current_step, criterion, optimizer, device)
                loss_sum, n = loss_sum + stats["loss"], n + 1
                bars.advance(f"loss {stats['loss']:.4f} lr {optimizer.param_groups[0]['lr']:.2e}")
                done = skip + i + 1
                if checkpoint_every_steps and done % checkpoint_every_steps == 0 and done < steps_per_epoch:
                    save(epoch, done, {"epoch": epoch, "step_in_epoch": done}, False)
            skip = 0
            record = {"epoch": epoch, "stage": stage, "train_loss": loss_sum / max(1, n),
                      "lr": optimizer.param_groups[0]["lr"], "time_s": time.perf_counter() - started}  # fmt: skip
            if val_loader is not None:
                record.update(validate_min_max(session, val_loader, val_fn, criterion))
            record["statistics"] = session.statistics()
            result.history.append(record)
            scheduled = bool(every_epochs) and (epoch + 1) % every_epochs == 0 or epoch + 1 == total_epochs
            # Without validation there is no accuracy to rank: the best checkpoint is the latest one written.
            is_best = _is_better(record, result.best) if val_loader is not None else scheduled
            if is_best:
                result.best = {"epoch": epoch, "stage": stage, "max_acc1": record.get("max", {}).get("acc1")}
            bars.end_epoch(epoch, _summary(record))
            _log(tensorboard_writer, record)
            if scheduled or is_best:
                save(epoch + 1, 0, record, is_best)
    barrier()
    return result


def validate_min_max(
    session: TrainingSession, val_loader: Iterable[Any], val_fn: Callable[..., Any] | None, criterion: Criterion
) -> dict[str, Any]:
    """Legacy order: the minimum subnet, then the maximum (left active), each after BN adaptation."""
    ctrl, supernet = session.controller, session.supernet
    out: dict[str, Any] = {}
    for role in ("min", "max"):
        space = supernet.stage_space
        supernet.activate(space.minimum() if role == "min" else space.maximum())
        ctrl.prepare_for_validation()
        value = val_fn(supernet, val_loader) if val_fn is not None else evaluate(supernet, val_loader, criterion)
        acc1, acc5, loss = (
            (tuple(value) + (None, None))[:3] if isinstance(value, (tuple, list)) else (value, None, None)
        )
        out[role] = {"acc1": float(acc1), "acc5": None if acc5 is None else float(acc5),
                     "loss": None if loss is None else float(loss), "macs": ctrl.macs(supernet.active_config)}  # fmt: skip
    if is_distributed():
        broadcast_module_state(supernet)  # BN statistics adapted on every rank: keep rank 0's exactly
    return out


def _is_better(record: dict[str, Any], best: dict[str, Any]) -> bool:
    """A later stage always supersedes (legacy: earlier stages trained fewer subnets); within a stage, higher max
    subnet accuracy wins. Without validation the latest epoch is the best."""
    if not best:
        return True
    if record["stage"] != best.get("stage"):
        return record["stage"] > best.get("stage", -1)
    acc, best_acc = record.get("max", {}).get("acc1"), best.get("max_acc1")
    return acc is None or best_acc is None or acc > best_acc


def _summary(record: dict[str, Any]) -> str:
    parts = [f"loss {record['train_loss']:.4f}"]
    for role in ("min", "max"):
        if role in record:
            parts.append(f"{role} acc {record[role]['acc1']:.2f}")
    return " ".join(parts)


def _log(writer: Any, record: dict[str, Any]) -> None:
    if writer is None or not is_main_process():
        return
    epoch = record["epoch"]
    writer.add_scalar("train/loss", record["train_loss"], epoch)
    writer.add_scalar("train/learning_rate", record["lr"], epoch)
    for role in ("min", "max"):
        for key in ("acc1", "acc5", "loss"):
            value = record.get(role, {}).get(key)
            if value is not None:
                writer.add_scalar(f"val/{role}_subnet_{key}", value, epoch)


__all__ = ["FitResult", "fit", "validate_min_max", "ResumableLoader", "ResumableSampler"]
