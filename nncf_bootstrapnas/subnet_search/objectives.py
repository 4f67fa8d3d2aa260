"""Objectives: named, directed measurements of one subnet, registered in ``registry.OBJECTIVES``.

An objective is any object with ``name``, ``direction`` ("min" or "max"), ``cheap`` and ``__call__(ctx) -> float``;
``needs`` lists the supernet members it calls (``searchable.MEMBERS``), so ``search()`` can name a missing one at once.
``cheap`` objectives are exact and fast (MACs, parameters, LUT latency): LINAS computes them exactly for every
candidate instead of predicting them. Users register their own::

    @OBJECTIVES.register("energy")
    class Energy(Objective):
        direction = "min"
        def __call__(self, ctx): return my_meter(ctx.subnet())
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from nncf_bootstrapnas.registry import OBJECTIVES
from nncf_bootstrapnas.subnet_search.context import EvaluationContext

DIRECTIONS = ("min", "max")


class ObjectiveError(ValueError):
    """An objective that cannot be built or measured."""


class Objective:
    """Base class: subclasses set ``direction`` (and ``cheap``) and implement ``__call__``."""

    name: str = ""
    direction: str = "min"
    cheap: bool = False
    needs_validation: bool = False  # requires validate_fn and val_loader
    needs: tuple[str, ...] = ()  # supernet members it calls (searchable.MEMBERS); search() checks them up front

    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        if name is not None:
            self.name = name
        if kwargs:
            raise ObjectiveError(f"objective {self.name!r} takes no options, got {sorted(kwargs)}")
        self.options: dict[str, Any] = {}

    def __call__(self, ctx: EvaluationContext) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:
        """Plain JSON that rebuilds this objective through the registry (checkpoints, worker processes)."""
        return {"name": self.name, **self.options}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, direction={self.direction!r})"


@OBJECTIVES.register("accuracy")
class Accuracy(Objective):
    """``validate_fn(model, loader)`` on the active supernet after BN adaptation, on ``eval_subset_size`` samples."""

    name = "accuracy"
    direction = "max"
    needs_validation = True

    def __call__(self, ctx: EvaluationContext) -> float:
        if ctx.validate_fn is None or ctx.val_loader is None:
            raise ObjectiveError("objective 'accuracy' needs validate_fn and val_loader; pass both to search()")
        model = ctx.adapted_supernet()
        if hasattr(model, "eval"):
            model.eval()
        return float(ctx.validate_fn(model, ctx.val_loader))


@OBJECTIVES.register("macs")
class Macs(Objective):
    """Exact MACs for one sample from the supernet's analysed graph."""

    name = "macs"
    direction = "min"
    cheap = True
    needs = ("macs",)

    def __call__(self, ctx: EvaluationContext) -> float:
        return float(ctx.supernet.macs(ctx.config))


@OBJECTIVES.register("params")
class Params(Objective):
    """Parameters of the extracted subnet."""

    name = "params"
    direction = "min"
    cheap = True
    needs = ("params",)

    def __call__(self, ctx: EvaluationContext) -> float:
        return float(ctx.supernet.params(ctx.config))


class _Measured(Objective):
    """Shared OpenVINO measurement of the extracted subnet; latency and throughput of one config reuse one run."""

    needs = ("extract",)

    def __init__(
        self,
        name: str | None = None,
        device: str = "CPU",
        time_budget_s: float = 0.5,
        batch: int = 1,
        input_shape: list[int] | None = None,
    ) -> None:
        super().__init__(name)
        self.options = {"device": device, "time_budget_s": float(time_budget_s), "batch": int(batch)}
        if input_shape is not None:
            self.options["input_shape"] = [int(s) for s in input_shape]

    def _latency_ms(self, ctx: EvaluationContext) -> float:
        opts = self.options
        key = ("latency_ms", opts["device"], opts["time_budget_s"], opts["batch"], tuple(opts.get("input_shape", ())))
        if key not in ctx.memo:
            from nncf_bootstrapnas.deployment import measure_latency

            shape = tuple(opts["input_shape"]) if "input_shape" in opts else ctx.input_shape(opts["batch"])
            ctx.memo[key] = float(measure_latency(ctx.subnet(), shape, opts["time_budget_s"], device=opts["device"]))
        return ctx.memo[key]


@OBJECTIVES.register("latency_ms")
class LatencyMs(_Measured):
    """Median OpenVINO latency (ms per batch) of the extracted subnet via ``export.measure_latency``."""

    name = "latency_ms"
    direction = "min"

    def __call__(self, ctx: EvaluationContext) -> float:
        return self._latency_ms(ctx)


