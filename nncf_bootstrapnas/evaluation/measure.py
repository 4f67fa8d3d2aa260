"""Measuring one subnet, the one way every stage does it: batches, top-1 accuracy, BN recalibration.

``recalibrated(supernet, config, bn_loader, n)`` is THE BN-recalibrated measurement (search objectives, selection
mechanisms, the quality report and the generator all use it): the subnet is activated, its BatchNorm statistics are
re-estimated on ``n`` samples, and on exit the statistics, the active subnet and every module's train/eval mode are
restored, so a measurement never depends on the ones before it. ``recalibrated_bn`` is its BN-only half for callers
that already activated the subnet. Models that are not ``nn.Module`` (search fakes) pass through untouched.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from nncf_bootstrapnas.utils.progress import progress_bar

IGNORE_INDEX = -100
ValidateFn = Callable[[nn.Module, Iterable[Any]], float]
BNAdaptFn = Callable[[Any, Any, int], None]


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(inputs, targets)`` of a loader batch; a bare tensor has no targets."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, (tuple, list)) and len(batch) >= 1:
        return batch[0], (batch[1] if len(batch) > 1 else None)
    raise TypeError(f"expected a batch (inputs, targets) or a tensor, got {type(batch).__name__}")


def first_batch(loader: Iterable[Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
    for batch in loader:
        return split_batch(batch)
    raise ValueError("the loader yielded no batch")


def logits_of(output: Any) -> torch.Tensor:
    """The prediction tensor of a model output (a tensor, the first tuple element or ``output['logits']``)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if isinstance(output, dict) and isinstance(output.get("logits"), torch.Tensor):
        return output["logits"]
    raise TypeError(f"cannot find a prediction tensor in a model output of type {type(output).__name__}")


def device_of(model: nn.Module) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


@torch.no_grad()
def top1_accuracy(model: nn.Module, loader: Iterable[Any]) -> float:
    """Top-1 accuracy in percent (dense outputs: over labelled pixels); the train/eval mode is restored."""
    was_training = model.training
    model.eval()
    device = device_of(model)
    correct = total = 0
    try:
        for batch in loader:
            x, y = split_batch(batch)
            if y is None:
                raise ValueError("accuracy needs labelled batches (inputs, targets)")
            pred = logits_of(model(x.to(device))).argmax(dim=1)
            y = y.to(device)
            valid = y != IGNORE_INDEX
            correct += int(((pred == y) & valid).sum())
            total += int(valid.sum())
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("the validation loader yielded no labelled samples")
    return 100.0 * correct / total


