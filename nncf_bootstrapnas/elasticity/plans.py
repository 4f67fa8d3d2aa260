"""Per-module plans: which of a module's tensors and attributes follow which channel layouts, and their active values.

Built once from the analysis (only layouts that contain a width variable matter); ``apply`` turns a subnet's widths
and kernels into the module's ``ElasticState`` (tensor views, attribute values, legacy per-layer indices).
Attributes that ``forward`` reads follow the tensors: a convolution's ``in_channels``/``out_channels``/``groups``, a
linear's ``in_features``/``out_features``, a norm's ``num_features``/``normalized_shape``/``num_groups``, an
embedding's ``embedding_dim``, and counts the analysis matched to a module attribute (``num_heads``, ``attn_dim``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..graph.analysis import AnalysedGraph
from ..graph.channels import LayerUse
from ..graph.layout import Layout, active_indices, active_length, layout_groups, layout_length
from .kernel import KernelPlan, extraction_attrs, supernet_attrs
from .views import ElasticState, Index, TensorView, attribute_overridable

Lengths = Callable[[str, int], int]


@dataclass
class ModulePlan:
    path: str
    module: nn.Module
    tensors: dict[str, list[tuple[int, Layout]]] = field(default_factory=dict)  # local name -> bound dims
    attrs: dict[str, tuple[Layout, str]] = field(default_factory=dict)  # analysis-matched attributes
    layer: LayerUse | None = None
    kernel: KernelPlan | None = None

    def names(self) -> set[str]:
        """Properties the module's class needs."""
        names = set(self.tensors) | set(self.attrs)
        if self.kernel is not None:
            names |= {"weight", "kernel_size", "padding"}
        names |= set(_standard_attr_names(self.module))
        return {n for n in names if n in self.tensors or n == "weight" or attribute_overridable(self.module, n)}


def _standard_attr_names(module: nn.Module) -> tuple[str, ...]:
    if isinstance(module, nn.modules.conv._ConvNd):
        return ("in_channels", "out_channels", "groups")
    if isinstance(module, nn.Linear):
        return ("in_features", "out_features")
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return ("num_features",)
    if isinstance(module, nn.LayerNorm):
        return ("normalized_shape",)
    if isinstance(module, nn.GroupNorm):
        return ("num_channels", "num_groups")
    if isinstance(module, nn.Embedding):
        return ("embedding_dim",)
    return ()


