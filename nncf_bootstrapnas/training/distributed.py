"""Data-parallel training of a super-network (torchrun), and a resumable, rank-aware data order.

One mechanism for every training path: :func:`synchronized` hooks the optimizer, so gradients are averaged over
ranks (one coalesced all-reduce) right before every ``optimizer.step()``, and rank 0's buffers (BN statistics) are
broadcast right after it; on entry rank 0's parameters and buffers are broadcast. Why not
``DistributedDataParallel``: the subnets of a step leave different parameters unused (skipped blocks, unused kernel
transforms), and a sandwich step accumulates several forward/backward passes before one optimizer step. DDP's reducer
handles neither together: with ``find_unused_parameters=True`` and ``no_sync`` accumulation, a parameter that only an
earlier subnet of the step used is "unused" in the synchronised pass and its accumulated gradient is never averaged,
so ranks silently diverge. Hooking the optimizer also covers a legacy ``train_epoch_fn`` that owns the forward and
backward passes. Sampling needs no communication: every rank draws the same subnets from ``(seed, step)``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

_BUCKET_NUMEL = 16 * 1024 * 1024


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def gather_objects(obj: Any) -> list[Any]:
    """``obj`` of every rank, on every rank (a one-element list when not distributed)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any) -> Any:
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_module_state(module: nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank (e.g. after each rank adapted BN or loaded a checkpoint)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def allreduce_gradients(params: Sequence[nn.Parameter]) -> None:
    """Average ``.grad`` over ranks in coalesced buckets; a parameter without a gradient on every rank stays None.

    A presence flag travels with each gradient, so the result is consistent even if ranks disagreed on which
    parameters were used (missing gradients count as zeros).
    """
    if not is_distributed():
        return
    world = world_size()
    params = [p for p in params if p.requires_grad]
    i = 0
    while i < len(params):
        bucket, numel = [], 0
        while i < len(params) and (not bucket or numel + params[i].numel() <= _BUCKET_NUMEL):
            bucket.append(params[i])
            numel += params[i].numel()
            i += 1
        ref = bucket[0]
        flat = torch.cat(
            [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in bucket]
            + [torch.tensor([float(p.grad is not None) for p in bucket], device=ref.device, dtype=ref.dtype)]
        )
        dist.all_reduce(flat)
        flags = flat[-len(bucket) :]
        offset = 0
        for p, flag in zip(bucket, flags.tolist()):
            n = p.numel()
            if flag > 0:
                grad = flat[offset : offset + n].view_as(p).div_(world)
                if p.grad is None:
                    p.grad = grad.clone()
                else:
                    p.grad.copy_(grad)
            offset += n


def broadcast_buffers(module: nn.Module) -> None:
    """Rank 0's buffers (BN running statistics) on every rank."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in module.buffers():
            dist.broadcast(tensor.data, src=0)


def _optimizer_params(optimizer: torch.optim.Optimizer) -> list[nn.Parameter]:
    return [p for group in optimizer.param_groups for p in group["params"]]


@contextlib.contextmanager
def synchronized(model: nn.Module, optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Keep ``model`` identical on every rank while ``optimizer`` trains it (see the module docstring); a no-op
    without an initialised process group."""
    if not is_distributed():
        yield
        return
    broadcast_module_state(model)
    pre = optimizer.register_step_pre_hook(lambda opt, args, kwargs: allreduce_gradients(_optimizer_params(opt)))
    post = optimizer.register_step_post_hook(lambda opt, args, kwargs: broadcast_buffers(model))
    try:
        yield
    finally:
        pre.remove()
        post.remove()


class ResumableSampler(Sampler[int]):
    """``DistributedSampler``'s order (``randperm`` seeded with ``seed + epoch``; rank ``r`` takes every ``world``-th
    index from ``r``) with a start offset, so an epoch can resume after its first ``k`` batches.

    With one replica it yields the whole permutation, so a single process with batch ``world * b`` sees exactly the
    union of the ranks' batches of ``b``.
    """

    def __init__(
        self, length: int, shuffle: bool, seed: int = 0, num_replicas: int = 1, rank: int = 0, drop_last: bool = False
    ) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} out of range for {num_replicas} replicas")
        self.length, self.shuffle, self.seed = length, shuffle, seed
        self.num_replicas, self.rank, self.drop_last = num_replicas, rank, drop_last
        if drop_last:
            self.num_samples = length // num_replicas
        else:
            self.num_samples = math.ceil(length / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = torch.randperm(self.length, generator=g).tolist()
        else:
            indices = list(range(self.length))
        if self.drop_last:
            indices = indices[: self.total_size]
        elif self.total_size > len(indices):
            pad = self.total_size - len(indices)
            indices += (indices * math.ceil(pad / max(1, len(indices))))[:pad]
        return iter(indices[self.rank : self.total_size : self.num_replicas][self.start :])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)


class ResumableLoader:
    """A DataLoader rebuilt over a :class:`ResumableSampler`; ``epoch(e, skip_batches)`` gives the epoch's iterator."""

    def __init__(self, loader: DataLoader, sampler: ResumableSampler, seed: int) -> None:
        self.loader, self.sampler, self.seed = loader, sampler, seed
        self.batch_size = loader.batch_size or 1

    def epoch(self, epoch: int, skip_batches: int = 0) -> Iterator[Any]:
        self.sampler.set_epoch(epoch, start=skip_batches * self.batch_size)
        if self.loader.generator is not None:  # worker base seeds depend on the epoch only, not on how we got here
            self.loader.generator.manual_seed(self.seed * 100003 + epoch)
        return iter(self.loader)

    def __len__(self) -> int:
        self.sampler.set_epoch(self.sampler.epoch, 0)
        return len(self.loader)


def make_resumable(loader: Any, seed: int, num_replicas: int = 1, rank_: int = 0) -> ResumableLoader | None:
    """Rebuild a map-style DataLoader with a seeded, rank-aware, resumable order; None if it cannot be rebuilt
    (iterable dataset, custom batch sampler or sampler): then the loader is used as it is."""
    if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
        return None
    if type(loader.batch_sampler) is not BatchSampler or loader.batch_size is None:
        return None
    sampler = loader.sampler
    if isinstance(sampler, RandomSampler):
        if sampler.replacement or sampler._num_samples is not None:
            return None
        shuffle = True
    elif isinstance(sampler, DistributedSampler):
        shuffle, seed = sampler.shuffle, sampler.seed
    elif isinstance(sampler, SequentialSampler):
        shuffle = False
    else:
        return None
    new_sampler = ResumableSampler(len(loader.dataset), shuffle, seed, num_replicas, rank_, drop_last=False)
    kwargs: dict[str, Any] = {}
    if loader.num_workers > 0:
        kwargs.update(prefetch_factor=loader.prefetch_factor, multiprocessing_context=loader.multiprocessing_context)
    rebuilt = DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=new_sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        generator=torch.Generator(),
        **kwargs,
    )
    return ResumableLoader(rebuilt, new_sampler, seed)


def fixed_order(loader: Any, seed: int) -> Iterable[Any]:
    """A fixed, shuffled order of the training set for BN adaptation: the same batches every time, on every rank."""
    resumable = make_resumable(loader, seed + 7919, 1, 0)
    if resumable is None:
        return loader
    resumable.sampler.shuffle = True
    resumable.sampler.set_epoch(0)
    return resumable.loader
