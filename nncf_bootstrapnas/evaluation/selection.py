"""Selection mechanisms: one interface ``score(supernet, config) -> float`` (higher = better) for ranking subnets.

- ``bn_recalibrated_accuracy`` (default): BN adaptation on the active subnet, then top-1 on validation data; the
  supernet's BN statistics and active subnet are restored afterwards, so scores do not depend on evaluation order.
- ``proxy:<name>``: a zero-cost proxy from ``ZERO_COST_PROXIES`` on the extracted subnet and one fixed batch.
- ``predictor``: a scikit-learn regressor fitted on measured ``(config, value)`` rows.

A search can use a proxy as a cheap pre-filter (``prefilter``) before real evaluations, or as its sole objective: every
built-in proxy is also registered in ``registry.OBJECTIVES`` under its own name (``ProxyObjective``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from torch import nn

from nncf_bootstrapnas.registry import OBJECTIVES, SELECTION_MECHANISMS, ZERO_COST_PROXIES

from .measure import ValidateFn, first_batch, recalibrated_accuracy, top1_accuracy
from .proxies import BUILTIN_PROXIES
from .ranking import top_k_indices

DEFAULT_SELECTION = "bn_recalibrated_accuracy"


class SelectionMechanism(Protocol):
    name: str

    def score(self, supernet: Any, config: Mapping[str, Mapping[str, int]]) -> float: ...


@SELECTION_MECHANISMS.register("bn_recalibrated_accuracy")
class BNRecalibratedAccuracy:
    """BN adaptation on ``num_bn_samples`` samples of ``bn_loader`` (default ``val_loader``), then ``validate_fn``."""

    name = "bn_recalibrated_accuracy"

    def __init__(
        self,
        val_loader: Iterable[Any],
        bn_loader: Iterable[Any] | None = None,
        num_bn_samples: int = 256,
        validate_fn: ValidateFn | None = None,
    ) -> None:
        if num_bn_samples < 0:
            raise ValueError(f"bn_recalibrated_accuracy: num_bn_samples must be >= 0, got {num_bn_samples}")
        self.val_loader = val_loader
        self.bn_loader = bn_loader if bn_loader is not None else val_loader
        self.num_bn_samples = int(num_bn_samples)
        self.validate_fn = validate_fn or top1_accuracy

    def score(self, supernet: Any, config: Mapping[str, Mapping[str, int]]) -> float:
        return recalibrated_accuracy(
            supernet, config, self.val_loader, self.bn_loader, self.num_bn_samples, self.validate_fn
        )


@SELECTION_MECHANISMS.register("proxy")
class ProxySelection:
    """A zero-cost proxy of the extracted subnet on one fixed batch (``batch`` or the first of ``loader``)."""

    def __init__(self, proxy: str, batch: Any = None, loader: Iterable[Any] | None = None, seed: int = 0) -> None:
        if batch is None and loader is None:
            raise ValueError(f"selection 'proxy:{proxy}' needs a batch or a loader to take one batch from")
        self.fn = ZERO_COST_PROXIES.get(proxy)
        self.name = f"proxy:{proxy}"
        self.proxy = proxy
        self.batch = batch if batch is not None else first_batch(loader)  # type: ignore[arg-type]
        self.seed = int(seed)

    def score(self, supernet: Any, config: Mapping[str, Mapping[str, int]]) -> float:
        return float(self.fn(supernet.extract(config), self.batch, seed=self.seed))


@SELECTION_MECHANISMS.register("predictor")
class PredictorSelection:
    """A scikit-learn regressor on the ordinal encoding (choice index / last index) of ``space``.

    ``fit(configs, values)`` first; ``regressor`` defaults to extra trees (robust on few rows, no scaling needed).
    """

    name = "predictor"

    def __init__(self, space: Any, regressor: Any = None, seed: int = 0) -> None:
        if regressor is None:
            from sklearn.ensemble import ExtraTreesRegressor

            regressor = ExtraTreesRegressor(n_estimators=100, random_state=seed, n_jobs=1)
        self.space, self.regressor, self.fitted = space, regressor, False

    def features(self, configs: Sequence[Mapping[str, Mapping[str, int]]]) -> np.ndarray:
        upper = np.maximum(self.space.upper_bounds, 1)
        return np.stack([self.space.encode(c) / upper for c in configs]).astype(float)

    def fit(self, configs: Sequence[Mapping[str, Mapping[str, int]]], values: Sequence[float]) -> PredictorSelection:
        if len(configs) != len(values) or len(configs) < 2:
            raise ValueError(
                f"predictor: need >= 2 rows and as many values as configs, got {len(configs)}/{len(values)}"
            )
        self.regressor.fit(self.features(configs), np.asarray(values, dtype=float))
        self.fitted = True
        return self

    def score(self, supernet: Any, config: Mapping[str, Mapping[str, int]]) -> float:
        del supernet
        if not self.fitted:
            raise RuntimeError(
                "selection 'predictor' is not fitted; call fit(configs, values) with measured rows first"
            )
        return float(self.regressor.predict(self.features([config]))[0])


def _proxy_factory(proxy: str) -> Callable[..., ProxySelection]:
    def make(batch: Any = None, loader: Iterable[Any] | None = None, seed: int = 0) -> ProxySelection:
        return ProxySelection(proxy, batch=batch, loader=loader, seed=seed)

    make.__name__ = f"proxy_{proxy}"
    return make


for _p in BUILTIN_PROXIES:
    SELECTION_MECHANISMS.register(f"proxy:{_p}")(_proxy_factory(_p))


def build_selection(name: str = DEFAULT_SELECTION, **kwargs: Any) -> SelectionMechanism:
    """A selection mechanism by name; ``proxy:<name>`` works for any proxy registered in ``ZERO_COST_PROXIES``."""
    if name.startswith("proxy:") and name not in SELECTION_MECHANISMS:
        return ProxySelection(name.split(":", 1)[1], **kwargs)
    return SELECTION_MECHANISMS.get(name)(**kwargs)


# ---- pre-filtering ----------------------------------------------------------------------------------------------------
def proxy_scores(
    supernet: Any, configs: Sequence[Mapping[str, Mapping[str, int]]], proxy: str, batch: Any, seed: int = 0
) -> np.ndarray:
    """The proxy score of every config's extracted subnet; NaN stays NaN (ranked last by ``prefilter``)."""
    sel = ProxySelection(proxy, batch=batch, seed=seed)
    return np.array([sel.score(supernet, c) for c in configs], dtype=float)


