"""Process-pool evaluation: the subnets of one generation are measured by worker processes.

Each worker receives a pickled :class:`MeasureSpec` once (its own copy of the supernet, objectives and loaders) and then
only encoded configs travel. ``spawn`` is the default start method because forking a process whose torch thread pool
is already running can deadlock; everything in the spec must therefore be picklable (module-level functions, no
lambdas).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from nncf_bootstrapnas.subnet_search.evaluator import MeasureSpec, measure

_WORKER_SPEC: MeasureSpec | None = None


def _init_worker(spec: MeasureSpec, threads: int) -> None:
    global _WORKER_SPEC
    _WORKER_SPEC = spec
    torch = sys.modules.get("torch")  # imported while unpickling a torch supernet; a torch-free one stays torch-free
    if torch is not None:
        torch.set_num_threads(threads)


def _measure_in_worker(x: tuple[int, ...]) -> tuple[dict[str, float], float]:
    if _WORKER_SPEC is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("search worker was not initialised with a MeasureSpec")
    return measure(_WORKER_SPEC, x)


class ProcessPoolBackend:
    """Measures a batch over ``num_workers`` processes; results come back in request order."""

    def __init__(self, spec: MeasureSpec, num_workers: int, mp_context: str = "spawn") -> None:
        if num_workers < 2:
            raise ValueError(f"ProcessPoolBackend needs num_workers >= 2, got {num_workers}")
        threads = max(1, (os.cpu_count() or 1) // num_workers)
        self.num_workers = num_workers
        self._executor = ProcessPoolExecutor(
            max_workers=num_workers,
            mp_context=multiprocessing.get_context(mp_context),
            initializer=_init_worker,
            initargs=(spec, threads),
        )

    def map(self, xs: list[tuple[int, ...]], on_done: Callable[[], None] | None = None) -> list[Any]:
        futures = [self._executor.submit(_measure_in_worker, x) for x in xs]
        out = []
        for future in futures:
            out.append(future.result())
            if on_done is not None:
                on_done()
        return out

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
