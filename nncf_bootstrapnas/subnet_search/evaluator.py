"""Measuring subnets: a cache keyed by ``(supernet fingerprint, encoded config)`` so no subnet is measured twice.

The measurement itself (:func:`measure`) is a plain function of a picklable :class:`MeasureSpec`, so the same code runs
in-process, in a process pool or on every torch.distributed rank (see ``parallel.py`` and ``distributed.py``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nncf_bootstrapnas.subnet_search.context import EvaluationContext, subset_loader
from nncf_bootstrapnas.subnet_search.objectives import Objective

Record = dict[str, Any]  # {"index", "x", "config", "values", "time_s"}


@dataclass
class MeasureSpec:
    """Everything a process needs to measure subnets; pickled once per worker."""

    supernet: Any
    space: Any
    metrics: list[Objective]
    validate_fn: Callable[[Any, Any], float] | None = None
    val_loader: Any = None
    bn_loader: Any = None
    num_bn_adaptation_samples: int = 0
    bn_adapt_fn: Callable[[Any, Any, int], None] | None = None
    shared: dict = field(default_factory=dict)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["shared"] = {}  # LUTs and extracted subnets are rebuilt per process
        return state

    def context(self, x: Sequence[int]) -> EvaluationContext:
        return EvaluationContext(
            self.supernet,
            self.space.decode(x),
            x,
            validate_fn=self.validate_fn,
            val_loader=self.val_loader,
            bn_loader=self.bn_loader,
            num_bn_adaptation_samples=self.num_bn_adaptation_samples,
            bn_adapt_fn=self.bn_adapt_fn,
            shared=self.shared,
        )


def measure(spec: MeasureSpec, x: Sequence[int], names: Iterable[str] | None = None) -> tuple[dict[str, float], float]:
    """Values of ``spec.metrics`` (or only ``names``) for the subnet ``x`` and the seconds it took."""
    wanted = None if names is None else set(names)
    start = time.perf_counter()
    values: dict[str, float] = {}
    try:
        with spec.context(x) as ctx:
            for metric in spec.metrics:
                if wanted is None or metric.name in wanted:
                    values[metric.name] = float(metric(ctx))
    except Exception as exc:
        raise RuntimeError(f"measuring subnet {list(map(int, x))} failed in objective evaluation: {exc}") from exc
    return values, time.perf_counter() - start


class SerialBackend:
    """Measures in this process, one subnet after the other."""

    def __init__(self, spec: MeasureSpec) -> None:
        self.spec = spec

    def map(self, xs: list[tuple[int, ...]], on_done: Callable[[], None] | None = None) -> list[tuple[dict, float]]:
        out = []
        for x in xs:
            out.append(measure(self.spec, x))
            if on_done is not None:
                on_done()
        return out

    def close(self) -> None:
        pass


class Evaluator:
    """Measures batches of encoded subnets through a backend and remembers every result.

    ``evaluate`` returns one record per requested row (cached or new); only new measurements get an evaluation index
    and count towards ``n_measured``. Time per evaluation is measured where it runs; ``evals_per_minute`` is the
    wall-clock rate of new measurements, so it includes the parallel speed-up.
    """

    def __init__(self, spec: MeasureSpec, backend: Any = None, fingerprint: str | None = None) -> None:
        self.spec = spec
        self.backend = backend if backend is not None else SerialBackend(spec)
        self.fingerprint = fingerprint or supernet_fingerprint(spec.supernet, spec.space)
        self.records: list[Record] = []
        self.cache: dict[tuple[str, tuple[int, ...]], Record] = {}
        self.cache_hits = 0
        self.wall_s = 0.0
        self._cheap: dict[tuple[str, tuple[int, ...]], float] = {}
        self.on_measured: Callable[[], None] | None = None

    @classmethod
    def create(
        cls,
        supernet: Any,
        space: Any,
        metrics: list[Objective],
        validate_fn: Callable[[Any, Any], float] | None = None,
        val_loader: Any = None,
        bn_loader: Any = None,
        num_bn_adaptation_samples: int = 0,
        eval_subset_size: int | None = None,
        bn_adapt_fn: Callable[[Any, Any, int], None] | None = None,
        backend_factory: Callable[[MeasureSpec], Any] | None = None,
    ) -> Evaluator:
        """An evaluator whose validation loader is cut to ``eval_subset_size`` samples."""
        spec = MeasureSpec(
            supernet,
            space,
            list(metrics),
            validate_fn,
            subset_loader(val_loader, eval_subset_size),
            bn_loader,
            num_bn_adaptation_samples,
            bn_adapt_fn,
        )
        return cls(spec, backend_factory(spec) if backend_factory else None)

    # ---- measuring --------------------------------------------------------------------------------------------------
    @property
    def metric_names(self) -> list[str]:
        return [m.name for m in self.spec.metrics]

    @property
    def n_measured(self) -> int:
        return len(self.records)

    def key(self, x: Iterable[int]) -> tuple[str, tuple[int, ...]]:
        return self.fingerprint, tuple(int(i) for i in x)

    def lookup(self, x: Iterable[int]) -> Record | None:
        return self.cache.get(self.key(x))

    def seen(self, x: Iterable[int]) -> bool:
        return self.key(x) in self.cache

    def evaluate(self, X: np.ndarray | Sequence[Sequence[int]], limit: int | None = None) -> list[Record | None]:
        """Records for the rows of ``X``; at most ``limit`` new measurements (rows beyond it get ``None``)."""
        rows = [tuple(int(i) for i in x) for x in np.atleast_2d(np.asarray(X, dtype=float)).round().astype(int)]
        pending: list[tuple[int, ...]] = []
        for x in rows:
            if self.key(x) in self.cache or x in pending:
                self.cache_hits += 1  # served without a new measurement
            elif limit is None or len(pending) < limit:
                pending.append(x)
        if pending:
            start = time.perf_counter()
            results = self.backend.map(pending, self.on_measured)
            self.wall_s += time.perf_counter() - start
            for x, (values, seconds) in zip(pending, results):
                self.add(x, values, seconds)
        return [self.cache.get(self.key(x)) for x in rows]

    def add(self, x: tuple[int, ...], values: dict[str, float], time_s: float) -> Record:
        record: Record = {
            "index": len(self.records),
            "x": list(x),
            "config": self.spec.space.decode(x),
            "values": {k: float(v) for k, v in values.items()},
            "time_s": float(time_s),
        }
        self.records.append(record)
        self.cache[self.key(x)] = record
        return record

    def cheap_values(self, X: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Exact values of cheap metrics for many candidates (LINAS): in-process, memoised, not evaluations."""
        out = np.zeros((len(X), len(names)))
        by_name = {m.name: m for m in self.spec.metrics}
        for i, x in enumerate(np.asarray(X).round().astype(int)):
            xt = tuple(int(v) for v in x)
            record = self.cache.get(self.key(xt))
            for j, name in enumerate(names):
                if record is not None and name in record["values"]:
                    out[i, j] = record["values"][name]
                    continue
                k = (name, xt)
                if k not in self._cheap:
                    with self.spec.context(xt) as ctx:
                        self._cheap[k] = float(by_name[name](ctx))
                out[i, j] = self._cheap[k]
        return out

    # ---- statistics and state ---------------------------------------------------------------------------------------
    @property
    def eval_time_s(self) -> float:
        return float(sum(r["time_s"] for r in self.records))

    @property
    def evals_per_minute(self) -> float:
        return 60.0 * self.n_measured / self.wall_s if self.wall_s > 0 else float("nan")

    def stats(self) -> dict[str, Any]:
        return {
            "evaluations": self.n_measured,
            "cache_hits": self.cache_hits,
            "eval_time_s": self.eval_time_s,
            "eval_wall_s": self.wall_s,
            "evals_per_minute": self.evals_per_minute,
            "fingerprint": self.fingerprint,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "records": self.records,
            "cache_hits": self.cache_hits,
            "wall_s": self.wall_s,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["fingerprint"] != self.fingerprint:
            raise ValueError(
                f"the evaluation cache belongs to supernet {state['fingerprint']}, this supernet is {self.fingerprint}; "
                "resume with the same supernet weights and search space, or start a new checkpoint_dir"
            )
        self.records, self.cache = [], {}
        for r in state["records"]:
            self.add(tuple(r["x"]), r["values"], r["time_s"])
        self.cache_hits = int(state.get("cache_hits", 0))
        self.wall_s = float(state.get("wall_s", 0.0))

    def close(self) -> None:
        self.backend.close()


def supernet_fingerprint(supernet: Any, space: Any) -> str:
    """Hash of the supernet's weights and structure and of the search space: measurements are valid for all three.

    Uses ``supernet.fingerprint()`` when defined, the elasticity package's ``fingerprint`` for a ``SuperNetwork``,
    else the type, ``get_state()`` (without the active config) and every tensor of ``state_dict()``.
    """
    h = hashlib.sha256(json.dumps(space.to_json(), sort_keys=True).encode())
    custom = getattr(supernet, "fingerprint", None)
    if callable(custom):
        h.update(str(custom()).encode())
        return h.hexdigest()[:16]
    if type(supernet).__name__ == "SuperNetwork":
        from nncf_bootstrapnas.elasticity import SuperNetwork, fingerprint

        if isinstance(supernet, SuperNetwork):
            h.update(fingerprint(supernet).encode())
            return h.hexdigest()[:16]
    h.update(type(supernet).__qualname__.encode())
    get_state = getattr(supernet, "get_state", None)
    if callable(get_state):
        state = {k: v for k, v in get_state().items() if k != "active_config"}
        h.update(json.dumps(state, sort_keys=True, default=str).encode())
    state_dict = getattr(supernet, "state_dict", None)
    if callable(state_dict):
        import torch

        for name, tensor in sorted(state_dict().items()):
            h.update(name.encode())
            flat = tensor.detach().cpu().reshape(-1).contiguous()
            h.update(str(flat.dtype).encode())
            h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
