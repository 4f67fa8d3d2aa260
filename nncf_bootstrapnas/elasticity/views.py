"""Elastic layers by parameters, not by class: the user's ``forward`` runs unchanged and sees sliced parameters.

An elastic module keeps its object and its own class's code: its class is swapped to a subclass made at run time
(``Elastic<UserClass>``) that adds data-descriptor properties for the parameters, buffers and attributes its forward
reads (``weight``, ``running_mean``, ``groups``, ``num_heads``, ...). While a forward of the model runs, a property
returns the active slice of ``self._parameters[name]`` (or the attribute's active value); everywhere else, and at the
maximum subnet, it returns the raw parameter, so ``state_dict``, optimisers and checkpoints see the original names
and shapes. One mechanism serves torch's own layers and any subclass with its own ``forward``.

Why not ``torch.nn.utils.parametrize``: it renames parameters (``weight`` -> ``parametrizations.weight.original``),
which breaks checkpoints and every name-based config. Batch-norm statistics updated in training through a non-prefix
index (a copy) are written back after the forward.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._pytree import tree_flatten

from ..graph.tracer import QUIET

Index = slice | torch.Tensor | None

# > 0 while a forward of an elastic model runs: only then do the properties return active slices.
ACTIVE = [0]
_MISSING = object()


@dataclass(frozen=True)
class TensorView:
    """The active part of one tensor: ``slices`` ``(dim, index)`` in order, then the elastic kernel (``embed``:
    zeros around the active centre at the full kernel size)."""

    slices: tuple[tuple[int, Index], ...] = ()
    kernel: int | None = None
    embed: bool = False


@dataclass
class ElasticState:
    """What the active subnet keeps of one module (set by ``SuperNetwork.activate``)."""

    out_index: Index = None  # output channels kept (producers) - for per-channel quantizer slicing
    in_index: Index = None  # input channels kept (consumers)
    channel_index: Index = None  # channels kept by channelwise layers (norms, depthwise conv)
    kernel: int | None = None  # active kernel size (elastic-kernel convolutions)
    kernel_choices: tuple[int, ...] = ()
    views: dict[str, TensorView] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)  # attribute values forward sees
    extract_attrs: dict[str, Any] = field(default_factory=dict)  # only the extracted module gets these
    child_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)  # e.g. a same-padding child's padding
    writeback: tuple[str, ...] = ()  # buffers whose active view is a copy (training writes it back)
    cache: dict[str, torch.Tensor] | None = None
    names: set[str] = field(default_factory=set)  # properties this module needs on its class

    def is_full(self, max_kernel: int | None = None) -> bool:
        return not self.views and not self.attrs and (self.kernel is None or self.kernel == max_kernel)


def take(t: torch.Tensor | None, dim: int, index: Index) -> torch.Tensor | None:
    if t is None or index is None:
        return t
    if isinstance(index, slice):
        return t.narrow(dim, index.start, index.stop - index.start)
    return t.index_select(dim, index)


def index_len(index: Index, full: int) -> int:
    if index is None:
        return full
    if isinstance(index, slice):
        return index.stop - index.start
    return int(index.numel())


def kernel_weight(module: nn.Module, weight: torch.Tensor, kernel: int, embed: bool = False) -> torch.Tensor:
    """Centre-crop chain from the largest kernel, each step through its learnable transform matrix (Once-for-All)."""
    choices = module.__dict__["_bnas"].kernel_choices
    for small, large in zip(choices[1:], choices[:-1]):
        if large <= kernel:
            continue
        start = (large - small) // 2
        for d in range(2, weight.dim()):
            weight = weight.narrow(d, start, small)
        shape = weight.shape
        matrix = module._parameters[f"kernel_transform_{large}to{small}"]
        weight = (weight.reshape(-1, matrix.shape[0]) @ matrix.t()).reshape(shape)
        if small == kernel:
            break
    if embed and kernel < choices[0]:
        pad = (choices[0] - kernel) // 2
        weight = F.pad(weight, [pad, pad] * (weight.dim() - 2))
    return weight


def apply_view(module: nn.Module, raw: torch.Tensor, view: TensorView) -> torch.Tensor:
    QUIET[0] += 1
    try:
        t = raw
        for dim, index in view.slices:
            t = take(t, dim, index)
        if view.kernel is not None:
            t = kernel_weight(module, t, view.kernel, view.embed)
        return t
    finally:
        QUIET[0] -= 1


def first_tensor(args: tuple, kwargs: dict) -> Any:
    """What a skipped block returns: its one tensor argument, wherever the parent passed it."""
    for value in list(args) + list(kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value
    return args[0] if args else next(iter(kwargs.values()))


# ---- the dynamic class -------------------------------------------------------------------------------------------------
def _tensor_property(name: str) -> property:
    def get(self: nn.Module) -> Any:
        d = self.__dict__
        t = d["_parameters"].get(name, _MISSING)
        if t is _MISSING:
            t = d["_buffers"].get(name, _MISSING)
            if t is _MISSING:
                if name in d:
                    return d[name]
                raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        if ACTIVE[0] and t is not None:
            s = d["_bnas"]
            view = s.views.get(name)
            if view is not None:
                if s.cache is not None and name in s.cache:
                    return s.cache[name]
                return apply_view(self, t, view)
        return t

    def set_(self: nn.Module, value: Any) -> None:
        self.__dict__[name] = value

    return property(get, set_)


def _attr_property(name: str) -> property:
    def get(self: nn.Module) -> Any:
        d = self.__dict__
        if ACTIVE[0]:
            attrs = d["_bnas"].attrs
            if name in attrs:
                return attrs[name]
        try:
            return d[name]
        except KeyError:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'") from None

    def set_(self: nn.Module, value: Any) -> None:
        self.__dict__[name] = value

    return property(get, set_)


def _forward_of(base: type[nn.Module]):  # noqa: ANN202
    def forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        d = self.__dict__
        if d.get("_bnas_skip"):
            return first_tensor(args, kwargs)
        ACTIVE[0] += 1
        try:
            s = d["_bnas"]
            if s.writeback and self.training:
                return _forward_writing_back(self, base, s, args, kwargs)
            return base.forward(self, *args, **kwargs)
        finally:
            ACTIVE[0] -= 1

    return forward


def _forward_writing_back(module: nn.Module, base: type, s: ElasticState, args: tuple, kwargs: dict) -> Any:
    s.cache = {n: apply_view(module, module._buffers[n], s.views[n]) for n in s.writeback}
    try:
        return base.forward(module, *args, **kwargs)
    finally:
        cache, s.cache = s.cache, None
        QUIET[0] += 1
        try:
            with torch.no_grad():
                for name, value in cache.items():
                    ((dim, index),) = s.views[name].slices
                    module._buffers[name].index_copy_(dim, index, value)
        finally:
            QUIET[0] -= 1


def _rebuild(base: type[nn.Module], state: dict[str, Any]) -> nn.Module:
    obj = base.__new__(base)
    obj.__dict__.update(state)
    obj.__class__ = elastic_class(base)
    _install_properties(obj.__class__, obj, state["_bnas"].names)
    return obj


def _reduce_ex(self: nn.Module, protocol: int):  # noqa: ANN202
    return _rebuild, (type(self)._bnas_base, dict(self.__dict__))


def _max_kernel(self: nn.Module) -> int | None:
    choices = self.__dict__["_bnas"].kernel_choices
    return choices[0] if choices else None


_CLASSES: dict[type[nn.Module], type[nn.Module]] = {}


def elastic_class(base: type[nn.Module]) -> type[nn.Module]:
    """``Elastic<base>``: ``base`` plus properties (added per name as needed) and a forward that can skip."""
    base = getattr(base, "_bnas_base", base)
    if base not in _CLASSES:
        namespace = {
            "forward": _forward_of(base),
            "__reduce_ex__": _reduce_ex,
            "_bnas_base": base,
            "__module__": base.__module__,
            "to_static": lambda self: static_copy(self),
            "max_kernel": property(_max_kernel),
            "kernel_choices": property(lambda self: self.__dict__["_bnas"].kernel_choices),
        }
        _CLASSES[base] = type(f"Elastic{base.__name__}", (base,), namespace)
    return _CLASSES[base]


def _install_properties(cls: type, module: nn.Module, names: set[str]) -> None:
    for name in names:
        if name in cls.__dict__:
            continue
        if name in module._parameters or name in module._buffers:
            setattr(cls, name, _tensor_property(name))
        else:
            setattr(cls, name, _attr_property(name))


def attribute_overridable(module: nn.Module, name: str) -> bool:
    """An attribute can follow the channels only if it is the instance's own (not a class attribute or property)."""
    base = getattr(type(module), "_bnas_base", type(module))
    return name in module.__dict__ and not any(name in k.__dict__ for k in base.__mro__)


