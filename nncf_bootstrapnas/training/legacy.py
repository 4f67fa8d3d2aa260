"""NNCF 2.x ``EpochBasedTrainingAlgorithm`` facade: a legacy BootstrapNAS script ports by changing its imports.

The callbacks keep the legacy signatures: ``train_epoch_fn(loader, model, compression_ctrl, epoch, optimizer)`` calls
``compression_ctrl.scheduler.step()`` before each batch (which activates the step's subnet) and adds
``compression_ctrl.loss()`` to its loss; ``val_fn(model, loader) -> (acc1, acc5, loss)``. Because the callback owns the
forward pass, each step trains one subnet: ``single`` draws a random one, ``sandwich`` cycles max, min and random
subnets across steps (the built-in :func:`fit` accumulates them within one step instead).
Under torchrun the model handed to ``train_epoch_fn`` is ``DistributedDataParallel(find_unused_parameters=True)``:
one forward per backward, so DDP's unused-parameter detection is exact here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
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
from nncf_bootstrapnas.training.controller import ProgressiveShrinkingController
from nncf_bootstrapnas.training.distributed import gather_objects, is_distributed, is_main_process
from nncf_bootstrapnas.training.session import (
    TrainingSession,
    build_session,
    normalize_config,
    rebind_optimizer,
    resume_session,
)
from nncf_bootstrapnas.training.trainer import _bn_loader, _is_better, _log, validate_min_max

logger = logging.getLogger(__name__)

TrainEpochFn = Callable[[Iterable[Any], nn.Module, ProgressiveShrinkingController, int, torch.optim.Optimizer], None]
ValFn = Callable[[nn.Module, Iterable[Any]], tuple[float, float, float]]


class EpochBasedTrainingAlgorithm:
    """Trains a super-network with a user train-epoch function (legacy API)."""

    def __init__(
        self,
        model: nn.Module,
        config: Any = None,
        checkpoint: dict[str, Any] | None = None,
        bn_loader: Iterable[Any] | None = None,
    ) -> None:
        self._original = model
        self._config = normalize_config(config)
        self._checkpoint = checkpoint
        self._bn_loader = bn_loader
        self._session: TrainingSession | None = None
        if checkpoint is not None:
            self._session = resume_session(model, checkpoint, checkpoint.get("training_config") or self._config)

    # ---- construction (legacy names) --------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, model: nn.Module, config: Any) -> EpochBasedTrainingAlgorithm:
        """The super-network is built on first use, so that ``run`` can calibrate quantization on its train_loader."""
        return cls(model, config)

    @classmethod
    def from_checkpoint(
        cls, model: nn.Module, bn_adapt_args_or_path: Any, resuming_checkpoint_path: str | Path | None = None
    ) -> EpochBasedTrainingAlgorithm:
        """``from_checkpoint(model, path)`` or the legacy ``from_checkpoint(model, bn_adapt_args, path)``; the
        config stored in the checkpoint is used."""
        if resuming_checkpoint_path is None:
            path, bn_loader = bn_adapt_args_or_path, None
        else:
            path, bn_loader = resuming_checkpoint_path, getattr(bn_adapt_args_or_path, "data_loader", None)
        ckpt = read_checkpoint(path)
        return cls(model, ckpt.get("training_config") or {}, checkpoint=ckpt, bn_loader=bn_loader)

    def _ensure_session(self, calibration: Iterable[Any] | None = None) -> TrainingSession:
        if self._session is None:
            self._session = build_session(self._original, self._config, calibration_data=calibration)
        return self._session

    @property
    def training_ctrl(self) -> ProgressiveShrinkingController:
        return self._ensure_session().controller

    @property
    def elasticity_ctrl(self) -> ProgressiveShrinkingController:
        """Legacy name; the controller owns the super-network and its ``multi_elasticity_handler``."""
        return self.training_ctrl

    @property
    def model(self) -> nn.Module:
        return self._ensure_session().model

    # ---- training ---------------------------------------------------------------------------------------------------
    def run(
        self,
        train_epoch_fn: TrainEpochFn,
        train_loader: Iterable[Any],
        val_fn: ValFn,
        val_loader: Iterable[Any],
        optimizer: torch.optim.Optimizer,
        checkpoint_save_dir: str | Path,
        tensorboard_writer: Any = None,
        train_iters: int | None = None,
    ) -> tuple[nn.Module, ProgressiveShrinkingController]:
        """The legacy loop: per epoch ``epoch_step``, the user's epoch, validation of the minimum and maximum subnets
        (after BN adaptation), ``supernet_last.pth`` and ``supernet_best.pth`` (rank 0)."""
        seed = int(self._config.bootstrapnas_training.get("seed", 0))
        fixed_order = _bn_loader(train_loader, seed)  # calibration / BN data: the same batches on every run
        session = self._ensure_session(fixed_order)
        ctrl, supernet = session.controller, session.supernet
        rebind_optimizer(optimizer, self._original, session.model)
        train_iters = train_iters or ctrl.settings.train_steps or len(train_loader)  # type: ignore[arg-type]
        ctrl.auto_activate = True
        ctrl.set_training_lr_scheduler_args(optimizer, int(train_iters))
        ctrl.set_bn_adaptation_data(self._bn_loader or fixed_order)
        start_epoch, best = 0, {}
        if self._checkpoint is not None:
            load_optimizer_state(self._checkpoint, optimizer)
            start_epoch, best = int(self._checkpoint["epoch"]), dict(self._checkpoint.get("best") or {})
            state = rank_rng(self._checkpoint, torch.distributed.get_rank() if is_distributed() else 0)
            if state is not None:
                set_rng_state(state)
        if tensorboard_writer is None and is_main_process():
            tensorboard_writer = _summary_writer(checkpoint_save_dir)
        model = session.model
        if is_distributed():
            device_ids = [next(model.parameters()).device.index] if next(model.parameters()).is_cuda else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)
        out_dir = Path(checkpoint_save_dir)
        for epoch in range(start_epoch, ctrl.get_total_num_epochs()):
            ctrl.scheduler.epoch_step(epoch)
            sampler = getattr(train_loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)  # type: ignore[union-attr]
            supernet.train()
            train_epoch_fn(train_loader, model, ctrl, epoch, optimizer)
            record: dict[str, Any] = {"epoch": epoch, "stage": ctrl.scheduler.current_stage_idx}
            record["train_loss"] = float("nan")
            record["lr"] = optimizer.param_groups[0]["lr"]
            record.update(validate_min_max(session, val_loader, val_fn, criterion=nn.CrossEntropyLoss()))
            for role in ("min", "max"):
                r = record[role]
                logger.info("* Acc@1 %.3f Acc@5 %s of the %s subnet (%d MACs)", r["acc1"], r["acc5"], role, r["macs"])
            is_best = _is_better(record, best)
            if is_best:
                best = {"epoch": epoch, "stage": record["stage"], "max_acc1": record["max"]["acc1"]}
            rng = gather_objects(rng_state())
            if is_main_process():
                metrics = {"acc1": record["max"]["acc1"], "min_subnet_acc1": record["min"]["acc1"], **record}
                data = session.checkpoint(optimizer, rng=rng, epoch=epoch + 1, step_in_epoch=0,
                                          step=ctrl.scheduler.current_step + 1, metrics=metrics, best=best)  # fmt: skip
                atomic_save(data, out_dir / LAST)
                if is_best:
                    atomic_save(data, out_dir / BEST)
                _log(tensorboard_writer, record)
        return session.model, ctrl


def _summary_writer(directory: str | Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional, as in legacy
        logger.info("tensorboard is not installed; training curves are not written")
        return None
    return SummaryWriter(str(directory))


class ElasticityHandler:
    """Legacy ``multi_elasticity_handler`` calls, on our super-network."""

    def __init__(self, controller: ProgressiveShrinkingController) -> None:
        self._ctrl = controller
        self._supernet = controller.supernet

    def activate_supernet(self) -> None:
        self._supernet.activate(None)

    def activate_maximum_subnet(self) -> None:
        self._supernet.activate(self._supernet.stage_space.maximum())

    def activate_minimum_subnet(self) -> None:
        self._supernet.activate(self._supernet.stage_space.minimum())

    def activate_random_subnet(self) -> None:
        step = max(self._ctrl.scheduler.current_step, 0)
        self._supernet.activate(self._ctrl.subnets_for_step(step)[-1][1])

    def activate_subnet_for_config(self, config: dict[str, Any]) -> None:
        self._supernet.activate(config)

    def get_active_config(self) -> dict[str, Any]:
        return self._supernet.active_config

    def count_flops_and_weights_for_active_subnet(self) -> tuple[int, int]:
        """Legacy returned FLOPs = 2 x MACs (its example divides by 2e6 to print MMACs) and the weight count."""
        cfg = self._supernet.active_config
        return 2 * self._ctrl.macs(cfg), int(self._supernet.params(cfg))
