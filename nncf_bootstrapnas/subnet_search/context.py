"""What an objective sees when it measures one subnet: lazy, cached access to the activated supernet and its parts.

Laziness matters because a search mixes cheap objectives (MACs from the analysed graph) with expensive ones (BN
adaptation + validation, OpenVINO latency); a context only pays for what its objectives ask for.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

BNAdaptFn = Callable[[Any, Any, int], None]


class EvaluationContext:
    """One subnet under measurement.

    Args:
        supernet: the super-network (``activate``, ``macs``, ``params``, ``extract``, ``example_input``).
        config: the subnet config (plain JSON).
        x: its integer encoding.
        validate_fn: ``validate_fn(model, loader) -> float`` for the accuracy objective.
        val_loader: validation data (already cut to ``eval_subset_size`` by the evaluator).
        bn_loader: data for batch-norm adaptation (falls back to ``val_loader``).
        num_bn_adaptation_samples: 0 disables BN adaptation.
        bn_adapt_fn: ``adapt_batchnorm(model, loader, num_samples)``; default: the training package's.
        shared: per-process memo shared by all contexts of one evaluator (LUTs, extracted subnets).
    """

    def __init__(
        self,
        supernet: Any,
        config: dict,
        x: Iterable[int],
        validate_fn: Callable[[Any, Any], float] | None = None,
        val_loader: Any = None,
        bn_loader: Any = None,
        num_bn_adaptation_samples: int = 0,
        bn_adapt_fn: BNAdaptFn | None = None,
        shared: dict | None = None,
    ) -> None:
        self.supernet = supernet
        self.config = config
        self.x = tuple(int(i) for i in x)
        self.validate_fn = validate_fn
        self.val_loader = val_loader
        self.bn_loader = bn_loader if bn_loader is not None else val_loader
        self.num_bn_adaptation_samples = int(num_bn_adaptation_samples)
        self.bn_adapt_fn = bn_adapt_fn
        self.shared = shared if shared is not None else {}
        self.memo: dict[Any, Any] = {}  # per-subnet values shared between objectives (e.g. one latency run)
        self._activated = False
        self._adapted = False
        self._stack = contextlib.ExitStack()

    # ---- lazy access ------------------------------------------------------------------------------------------------
    def active_supernet(self) -> Any:
        """The supernet with this config active (activation happens once)."""
        if not self._activated:
            self.supernet.activate(self.config)
            self._activated = True
        return self.supernet

    def adapted_supernet(self) -> Any:
        """The active supernet after BN adaptation; its BN statistics are restored when the context closes.

        Restoring keeps every measurement a function of the config alone (not of the evaluation order), which is what
        makes the evaluation cache, resume and distributed evaluation exact. The recalibration is the evaluation
        package's (``recalibrated_bn``), the one every stage uses.
        """
        model = self.active_supernet()
        if not self._adapted:
            self._adapted = True
            if self.num_bn_adaptation_samples > 0 and self.bn_loader is not None:
                from nncf_bootstrapnas.evaluation.measure import recalibrated_bn

                n = self.num_bn_adaptation_samples
                self._stack.enter_context(recalibrated_bn(model, self.bn_loader, n, self.bn_adapt_fn))
        return model

    def subnet(self) -> Any:
        """The extracted, physically smaller subnet, cached per config in the evaluator's shared memo."""
        key = ("subnet", self.x)
        cache = self.shared.setdefault("subnets", {})
        if key not in cache:
            cache.clear()  # one subnet at a time: objectives of the same config reuse it, memory stays flat
            cache[key] = self.active_supernet().extract(self.config)
        return cache[key]

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        """Shape of the supernet's first example input with the batch dimension set to ``batch``."""
        example = getattr(self.supernet, "example_input", None)
        if example is None:
            raise ValueError("the supernet has no example_input; pass input_shape to the latency objective")
        first = example[0] if isinstance(example, (tuple, list)) else example
        return (batch, *tuple(first.shape[1:]))

    # ---- lifetime ---------------------------------------------------------------------------------------------------
    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> EvaluationContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def subset_loader(loader: Any, n: int | None) -> Any:
    """The first ``n`` samples of ``loader`` in a fixed order, so every subnet is scored on the same images.

    A torch ``DataLoader`` keeps its batch size, collate function and workers; any other iterable of ``(inputs,
    targets)`` batches is cut batch-wise.
    """
    if n is None or loader is None:
        return loader
    try:
        from torch.utils.data import DataLoader, Subset
    except ImportError:  # pragma: no cover - torch is a hard dependency
        DataLoader = None  # noqa: N806
    if DataLoader is not None and isinstance(loader, DataLoader):
        dataset = loader.dataset
        size = len(dataset)  # type: ignore[arg-type]
        if n >= size:
            return loader
        return DataLoader(
            Subset(dataset, list(range(n))),
            batch_size=loader.batch_size or 1,
            shuffle=False,
            num_workers=loader.num_workers,
            collate_fn=loader.collate_fn,
            pin_memory=loader.pin_memory,
        )
    return _FirstSamples(loader, n)


class _FirstSamples:
    """Re-iterable view of the first ``n`` samples of a batch iterable."""

    def __init__(self, loader: Any, n: int) -> None:
        self.loader, self.n = loader, n

    def __iter__(self) -> Iterator[Any]:
        seen = 0
        for batch in self.loader:
            if seen >= self.n:
                return
            first = batch[0] if isinstance(batch, (tuple, list)) else batch
            size = len(first) if hasattr(first, "__len__") else 1
            take = min(size, self.n - seen)
            if take < size and isinstance(batch, (tuple, list)):
                batch = type(batch)(b[:take] for b in batch)
            elif take < size:
                batch = batch[:take]
            seen += take
            yield batch

    def __len__(self) -> int:
        bs = getattr(self.loader, "batch_size", None) or 1
        return int(np.ceil(self.n / bs))