def finetune(
    model: nn.Module,
    loader: Iterable[Any],
    epochs: int,
    lr: float = 1e-3,
    seed: int = 0,
    teacher: nn.Module | None = None,
    temperature: float = 1.0,
    progress: bool = False,
) -> nn.Module:
    """A short stand-alone fine-tune (AdamW, cosine decay, cross-entropy); returns the model in eval mode.

    ``teacher``: a frozen model (e.g. the original) whose outputs the model is also distilled from (KL at
    ``temperature``, added to the cross-entropy): a small subnet learns more from the original's soft labels than
    from the hard ones alone (Once-for-All's specialisation uses the same)."""
    if epochs <= 0:
        return model.eval()
    device = device_of(model)
    kd = None
    if teacher is not None:
        from nncf_bootstrapnas.training.distillation import inplace_distillation_loss as kd

        teacher = (teacher if device_of(teacher) == device else copy.deepcopy(teacher).to(device)).eval()
    total = max(1, epochs * len(loader))  # type: ignore[arg-type]
    with torch.random.fork_rng(), progress_bar("fine-tune", total, progress) as bar:
        torch.manual_seed(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1.0 + np.cos(np.pi * min(s, total) / total)))
        model.train()
        for _ in range(epochs):
            for batch in loader:
                x, y = split_batch(batch)
                if y is None:
                    raise ValueError("fine-tuning needs labelled batches (inputs, targets)")
                x = x.to(device)
                out = logits_of(model(x))
                loss = F.cross_entropy(out, y.to(device), ignore_index=IGNORE_INDEX)
                if kd is not None:
                    with torch.no_grad():
                        target = logits_of(teacher(x))
                    loss = loss + kd(out, target, temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.advance(1)  # no loss.item(): a device sync every step
    return model.eval()


def adapt_bn(model: nn.Module, loader: Iterable[Any], num_samples: int) -> None:
    """The training package's ``adapt_batchnorm`` (exact cumulative statistics), imported lazily."""
    from nncf_bootstrapnas.training.bn_adaptation import adapt_batchnorm

    adapt_batchnorm(model, loader, num_samples)


def batchnorms(model: Any) -> list[_BatchNorm]:
    return [m for m in model.modules() if isinstance(m, _BatchNorm)] if isinstance(model, nn.Module) else []


@contextlib.contextmanager
def preserved_batchnorm(model: Any) -> Iterator[None]:
    """Restore every BN buffer, momentum and mode on exit."""
    saved = []
    for m in batchnorms(model):
        bufs = {n: b.detach().clone() for n, b in m.named_buffers(recurse=False) if b is not None}
        saved.append((m, bufs, m.momentum, m.training))
    try:
        yield
    finally:
        with torch.no_grad():
            for m, bufs, momentum, training in saved:
                for name, value in bufs.items():
                    getattr(m, name).copy_(value)
                m.momentum = momentum
                m.train(training)


@contextlib.contextmanager
def preserved_config(supernet: Any) -> Iterator[None]:
    """Re-activate the supernet's previous subnet and restore every module's train/eval mode on exit."""
    previous = copy.deepcopy(supernet.active_config)
    modes = [(m, m.training) for m in supernet.modules()] if isinstance(supernet, nn.Module) else []
    try:
        yield
    finally:
        supernet.activate(previous)
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def recalibrated_bn(
    model: Any, bn_loader: Iterable[Any] | None, num_samples: int, bn_adapt_fn: BNAdaptFn | None = None
) -> Iterator[Any]:
    """``model`` (its active subnet) with BN statistics re-estimated on ``num_samples`` samples of ``bn_loader``;
    statistics and modes are restored on exit. Nothing happens without BN layers, data or samples."""
    modes = [(m, m.training) for m in model.modules()] if isinstance(model, nn.Module) else []
    with preserved_batchnorm(model):
        try:
            if num_samples > 0 and bn_loader is not None and batchnorms(model):
                (bn_adapt_fn or adapt_bn)(model, bn_loader, num_samples)
            yield model
        finally:
            for m, training in modes:
                m.training = training


@contextlib.contextmanager
def recalibrated(
    supernet: Any,
    config: Any,
    bn_loader: Iterable[Any] | None,
    num_samples: int,
    bn_adapt_fn: BNAdaptFn | None = None,
) -> Iterator[Any]:
    """The supernet with ``config`` active, BN recalibrated, in eval mode; everything restored on exit."""
    with preserved_config(supernet):
        supernet.activate(config)
        with recalibrated_bn(supernet, bn_loader, num_samples, bn_adapt_fn) as model:
            if isinstance(model, nn.Module):
                model.eval()
            yield model


def recalibrated_accuracy(
    supernet: Any,
    config: Any,
    val_loader: Iterable[Any],
    bn_loader: Iterable[Any] | None,
    num_samples: int,
    validate_fn: ValidateFn | None = None,
) -> float:
    """``validate_fn`` (default top-1 in percent) of the BN-recalibrated subnet ``config``."""
    with recalibrated(supernet, config, bn_loader, num_samples) as model:
        return float((validate_fn or top1_accuracy)(model, val_loader))


def loader_generator_state(loader: Any) -> Any:
    """The shuffling generator's state of a torch DataLoader (None if it has none), to replay the same order."""
    gen = getattr(loader, "generator", None)
    return gen.get_state() if gen is not None else None


def restore_loader_generator(loader: Any, state: Any) -> None:
    if state is not None:
        loader.generator.set_state(state)
