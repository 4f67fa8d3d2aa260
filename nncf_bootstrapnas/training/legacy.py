"""NNCF 2.x ``EpochBasedTrainingAlgorithm`` facade: a legacy BootstrapNAS script ports by changing its imports.

A thin adapter over ``fit``'s epoch loop (``training.loop.EpochLoop``): the loop is the same (stages, validation of
the minimum and maximum subnets, best tracking, ``supernet_last.pth`` / ``supernet_best.pth``, resume, torchrun); only
the epoch's training is the user's. The callbacks keep the legacy signatures: ``train_epoch_fn(loader, model,
compression_ctrl, epoch, optimizer)`` calls ``compression_ctrl.scheduler.step()`` before each batch (which activates the
step's subnet) and adds ``compression_ctrl.loss()`` to its loss; ``val_fn(model, loader) -> (acc1, acc5, loss)``.
Because the callback owns the forward pass, each step trains one subnet: ``single`` draws a random one, ``sandwich``
cycles max, min and random subnets across steps (``fit`` accumulates them within one step instead). Under torchrun the
model handed to ``train_epoch_fn`` is the super-network itself: gradients are averaged in ``optimizer.step()``
(``distributed.synchronized``), as in ``fit``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.training.composition import Composition, as_config, compose, rebind_optimizer
from nncf_bootstrapnas.training.controller import ProgressiveShrinkingController
from nncf_bootstrapnas.training.distributed import fixed_order, is_main_process
from nncf_bootstrapnas.training.loop import EpochLoop, read_training_checkpoint, resume_composition
from nncf_bootstrapnas.training.settings import LoopOptions

logger = logging.getLogger(__name__)

TrainEpochFn = Callable[[Iterable[Any], nn.Module, ProgressiveShrinkingController, int, torch.optim.Optimizer], None]
ValFn = Callable[[nn.Module, Iterable[Any]], tuple[float, float, float]]


class EpochBasedTrainingAlgorithm:
    """Trains a super-network with a user train-epoch function (legacy API)."""

    def __init__(self, model: nn.Module, config: Any = None, checkpoint: Any = None, bn_loader: Any = None) -> None:
        self._original = model
        self._config = as_config(config)
        self._checkpoint = checkpoint
        self._bn_loader = bn_loader
        self._composition: Composition | None = None
        if checkpoint is not None:
            self._composition = resume_composition(model, checkpoint, self._config)

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
        checkpoint = read_training_checkpoint(path)
        return cls(model, checkpoint.training.get("config") or {}, checkpoint=checkpoint, bn_loader=bn_loader)

    def _ensure_composition(self, calibration: Iterable[Any] | None = None) -> Composition:
        if self._composition is None:
            self._composition = compose(self._original, self._config, calibration_data=calibration, with_training=True)
        return self._composition

    @property
    def training_ctrl(self) -> ProgressiveShrinkingController:
        return self._ensure_composition().controller

    @property
    def elasticity_ctrl(self) -> ProgressiveShrinkingController:
        """Legacy name; the controller owns the super-network and its ``multi_elasticity_handler``."""
        return self.training_ctrl

    @property
    def model(self) -> nn.Module:
        return self._ensure_composition().model

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
        options = LoopOptions.from_config(self._config)
        ordered = fixed_order(train_loader, options.seed)  # calibration / BN data: the same batches every run
        composition = self._ensure_composition(ordered)
        ctrl = composition.controller
        rebind_optimizer(optimizer, self._original, composition.model)
        train_iters = train_iters or ctrl.settings.train_steps or len(train_loader)  # type: ignore[arg-type]
        ctrl.auto_activate = True
        ctrl.set_training_lr_scheduler_args(optimizer, int(train_iters))
        ctrl.set_bn_adaptation_data(self._bn_loader or ordered)
        if tensorboard_writer is None and is_main_process():
            tensorboard_writer = _summary_writer(checkpoint_save_dir)
        loop = EpochLoop(composition, optimizer, options=options, checkpoint_dir=checkpoint_save_dir,
                         val_loader=val_loader, val_fn=val_fn, show_progress=False,
                         tensorboard_writer=tensorboard_writer, resumed=self._checkpoint,
                         resume_mid_epoch=False)  # fmt: skip

        def train_epoch(epoch: int, skip: int) -> None:
            sampler = getattr(train_loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)  # type: ignore[union-attr]
            train_epoch_fn(train_loader, composition.model, ctrl, epoch, optimizer)

        loop.run(train_epoch)
        return composition.model, ctrl


def _summary_writer(directory: str | Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional, as in legacy
        logger.info("tensorboard is not installed; training curves are not written")
        return None
    return SummaryWriter(str(directory))
