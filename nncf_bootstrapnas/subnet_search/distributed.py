"""torch.distributed evaluation: every rank measures its share of a batch, all ranks receive all results.

All ranks run the same algorithm with the same seed and take the same steps; rank 0's batch is broadcast first so a
rank can never measure a different config, and the gathered results are merged in request order, so every rank ends
with the same rows and the same evaluation cache. Only rank 0 writes checkpoints and shows progress.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) when torch.distributed is not initialised."""
    if "torch" not in sys.modules:  # no process group can exist without torch; do not pay its import
        return 0, 1
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return dist_info()[0] == 0


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (identity without torch.distributed)."""
    rank, world = dist_info()
    if world == 1:
        return obj
    import torch.distributed as dist

    box = [obj if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class DistributedBackend:
    """Splits a batch round-robin over the ranks of the default process group; wraps a per-rank backend."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.rank, self.world = dist_info()
        if self.world < 2:
            raise ValueError("DistributedBackend needs an initialised torch.distributed group with >= 2 ranks")

    def map(self, xs: list[tuple[int, ...]], on_done: Callable[[], None] | None = None) -> list[Any]:
        import torch.distributed as dist

        xs = broadcast_object(list(xs))
        local = self.inner.map(xs[self.rank :: self.world], on_done)
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, local)
        out: list[Any] = [None] * len(xs)
        for r, results in enumerate(gathered):
            for j, result in enumerate(results):
                out[r + j * self.world] = result
        return out

    def close(self) -> None:
        self.inner.close()
