"""One training step of the built-in loop and the default validation."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.training.bn_adaptation import batch_size_of, split_batch, to_device
from nncf_bootstrapnas.training.composition import Composition
from nncf_bootstrapnas.training.contract import model_device
from nncf_bootstrapnas.training.distillation import inplace_distillation_loss

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
    composition: Composition,
    batch: Any,
    step: int,
    criterion: Criterion,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> dict[str, float]:
    """Train the step's subnets (one for ``single``; max, min and random ones for ``sandwich``), accumulating their
    gradients, then take one optimizer step (under torchrun ``distributed.synchronized`` averages the gradients).

    The maximum subnet learns from the targets; with in-place distillation the others learn from its detached soft
    outputs. The controllers' losses (knowledge distillation from the original model) are added to every subnet's.
    Every subnet's loss but the maximum's is weighted by ``sampling.subnet_loss_weight`` (1: plain sum).
    """
    ctrl, supernet, model = composition.controller, composition.supernet, composition.model
    settings = ctrl.sampling
    args, kwargs, target = split_target(batch)
    args, kwargs, target = to_device(args, device), to_device(kwargs, device), to_device(target, device)
    optimizer.zero_grad(set_to_none=True)
    teacher_out: Any = None
    stats: dict[str, float] = {}
    for role, cfg in ctrl.subnets_for_step(step):
        supernet.activate(cfg)
        out = model(*args, **kwargs)
        if role == "max" or teacher_out is None or not settings.inplace_distillation:
            task = criterion(out, target)
        else:
            task = inplace_distillation_loss(out, teacher_out, settings.distillation_temperature)
        loss = task + composition.compression_loss()
        weight = 1.0 if role == "max" else settings.subnet_loss_weight
        (loss if weight == 1.0 else weight * loss).backward()
        if role == "max" and settings.strategy == "sandwich":
            teacher_out = _detach(out)
        stats[f"loss_{role}"] = stats.get(f"loss_{role}", 0.0) + float(loss.detach())
        if not math.isfinite(stats[f"loss_{role}"]):
            raise FloatingPointError(
                f"non-finite loss {stats[f'loss_{role}']} at step {step} for the {role} subnet {cfg}"
            )
    if ctrl.teacher is not None:
        ctrl.teacher.clear()
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
    device = model_device(model)
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


def take(iterator: Iterator[Any], n: int) -> Iterator[tuple[int, Any]]:
    for i in range(n):
        try:
            yield i, next(iterator)
        except StopIteration:
            return
