"""``ModelRef``: how to rebuild a model in another process, a factory's import path and its JSON arguments.

The supernet artifact stores one, so ``load_supernet(path)`` rebuilds the model alone. :func:`resolve_model` turns
what a user writes (a reference-model name such as ``resnet18``, or an import path ``pkg.module:factory``) into one,
checking it before any work.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.machinery import PathFinder
from types import ModuleType
from typing import Any

from torch import nn

REFERENCE_FACTORY = "nncf_bootstrapnas.models:build_model"


class ModelError(ValueError):
    """A model that cannot be resolved or built: unknown name, bad import path, arguments the factory rejects."""


@dataclass(frozen=True)
class ModelRef:
    """``factory`` is ``pkg.module:callable``; ``build()`` calls it with ``args`` (plain JSON keyword arguments)."""

    factory: str
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def reference_name(self) -> str | None:
        """The reference-model name (``resnet18``) when the factory is ``build_model``, else None."""
        return str(self.args["name"]) if self.factory == REFERENCE_FACTORY else None

    def callable(self) -> Callable[..., nn.Module]:
        return import_factory(self.factory)

    def build(self) -> nn.Module:
        """A freshly initialised model (weights are the caller's business)."""
        factory = self.callable()
        try:
            return factory(**self.args)
        except TypeError as exc:
            raise ModelError(f"cannot build model {self.describe()}: {exc}") from None

    def describe(self) -> str:
        from nncf_bootstrapnas.models.external import external_label

        label = external_label(self)
        if label is not None:
            shown = {"in_channels": 3, "pretrained": True}  # defaults left out
            extra = {k: v for k, v in self.args.items() if k not in ("name", "num_classes") and shown.get(k) != v}
            return f"{label}({', '.join(f'{k}={v}' for k, v in extra.items())})" if extra else label
        if self.reference_name is not None:
            extra = {k: v for k, v in self.args.items() if k not in ("name", "num_classes", "small")}
            parts = [f"{k}={v}" for k, v in extra.items()] + (["small"] if self.args.get("small") else [])
            name = self.reference_name
        else:
            parts, name = [f"{k}={v}" for k, v in self.args.items() if k != "num_classes"], self.factory
        return f"{name}({', '.join(parts)})" if parts else name

    def to_json(self) -> dict[str, Any]:
        return {"factory": self.factory, "args": dict(self.args)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelRef:
        if not isinstance(data, Mapping) or not isinstance(data.get("factory"), str):
            raise ModelError(f"a model reference needs a 'factory' import path, got {data!r}")
        return cls(data["factory"], dict(data.get("args") or {}))


def resolve_model(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    small: bool = False,
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int | None = None,
) -> ModelRef:
    """A reference-model name (``nncf_bootstrapnas.models.MODELS``), ``torchvision:NAME``, ``timm:NAME``,
    ``efficientnet-lite0/1/2`` (``models.external``) or an import path ``pkg.module:factory``.

    The factory is imported now, so an unknown name, a missing package or a bad path fails before any work.
    ``num_classes`` is passed to an import-path factory only if it accepts it; ``small`` applies to reference models
    only; ``in_channels`` and ``image_size`` (input layout) to the external models only.
    """
    from nncf_bootstrapnas.models import MODELS
    from nncf_bootstrapnas.models.external import resolve_external

    params = dict(params or {})
    external = resolve_external(name, params, num_classes, in_channels, image_size)
    if external is not None:
        return external
    if ":" in name:
        factory = import_factory(name)
        try:
            accepts = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            accepts = {}
        if "num_classes" in accepts and "num_classes" not in params:
            params["num_classes"] = num_classes
        return ModelRef(name, params)
    if name not in MODELS:
        raise ModelError(
            f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}, torchvision:NAME, timm:NAME, "
            "efficientnet-lite0/1/2 (or an import path such as mypkg.models:build)"
        )
    return ModelRef(REFERENCE_FACTORY, {"name": name, "num_classes": num_classes, "small": small, **params})


def import_factory(path: str) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ModelError(f"model import path {path!r} must look like pkg.module:factory")
    try:
        module = _import(module_name)
    except ImportError as exc:
        raise ModelError(f"cannot import module {module_name!r} of model {path!r}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelError(f"model {path!r}: module {module_name!r} has no callable {attr!r}")
    return factory


def _import(module_name: str) -> ModuleType:
    """``import_module``, and like ``python -m`` also from the working directory (the console script's
    ``sys.path`` lacks it) without editing ``sys.path``: the top-level package is loaded from there."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = module_name.partition(".")[0]
        spec = PathFinder.find_spec(top, [os.getcwd()]) if exc.name == top else None
        if spec is None or spec.loader is None:
            raise
    module = importlib.util.module_from_spec(spec)
    sys.modules[top] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(top, None)
        raise
    return importlib.import_module(module_name)


def _listing(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def describe_mismatch(state: Mapping[str, Any], model: nn.Module, where: str = "checkpoint") -> str | None:
    """Missing / unexpected keys and shape mismatches of ``state`` against ``model.state_dict()``; None if it fits."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: {where} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {_listing(unexpected)}")
    if shapes:
        parts.append(f"shape mismatches: {_listing(shapes)}")
    return "; ".join(parts) if parts else None
