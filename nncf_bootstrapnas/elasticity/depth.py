"""Skippable blocks: the user's block objects with their class swapped to a subclass that can return its input.

A skipped block runs nothing. The subclass is made per block class at run time; ``__reduce_ex__`` rebuilds it on
unpickling (worker processes) from the original, importable class.
"""

from __future__ import annotations

from typing import Any

from torch import nn

_CLASSES: dict[type[nn.Module], type[nn.Module]] = {}


def _rebuild(base: type[nn.Module], state: dict[str, Any]) -> nn.Module:
    obj = base.__new__(base)
    obj.__dict__.update(state)
    obj.__class__ = skippable_class(base)
    return obj


def skippable_class(base: type[nn.Module]) -> type[nn.Module]:
    if base in _CLASSES:
        return _CLASSES[base]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._bnas_skip:
            return args[0] if args else next(iter(kwargs.values()))
        return base.forward(self, *args, **kwargs)

    def __reduce_ex__(self, protocol: int):  # noqa: ANN202, N807
        return _rebuild, (base, dict(self.__dict__))

    cls = type(
        f"Skippable{base.__name__}",
        (base,),
        {"forward": forward, "__reduce_ex__": __reduce_ex__, "_bnas_base": base, "__module__": base.__module__},
    )
    _CLASSES[base] = cls
    return cls


def make_skippable(module: nn.Module) -> nn.Module:
    if not hasattr(type(module), "_bnas_base"):
        module.__class__ = skippable_class(type(module))
    module._bnas_skip = False
    return module


def strip_skippable(module: nn.Module) -> nn.Module:
    """The plain block again (used on the extracted copy)."""
    base = getattr(type(module), "_bnas_base", None)
    if base is not None:
        module.__class__ = base
        module.__dict__.pop("_bnas_skip", None)
    return module