def make_elastic(module: nn.Module, names: set[str] = frozenset()) -> nn.Module:
    """Swap ``module``'s class (in place) to its elastic subclass with properties for ``names``; idempotent."""
    if "_bnas" not in module.__dict__:
        module.__dict__["_bnas"] = ElasticState()
    state = module.__dict__["_bnas"]
    state.names |= set(names)
    module.__class__ = elastic_class(type(module))
    _install_properties(type(module), module, state.names)
    return module


def make_skippable(module: nn.Module) -> nn.Module:
    make_elastic(module)
    module.__dict__["_bnas_skip"] = False
    return module


def is_view_elastic(module: nn.Module) -> bool:
    return hasattr(type(module), "_bnas_base") and "_bnas" in module.__dict__


# ---- extraction --------------------------------------------------------------------------------------------------------
@torch.no_grad()
def materialize(module: nn.Module, memo: dict[int, torch.Tensor]) -> None:
    """In place (on a copy): own parameters and buffers become their active slices as new tensors (one per shared
    tensor: ``memo`` keeps tied weights tied), attributes take their active values, the elastic class goes away."""
    s = module.__dict__.get("_bnas")
    if s is None:
        return
    new: dict[tuple[str, str], torch.Tensor] = {}
    for store_name in ("_parameters", "_buffers"):
        store = module.__dict__[store_name]
        for name, raw in store.items():
            view = s.views.get(name)
            if raw is None or view is None:
                continue
            if id(raw) not in memo:
                t = apply_view(module, raw, replace(view, embed=False)).detach().clone()
                memo[id(raw)] = nn.Parameter(t, requires_grad=raw.requires_grad) if isinstance(raw, nn.Parameter) else t
            new[(store_name, name)] = memo[id(raw)]
    for (store_name, name), t in new.items():
        module.__dict__[store_name][name] = t
    for name in [n for n in module._parameters if n.startswith("kernel_transform_")]:
        del module._parameters[name]
    for name, value in {**s.attrs, **s.extract_attrs}.items():
        module.__dict__[name] = value
    for child, attrs in s.child_attrs.items():
        module._modules[child].__dict__.update(attrs)
    module.__class__ = type(module)._bnas_base
    module.__dict__.pop("_bnas")
    module.__dict__.pop("_bnas_skip", None)


def static_copy(module: nn.Module) -> nn.Module:
    """A plain, physically smaller copy of one elastic module (and its children) at the active subnet."""
    result = copy.deepcopy(module)
    memo: dict[int, torch.Tensor] = {}
    for sub in list(result.modules()):
        if is_view_elastic(sub):
            materialize(sub, memo)
    return result


def tensors_of(obj: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(obj)[0] if isinstance(t, torch.Tensor)]