def rank_by_proxy(
    supernet: Any, configs: Sequence[Mapping[str, Mapping[str, int]]], proxy: str, batch: Any, seed: int = 0
) -> list[int]:
    """Indices of ``configs`` from the best proxy score to the worst (ties keep the input order; NaN and -inf
    last): the one pre-filter ranking, used by ``prefilter`` and the search's ``proxy_prefilter``."""
    return top_k_indices(proxy_scores(supernet, configs, proxy, batch, seed), len(configs))


def prefilter(
    supernet: Any,
    configs: Sequence[Mapping[str, Mapping[str, int]]],
    proxy: str,
    keep_ratio: float,
    batch: Any,
    seed: int = 0,
) -> list[dict[str, dict[str, int]]]:
    """Keep the ``ceil(keep_ratio * len(configs))`` (at least one) configs with the best proxy score, best first."""
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"prefilter: keep_ratio must be in (0, 1], got {keep_ratio}")
    if not configs:
        return []
    keep = max(1, math.ceil(keep_ratio * len(configs)))
    order = rank_by_proxy(supernet, configs, proxy, batch, seed)[:keep]
    return [{d: dict(v) for d, v in configs[i].items()} for i in order]


# ---- proxies as search objectives -----------------------------------------------------------------------------------
class ProxyObjective:
    """``ctx -> proxy score`` of the extracted subnet on the first batch of ``ctx.bn_loader`` (else ``ctx.val_loader``).

    The batch is taken once per evaluator (``ctx.shared``) so every subnet is scored on the same samples.
    """

    direction = "max"
    cheap = False
    needs_validation = False
    needs = ("extract",)

    def __init__(self, proxy: str, seed: int = 0) -> None:
        self.name, self.proxy, self.seed = proxy, proxy, int(seed)
        self.__name__ = proxy

    def __call__(self, ctx: Any) -> float:
        key = "zero_cost_proxy_batch"
        if key not in ctx.shared:
            loader = ctx.bn_loader if getattr(ctx, "bn_loader", None) is not None else ctx.val_loader
            if loader is None:
                raise ValueError(f"objective '{self.name}' needs data: pass val_loader (or bn_loader) to search()")
            ctx.shared[key] = first_batch(loader)
        model: nn.Module = ctx.subnet()
        return float(ZERO_COST_PROXIES.get(self.proxy)(model, ctx.shared[key], seed=self.seed))

    def __repr__(self) -> str:
        return f"ProxyObjective({self.proxy!r})"


for _p in BUILTIN_PROXIES:
    OBJECTIVES.register(_p)(ProxyObjective(_p))

__all__ = [
    "DEFAULT_SELECTION",
    "BNRecalibratedAccuracy",
    "PredictorSelection",
    "ProxyObjective",
    "ProxySelection",
    "SelectionMechanism",
    "build_selection",
    "prefilter",
    "proxy_scores",
    "rank_by_proxy",
]
