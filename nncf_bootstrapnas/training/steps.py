"""One training step of the built-in loop, the default validation, and rich progress bars."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.training.bn_adaptation import batch_size_of, split_batch, to_device
from nncf_bootstrapnas.training.distillation import inplace_distillation_loss
from nncf_bootstrapnas.training.distributed import allreduce_gradients, is_main_process
from nncf_bootstrapnas.training.session import TrainingSession

Criterion = Callable[[Any, Any], torch.Tensor]


def split_target(batch: Any) -> tuple[tuple[Any, ...], dict[str, Any], Any]:
    """``(inputs..., target)`` of a training batch ``(x, y)``; a batch without targets cannot be trained on."""
    if not isinstance(batch, (list, tuple)) or len(batch) < 2:
        raise ValueError(
            f"training batches must be (inputs, targets) pairs, got {type(batch).__name__}"
            + (f" of length {len(batch)}" if isinstance(batch, (list, tuple)) else "")
        )
    args, kwargs = split_batch(batch)
    return args, kwargs, batch[1]


def train_step(
    session: TrainingSession,
    forward: nn.Module,
    batch: Any,
    step: int,
    criterion: Criterion,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> dict[str, float]:
    """Train the step's subnets (one for ``single``; max, min and random ones for ``sandwich``), accumulating their
    gradients, then average gradients over ranks and take one optimizer step.

    The maximum subnet learns from the targets; with in-place distillation the others learn from its detached soft
    outputs. The controllers' losses (knowledge distillation from the original model) are added to every subnet's.
    """
    ctrl, supernet = session.controller, session.supernet
    settings = ctrl.sampling
    args, kwargs, target = split_target(batch)
    args, kwargs, target = to_device(args, device), to_device(kwargs, device), to_device(target, device)
    optimizer.zero_grad(set_to_none=True)
    teacher_out: Any = None
    stats: dict[str, float] = {}
    subnets = ctrl.subnets_for_step(step)
    sync = forward.no_sync if isinstance(forward, nn.parallel.DistributedDataParallel) else contextlib.nullcontext
    for role, cfg in subnets:
        supernet.activate(cfg)
        with sync():
            out = forward(*args, **kwargs)
            if role == "max" or teacher_out is None or not settings.inplace_distillation:
                task = criterion(out, target)
            else:
                task = inplace_distillation_loss(out, teacher_out, settings.distillation_temperature)
            loss = task + session.compression_loss()
            loss.backward()
        if role == "max" and settings.strategy == "sandwich":
            teacher_out = _detach(out)
        stats[f"loss_{role}"] = stats.get(f"loss_{role}", 0.0) + float(loss.detach())
        if not math.isfinite(stats[f"loss_{role}"]):
            raise FloatingPointError(
                f"non-finite loss {stats[f'loss_{role}']} at step {step} for the {role} subnet {cfg}"
            )
    if ctrl.teacher is not None:
        ctrl.teacher.clear()
    allreduce_gradients([p for p in supernet.parameters() if p.requires_grad])
    optimizer.step()
    stats["loss"] = sum(v for k, v in stats.items() if k.startswith("loss_"))
    stats["samples"] = float(batch_size_of(args, kwargs))
    return stats


def _detach(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach()
    if isinstance(obj, dict):
        return {k: _detach(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_detach(v) for v in obj) if not hasattr(obj, "_fields") else type(obj)(*map(_detach, obj))
    return obj


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[Any], criterion: Criterion | None = None) -> tuple[float, float, float]:
    """``(top-1 %, top-5 %, mean loss)`` like the legacy ``validate``; for dense outputs ``(N, C, ...)`` the accuracy is
    per position, ignoring targets < 0 (e.g. -100)."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    training = model.training
    model.eval()
    correct1 = correct5 = total = 0
    loss_sum, loss_n = 0.0, 0
    try:
        for batch in loader:
            args, kwargs, target = split_target(batch)
            args, kwargs, target = to_device(args, device), to_device(kwargs, device), to_device(target, device)
            out = model(*args, **kwargs)
            logits = out[0] if isinstance(out, (list, tuple)) else out
            if criterion is not None:
                loss_sum += float(criterion(logits, target)) * int(target.shape[0])
                loss_n += int(target.shape[0])
            scores = logits.movedim(1, -1).reshape(-1, logits.shape[1])
            labels = target.reshape(-1)
            keep = labels >= 0
            scores, labels = scores[keep], labels[keep]
            k = min(5, scores.shape[1])
            top = scores.topk(k, dim=1).indices
            hits = top.eq(labels[:, None])
            correct1 += int(hits[:, :1].sum())
            correct5 += int(hits.any(dim=1).sum())
            total += int(labels.numel())
    finally:
        model.train(training)
    if total == 0:
        raise ValueError("validation loader yielded no labelled samples")
    return 100.0 * correct1 / total, 100.0 * correct5 / total, loss_sum / max(1, loss_n)


class Progress:
    """Rich progress bars (main process only): one for the epochs with the stage, one for the batches of an epoch."""

    def __init__(self, enabled: bool, total_epochs: int) -> None:
        self.enabled = enabled and is_main_process()
        self._progress: Any = None
        self._epochs: Any = None
        self._batches: Any = None
        self.total_epochs = total_epochs

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._progress = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                transient=False,
            )
            self._progress.__enter__()
            self._epochs = self._progress.add_task("epochs", total=self.total_epochs, info="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def start_epoch(self, epoch: int, stage: int, num_stages: int, total_batches: int, done: int = 0) -> None:
        if self._progress is None:
            return
        self._progress.update(self._epochs, completed=epoch, info=f"stage {stage + 1}/{num_stages}")
        if self._batches is not None:
            self._progress.remove_task(self._batches)
        desc = f"epoch {epoch + 1}/{self.total_epochs}"
        self._batches = self._progress.add_task(desc, total=total_batches, completed=done, info="")

    def advance(self, info: str) -> None:
        if self._progress is not None:
            self._progress.update(self._batches, advance=1, info=info)

    def end_epoch(self, epoch: int, info: str) -> None:
        if self._progress is not None:
            self._progress.update(self._epochs, completed=epoch + 1, info=info)

    def log(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message)


def take(iterator: Iterator[Any], n: int) -> Iterator[tuple[int, Any]]:
    for i in range(n):
        try:
            yield i, next(iterator)
        except StopIteration:
            return
