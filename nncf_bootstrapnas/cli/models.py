"""Which model the CLI builds: a name from ``examples.models`` or an import path ``pkg.module:factory``."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nncf_bootstrapnas.cli.errors import UsageError


def ensure_repo_on_path() -> None:
    """``examples`` is a top-level package of the repository (not installed): make it importable from the console
    script, whose sys.path does not contain the working directory."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (root / "examples" / "models" / "__init__.py").is_file() and str(root) not in sys.path:
            sys.path.insert(0, str(root))


@dataclass
class ModelSpec:
    """Enough to rebuild the model in another process: saved into checkpoints next to the weights."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    small: bool = False
    num_classes: int = 10

    @property
    def is_import_path(self) -> bool:
        return ":" in self.name

    def factory(self) -> Callable[..., Any]:
        if self.is_import_path:
            return _import_factory(self.name)
        ensure_repo_on_path()
        try:
            from examples.models import MODELS
        except ImportError as exc:
            raise UsageError(
                f"cannot import examples.models ({exc}); run from the repository root or give --model pkg.module:factory"
            ) from None
        if self.name not in MODELS:
            raise UsageError(
                f"unknown model {self.name!r}; available: {', '.join(sorted(MODELS))} "
                "(or an import path such as mypkg.models:build)"
            )
        return MODELS[self.name]

    def build(self) -> Any:
        """A freshly initialised model (pre-trained weights are loaded by the caller)."""
        factory = self.factory()
        if not self.is_import_path:
            from examples.models import build_model

            return build_model(self.name, num_classes=self.num_classes, small=self.small, **self.params)
        kwargs = dict(self.params)
        try:
            accepts = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            accepts = {}
        if "num_classes" in accepts and "num_classes" not in kwargs:
            kwargs["num_classes"] = self.num_classes
        try:
            return factory(**kwargs)
        except TypeError as exc:
            raise UsageError(f"cannot build model {self.name} with parameters {kwargs}: {exc}") from None

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.params.items()] + (["small"] if self.small else [])
        return f"{self.name}({', '.join(parts)})" if parts else self.name

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params), "small": self.small, "num_classes": self.num_classes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(
            data["name"], dict(data.get("params") or {}), bool(data.get("small")), int(data.get("num_classes", 10))
        )


def _import_factory(path: str) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise UsageError(f"model import path {path!r} must look like pkg.module:factory")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import module {module_name!r} of model {path!r}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"model {path!r}: module {module_name!r} has no callable {attr!r}")
    return factory


def spec_from(config: dict[str, Any], name: str | None, params: dict[str, Any] | None, small: bool) -> ModelSpec:
    """``--model`` / ``--model-params`` override the config's top-level ``model`` / ``model_params``."""
    chosen = name or config.get("model")
    if not chosen:
        raise UsageError("no model: pass --model NAME (or pkg.module:factory) or set the config's top-level 'model'")
    merged = dict(config.get("model_params") or {}) if name is None or name == config.get("model") else {}
    merged.update(params or {})
    return ModelSpec(chosen, merged, small, int(config.get("num_classes", 10)))
