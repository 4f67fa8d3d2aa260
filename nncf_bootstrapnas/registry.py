"""Name -> object registries: how algorithms, elasticity dimensions, objectives and proxies plug in.

User code outside the package registers its own with the same decorator the package uses::

    from nncf_bootstrapnas.registry import SEARCH_ALGORITHMS

    @SEARCH_ALGORITHMS.register("my_search")
    class MySearch: ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RegistryError(KeyError):
    """A name that is not registered, or registered twice."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """A named collection of builders of one kind (e.g. 'search algorithm')."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str | None = None, *, override: bool = False) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise RegistryError(f"cannot register {obj!r} as a {self.kind}: no name given")
            if key in self._items and self._items[key] is not obj and not override:
                raise RegistryError(f"{self.kind} '{key}' is already registered (pass override=True to replace it)")
            self._items[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        _ensure_builtins_loaded()
        try:
            return self._items[name]
        except KeyError:
            allowed = ", ".join(sorted(self._items)) or "none"
            raise RegistryError(f"unknown {self.kind} '{name}'; registered: {allowed}") from None

    def canonical(self, name: str) -> str | None:
        """The registered spelling of ``name`` (exact, else the only case-insensitive match), None if unknown.

        Legacy configs spell search algorithms in any case (``"nsga2"``)."""
        _ensure_builtins_loaded()
        if name in self._items:
            return name
        matches = [n for n in self._items if n.lower() == str(name).lower()]
        return matches[0] if len(matches) == 1 else None

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)

    def names(self) -> list[str]:
        _ensure_builtins_loaded()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        _ensure_builtins_loaded()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._items)})"


TRAINING_ALGORITHMS: Registry[Any] = Registry("training algorithm")
COMPRESSION_ALGORITHMS: Registry[Any] = Registry("compression algorithm")
ELASTICITY_DIMENSIONS: Registry[Any] = Registry("elasticity dimension")
SEARCH_ALGORITHMS: Registry[Any] = Registry("search algorithm")
OBJECTIVES: Registry[Any] = Registry("objective")
ZERO_COST_PROXIES: Registry[Any] = Registry("zero-cost proxy")
SELECTION_MECHANISMS: Registry[Any] = Registry("selection mechanism")

# Modules whose import registers the built-in entries. Imported lazily on first lookup so that importing the registry
# stays cheap and free of import cycles.
_BUILTIN_MODULES = (
    "nncf_bootstrapnas.elasticity",
    "nncf_bootstrapnas.training",
    "nncf_bootstrapnas.subnet_search",
    "nncf_bootstrapnas.evaluation",
)
_state = "unloaded"  # -> "loading" (imports in progress: lookups made by those imports see what is there) -> "loaded"


def _ensure_builtins_loaded() -> None:
    """Import the built-in stages once. A stage that fails to import raises its own error, on every lookup, instead
    of leaving half-filled registries that would report its names as unknown."""
    global _state
    if _state != "unloaded":
        return
    _state = "loading"
    import importlib

    try:
        for module in _BUILTIN_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:  # a stage not built yet must not break the others
                if exc.name != module:
                    raise
    except BaseException:
        _state = "unloaded"
        raise
    _state = "loaded"