def _standard_attrs(plan: ModulePlan, length: Lengths) -> dict[str, Any]:
    m, d = plan.module, plan.module.__dict__
    if isinstance(m, nn.modules.conv._ConvNd) and "weight" in m._parameters:
        groups = d["groups"]
        if plan.layer is not None and plan.layer.mode in ("channelwise", "grouped"):
            out = length("weight", 0)
            active_groups = out // (d["out_channels"] // groups)
            return {"in_channels": active_groups * (d["in_channels"] // groups), "out_channels": out,
                    "groups": active_groups}  # fmt: skip
        if d["transposed"]:
            return {"in_channels": length("weight", 0), "out_channels": length("weight", 1) * groups}
        return {"out_channels": length("weight", 0), "in_channels": length("weight", 1) * groups}
    if isinstance(m, nn.Linear):
        return {"in_features": length("weight", 1), "out_features": length("weight", 0)}
    if isinstance(m, nn.modules.batchnorm._NormBase):
        name = "weight" if m._parameters.get("weight") is not None else "running_mean"
        return {"num_features": length(name, 0)} if _has(m, name) else {}
    if isinstance(m, nn.LayerNorm) and m._parameters.get("weight") is not None:
        return {"normalized_shape": tuple(length("weight", i) for i in range(len(d["normalized_shape"])))}
    if isinstance(m, nn.GroupNorm) and m._parameters.get("weight") is not None:
        c, full, groups = length("weight", 0), d["num_channels"], d["num_groups"]
        return {"num_channels": c, "num_groups": 1 if groups == 1 else c * groups // full}
    if isinstance(m, nn.Embedding):
        return {"embedding_dim": length("weight", 1)}
    return {}


def _has(module: nn.Module, name: str) -> bool:
    return module._parameters.get(name) is not None or module._buffers.get(name) is not None


def build_plans(
    model: nn.Module, analysis: AnalysedGraph, variable_roots: set[int], kernels: dict[str, KernelPlan]
) -> list[ModulePlan]:
    """Plans for every module whose tensors or attributes follow a width variable, or whose kernel is elastic."""
    ch = analysis.channels
    plans: dict[str, ModulePlan] = {}

    def plan_of(path: str) -> ModulePlan:
        if path not in plans:
            plans[path] = ModulePlan(path, model.get_submodule(path) if path else model)
        return plans[path]

    def variable(layout: Layout) -> bool:
        return any(ch.root(g) in variable_roots for g in layout_groups(layout))

    for (pname, dim), layout in ch.params.items():
        if not variable(layout):
            continue
        for path, local in analysis.graph.param_owners.get(pname, []):
            plan_of(path).tensors.setdefault(local, []).append((dim, layout))
    for (path, attr), (layout, form) in ch.attrs.items():
        if variable(layout):
            plan_of(path).attrs[attr] = (layout, form)
    for path, kernel in kernels.items():
        plan_of(path).kernel = kernel
    for use in ch.layers:
        if use.graph == 0 and use.module in plans and plans[use.module].layer is None:
            plans[use.module].layer = use
    return [plans[p] for p in sorted(plans, key=lambda p: (p.count("."), p))]


def accessors(analysis: AnalysedGraph, plans: list[ModulePlan]) -> set[str]:
    """Modules whose own ``forward`` reads a planned tensor: they must turn the views on when called directly."""
    owned = {(p.path, local) for p in plans for local in p.tensors}
    names = {pname for pname, owners in analysis.graph.param_owners.items() if any(o in owned for o in owners)}
    return {op.scope[-1] if op.scope else "" for g in analysis.graphs for op in g.ops if names & set(op.params)}


class Activation:
    """Computes module states for one subnet, caching the indices of each layout."""

    def __init__(self, width_of: Callable[[int], int], kernels: dict[str, int]) -> None:
        self.width_of = width_of
        self.kernels = kernels
        self._indices: dict[Layout, Index] = {}
        self._lengths: dict[Layout, int] = {}

    def index(self, layout: Layout) -> Index:
        if layout not in self._indices:
            self._indices[layout] = active_indices(layout, self.width_of)
        return self._indices[layout]

    def length(self, layout: Layout) -> int:
        if layout not in self._lengths:
            self._lengths[layout] = active_length(layout, self.width_of)
        return self._lengths[layout]

    def apply(self, plan: ModulePlan) -> None:
        module, s = plan.module, plan.module.__dict__["_bnas"]
        kernel = self.kernels.get(plan.path)
        full_kernel = plan.kernel is None or kernel == plan.kernel.choices[0]
        views: dict[str, TensorView] = {}
        lengths: dict[tuple[str, int], int] = {}
        for local, dims in plan.tensors.items():
            slices = []
            for dim, layout in dims:
                index = self.index(layout)
                if index is not None:
                    slices.append((dim, index))
                    lengths[(local, dim)] = self.length(layout)
            k = kernel if local == "weight" and not full_kernel else None
            if slices or k is not None:
                views[local] = TensorView(tuple(slices), k, bool(k is not None and plan.kernel.embed))
        if not full_kernel and "weight" not in views:
            views["weight"] = TensorView((), kernel, plan.kernel.embed)

        def length(local: str, dim: int) -> int:
            if (local, dim) in lengths:
                return lengths[(local, dim)]
            t = module._parameters.get(local)
            t = module._buffers.get(local) if t is None else t
            return t.shape[dim]

        attrs = _standard_attrs(plan, length) if views else {}
        for attr, (layout, form) in plan.attrs.items():
            value = self.length(layout)
            if form.startswith("tuple:"):
                j, original = int(form[6:]), tuple(module.__dict__[attr])
                attrs[attr] = type(module.__dict__[attr])(original[:j] + (value,) + original[j + 1 :])
            else:
                attrs[attr] = (value,) if form == "tuple" else value
        s.kernel = kernel if plan.kernel is not None else None
        s.extract_attrs, s.child_attrs = {}, {}
        if not full_kernel:
            attrs.update(supernet_attrs(module, plan.kernel, kernel))
            s.extract_attrs, s.child_attrs = extraction_attrs(module, plan.kernel, kernel)
        s.views = views
        s.attrs = {a: v for a, v in attrs.items() if module.__dict__.get(a, object()) != v}
        s.writeback = tuple(n for n, v in views.items() if n in module._buffers and len(v.slices) == 1
                            and isinstance(v.slices[0][1], torch.Tensor))  # fmt: skip
        _legacy_indices(plan, s, views)


def _legacy_indices(plan: ModulePlan, s: ElasticState, views: dict[str, TensorView]) -> None:
    """``out_index``/``in_index``/``channel_index`` of the weight, for per-channel quantizer slicing."""
    s.out_index = s.in_index = s.channel_index = None
    view = views.get("weight") or views.get("running_mean")
    if view is None or plan.layer is None:
        return
    by_dim = dict(view.slices)
    layer = plan.layer
    if layer.kind == "norm" or layer.mode in ("channelwise", "grouped"):
        s.channel_index = by_dim.get(0)
    else:
        s.out_index = by_dim.get(layer.out_dim) if layer.out_dim is not None else None
        s.in_index = by_dim.get(layer.in_dim) if layer.in_dim is not None else None


def layout_full(layout: Layout) -> int:
    return layout_length(layout)