@OBJECTIVES.register("throughput_fps")
class ThroughputFps(_Measured):
    """Samples per second derived from the same latency measurement (``batch * 1000 / latency_ms``)."""

    name = "throughput_fps"
    direction = "max"

    def __call__(self, ctx: EvaluationContext) -> float:
        return self.options["batch"] * 1000.0 / self._latency_ms(ctx)


@OBJECTIVES.register("latency_lut")
class LatencyLut(Objective):
    """Latency estimated by the export package's per-device ``LatencyLUT`` (built once per search and device; pass one
    ``LatencyLUT`` or a saved one as ``lut`` to compare several searches on the same table).

    ``lut`` may be a ``LatencyLUT`` (or anything with ``estimate(model, example_input)``) or a path to a saved one;
    without it an empty table is created and fills itself with the layer signatures it meets (measured once each).
    """

    name = "latency_lut"
    direction = "min"
    cheap = True
    needs = ("extract",)

    def __init__(self, name: str | None = None, device: str = "CPU", lut: Any = None, **lut_kwargs: Any) -> None:
        super().__init__(name)
        self.lut = lut
        self.options = {"device": device, **lut_kwargs}
        if isinstance(lut, (str, os.PathLike)):
            self.options["lut"] = os.fspath(lut)

    def _get_lut(self, ctx: EvaluationContext) -> Any:
        if self.lut is not None and not isinstance(self.lut, (str, os.PathLike)):
            return self.lut
        key = ("latency_lut", self.options["device"], self.options.get("lut"))
        if key not in ctx.shared:
            from nncf_bootstrapnas.deployment import LatencyLUT

            if self.lut is not None:
                ctx.shared[key] = LatencyLUT.load(self.lut)
            else:
                ctx.shared[key] = LatencyLUT(**{k: v for k, v in self.options.items() if k != "lut"})
        return ctx.shared[key]

    def __call__(self, ctx: EvaluationContext) -> float:
        example = getattr(ctx.supernet, "example_input", None)
        return float(self._get_lut(ctx).estimate(ctx.subnet(), example))


class FunctionObjective(Objective):
    """A registered plain function ``fn(ctx) -> float``; direction/cheap come from function attributes."""

    def __init__(self, name: str, fn: Callable[[EvaluationContext], float], direction: str = "min", cheap=False):
        super().__init__(name)
        self.fn, self.direction, self.cheap = fn, direction, bool(cheap)
        self.needs = tuple(getattr(fn, "needs", ()))

    def __call__(self, ctx: EvaluationContext) -> float:
        return float(self.fn(ctx))


def resolve_objective(spec: Any) -> Objective:
    """An objective from a name, ``{"name": ..., **options}``, an ``Objective`` or a registered class/function."""
    if isinstance(spec, Objective):
        obj = spec
    elif isinstance(spec, str):
        obj = _build(spec, OBJECTIVES.get(spec), {})
    elif isinstance(spec, Mapping):
        if "name" not in spec:
            raise ObjectiveError(f"objective spec {dict(spec)!r} has no 'name'; registered: {OBJECTIVES.names()}")
        options = {k: v for k, v in spec.items() if k != "name"}
        obj = _build(spec["name"], OBJECTIVES.get(spec["name"]), options)
    elif callable(spec) and getattr(spec, "direction", None) is not None:
        obj = FunctionObjective(getattr(spec, "name", spec.__name__), spec, spec.direction, getattr(spec, "cheap", 0))
    else:
        raise ObjectiveError(
            f"cannot use {spec!r} as an objective; pass a registered name ({', '.join(OBJECTIVES.names())}), "
            "a {'name': ..., **options} dict or an Objective instance"
        )
    if obj.direction not in DIRECTIONS:
        raise ObjectiveError(f"objective {obj.name!r} has direction {obj.direction!r}; allowed: {DIRECTIONS}")
    if not obj.name:
        raise ObjectiveError(f"objective {obj!r} has no name")
    return obj


def _build(name: str, entry: Any, options: dict[str, Any]) -> Objective:
    if isinstance(entry, type) and issubclass(entry, Objective):
        try:
            obj = entry(**options)
        except TypeError as exc:
            raise ObjectiveError(f"objective {name!r}: bad options {options}: {exc}") from None
        if obj.name != name:
            obj.name = name
        return obj
    if isinstance(entry, Objective):
        return entry
    if callable(entry):
        if options:
            raise ObjectiveError(f"objective {name!r} is a plain function and takes no options, got {sorted(options)}")
        direction = getattr(entry, "direction", "min")
        return FunctionObjective(name, entry, direction, getattr(entry, "cheap", False))
    raise ObjectiveError(f"registered objective {name!r} is {entry!r}; expected an Objective class or a function")
