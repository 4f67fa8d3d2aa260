"""The one epoch loop of super-network training, shared by ``fit`` (built-in steps) and the legacy
``EpochBasedTrainingAlgorithm`` (the user's ``train_epoch_fn``).

Per epoch: ``scheduler.epoch_step`` (stage changes), the epoch's training body, validation of the minimum and the
maximum subnet after BN adaptation, best-epoch tracking, checkpoints (``supernet_last.pth``, ``supernet_best.pth``,
rank 0 only) and TensorBoard scalars. A training checkpoint is the supernet artifact (``training.artifact``) plus the
loop state under ``training``: ``controller`` and ``compression`` states, ``optimizer``, ``rng`` (per rank: python,
numpy, torch, cuda), ``epoch`` (the epoch in progress or the next one), ``step_in_epoch`` (batches of ``epoch``
already done; 0 at an epoch boundary), ``step`` (global optimizer steps), ``metrics``, ``best`` and ``config``.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.elasticity.api import create_supernet
from nncf_bootstrapnas.training.artifact import (
    TRAINING_CHECKPOINT,
    SupernetArtifact,
    artifact_data,
    read_artifact,
)
from nncf_bootstrapnas.training.checkpoint import (
    BEST,
    LAST,
    CheckpointError,
    atomic_save,
    check_search_space,
    check_state_dict,
    load_optimizer_state,
    plain,
    rank_rng,
    rng_state,
    set_rng_state,
)
from nncf_bootstrapnas.training.composition import Composition, as_config, compose
from nncf_bootstrapnas.training.contract import is_supernet, max_subnet_copy
from nncf_bootstrapnas.training.distributed import (
    barrier,
    broadcast_module_state,
    gather_objects,
    is_distributed,
    is_main_process,
    rank,
    synchronized,
)
from nncf_bootstrapnas.training.settings import LoopOptions
from nncf_bootstrapnas.training.steps import Criterion, evaluate
from nncf_bootstrapnas.utils.progress import progress

logger = logging.getLogger(__name__)

ValFn = Callable[[nn.Module, Iterable[Any]], Any]
TrainEpoch = Callable[[int, int], "float | None"]  # (epoch, batches to skip) -> mean training loss


@dataclass
class FitResult:
    """What training returns: the trained super-network, its controller and what happened."""

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


# ---- resuming -------------------------------------------------------------------------------------------------------
def read_training_checkpoint(path: str | os.PathLike[str]) -> SupernetArtifact:
    """A training checkpoint (an artifact with loop state); CheckpointError for anything else."""
    artifact = read_artifact(path)
    if artifact.kind != TRAINING_CHECKPOINT or not artifact.training:
        raise CheckpointError(
            f"{path} is a supernet artifact without training state; resume from a training checkpoint ({LAST})"
        )
    missing = [k for k in ("controller", "epoch", "step") if k not in artifact.training]
    if missing:
        raise CheckpointError(f"training checkpoint {path} lacks {', '.join(missing)}")
    return artifact


def resume_composition(model: nn.Module, checkpoint: SupernetArtifact, config: Any = None) -> Composition:
    """Rebuild the composition a training checkpoint was saved from, around ``model`` (the original model or a
    super-network made with the same elasticity config): weights, quantizers and controller counters.

    Raises CheckpointError naming what differs when the checkpoint belongs to another model, elasticity config or
    compression setting.
    """
    config = as_config(config if config is not None else checkpoint.training.get("config") or {})
    if not is_supernet(model):
        saved = {k: v for k, v in checkpoint.weights.items() if "kernel_transform_" not in k}
        check_state_dict(saved, model)  # another architecture first: it also changes the search space
        example = checkpoint.elasticity.get("example_input") or []
        try:
            inputs = tuple(torch.zeros(e["shape"], dtype=getattr(torch, e["dtype"]), device="cpu") for e in example)
        except (KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"the checkpoint's elasticity state has no usable example_input: {exc}") from exc
        fresh = create_supernet(copy.deepcopy(model).cpu(), config, inputs, copy_model=False)  # traced on the CPU
        check_search_space(checkpoint.search_space, fresh)
    quantized = any(e.get("algorithm") == "quantization" for e in config.compression)
    if quantized != (checkpoint.quantization is not None):
        which = "quantized" if checkpoint.quantization is not None else "not quantized"
        raise CheckpointError(f"the checkpoint's super-network is {which}, this one is not; check 'compression'")
    # the distillation teacher is the model as given: the plain original, or the super-network's maximum before the
    # checkpoint's (trained) weights are loaded into it
    teacher = model if not is_supernet(model) else None
    if teacher is None and config.sections.training.distillation is not None:
        teacher = max_subnet_copy(model)
    supernet = checkpoint.build_supernet(model)
    composition = compose(supernet, config, original_model=teacher, with_training=True)
    state = checkpoint.training
    composition.controller.load_state(state["controller"])
    for ctrl, saved_state in zip(composition.compression, state.get("compression") or []):
        ctrl.load_state(saved_state)
    return composition


# ---- validation -----------------------------------------------------------------------------------------------------
def validate_min_max(
    composition: Composition, val_loader: Iterable[Any], val_fn: ValFn | None, criterion: Criterion
) -> dict[str, Any]:
    """Legacy order: the minimum subnet, then the maximum (left active), each after BN adaptation."""
    ctrl, supernet = composition.controller, composition.supernet
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
        logger.info("* Acc@1 %.3f Acc@5 %s of the %s subnet (%d MACs)", acc1, acc5, role, out[role]["macs"])
    if is_distributed():
        broadcast_module_state(supernet)  # BN statistics adapted on every rank: keep rank 0's exactly
    return out


def is_better(record: dict[str, Any], best: dict[str, Any]) -> bool:
    """A later stage always supersedes (legacy: earlier stages trained fewer subnets); within a stage, higher max
    subnet accuracy wins. Without validation the latest epoch is the best."""
    if not best:
        return True
    if record["stage"] != best.get("stage"):
        return record["stage"] > best.get("stage", -1)
    acc, best_acc = record.get("max", {}).get("acc1"), best.get("max_acc1")
    return acc is None or best_acc is None or acc > best_acc


def log_to_tensorboard(writer: Any, record: dict[str, Any]) -> None:
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


def _summary(record: dict[str, Any]) -> str:
    parts = [] if math.isnan(record["train_loss"]) else [f"loss {record['train_loss']:.4f}"]
    parts += [f"{role} acc {record[role]['acc1']:.2f}" for role in ("min", "max") if role in record]
    return " ".join(parts)


# ---- the loop -------------------------------------------------------------------------------------------------------
class EpochLoop:
    """Runs epochs of a composition with an optimizer; ``run(train_epoch)`` calls ``train_epoch(epoch, skip)`` for the
    epoch's training (``skip``: batches already done before a mid-epoch checkpoint) and does everything else."""

    def __init__(
        self,
        composition: Composition,
        optimizer: torch.optim.Optimizer,
        *,
        options: LoopOptions,
        checkpoint_dir: str | Path | None = None,
        val_loader: Iterable[Any] | None = None,
        val_fn: ValFn | None = None,
        criterion: Criterion | None = None,
        show_progress: bool = True,
        tensorboard_writer: Any = None,
        resumed: SupernetArtifact | None = None,
        resume_mid_epoch: bool = True,
    ) -> None:
        self.composition, self.optimizer, self.options = composition, optimizer, options
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.val_loader, self.val_fn = val_loader, val_fn
        self.criterion = criterion or nn.CrossEntropyLoss()
        self.show_progress, self.tensorboard_writer = show_progress, tensorboard_writer
        self.scheduler = composition.controller.scheduler
        self.start_epoch, self.skip = 0, 0
        self.result = FitResult(composition.supernet, composition.controller,
                                compression_controllers=composition.compression)  # fmt: skip
        self.bars: Any = None
        if resumed is not None:
            self._restore(resumed, resume_mid_epoch)

    def _restore(self, checkpoint: SupernetArtifact, mid_epoch: bool) -> None:
        """``mid_epoch`` False (a legacy ``train_epoch_fn`` cannot start mid-way): an interrupted epoch runs again."""
        state = checkpoint.training
        load_optimizer_state(state.get("optimizer"), self.optimizer)
        self.start_epoch = int(state["epoch"])
        self.skip = int(state.get("step_in_epoch", 0)) if mid_epoch else 0
        self.result.best, self.result.resumed_from = dict(state.get("best") or {}), checkpoint.path
        saved = rank_rng(state.get("rng"), rank())
        if saved is not None:
            set_rng_state(saved)

    def save(self, epoch: int, step_in_epoch: int, metrics: dict[str, Any], is_best: bool) -> None:
        """Checkpoint (every rank must call: the RNG states are gathered; rank 0 writes)."""
        rng = gather_objects(rng_state())
        if self.checkpoint_dir is None or not is_main_process():
            return
        comp = self.composition
        training = {
            "controller": plain(comp.controller.get_state()),
            "compression": [plain(c.get_state()) for c in comp.compression],
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "epoch": int(epoch),
            "step_in_epoch": int(step_in_epoch),
            "step": int(self.scheduler.current_step + 1),
            "metrics": plain(metrics),
            "best": plain(self.result.best),
            "config": plain(dict(comp.config)),
        }
        data = artifact_data(comp.supernet, training=training)
        self.result.last_checkpoint = atomic_save(data, self.checkpoint_dir / LAST)
        if is_best:
            self.result.best_checkpoint = atomic_save(data, self.checkpoint_dir / BEST)

    def run(self, train_epoch: TrainEpoch) -> FitResult:
        comp, sched, result = self.composition, self.scheduler, self.result
        total = comp.controller.get_total_num_epochs()
        every = self.options.checkpoint_every_epochs
        with synchronized(comp.model, self.optimizer), progress(self.show_progress and is_main_process()) as bars:
            self.bars = bars
            epochs_bar = bars.add("epochs", total=total, completed=self.start_epoch)
            for epoch in range(self.start_epoch, total):
                if self.skip == 0:
                    sched.epoch_step(epoch)
                stage = sched.current_stage_idx
                epochs_bar.update(info=f"stage {stage + 1}/{len(sched.list_stage_descriptors)}")
                comp.supernet.train()
                loss = train_epoch(epoch, self.skip)
                self.skip = 0
                record: dict[str, Any] = {"epoch": epoch, "stage": stage,
                                          "train_loss": float("nan") if loss is None else float(loss),
                                          "lr": self.optimizer.param_groups[0]["lr"]}  # fmt: skip
                if self.val_loader is not None:
                    record.update(validate_min_max(comp, self.val_loader, self.val_fn, self.criterion))
                    record["acc1"], record["min_subnet_acc1"] = record["max"]["acc1"], record["min"]["acc1"]
                record["statistics"] = comp.statistics()
                result.history.append(record)
                scheduled = bool(every) and (epoch + 1) % every == 0 or epoch + 1 == total
                # Without validation there is no accuracy to rank: the best checkpoint is the latest one written.
                best = is_better(record, result.best) if self.val_loader is not None else scheduled
                if best:
                    result.best = {"epoch": epoch, "stage": stage, "max_acc1": record.get("max", {}).get("acc1")}
                epochs_bar.update(completed=epoch + 1, info=_summary(record))
                log_to_tensorboard(self.tensorboard_writer, record)
                if scheduled or best:
                    self.save(epoch + 1, 0, record, best)
        self.bars = None
        barrier()
        return result
