"""Channel-coupling analysis: which channels must shrink together, DepGraph-style, on the traced graph.

Layers with weights create channel groups (producers); residual adds and other elementwise ops merge groups; concat
concatenates layouts; flatten multiplies them; consumers record the layout they read. Anything not understood freezes
only the groups it touches, with the reason kept for the log. Every later structural step reads this one result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from .function_rules import FunctionRules
from .layout import Layout, Segment, UnionFind, layout_groups, unify_layouts
from .tracer import Op, TracedGraph


@dataclass
class ChannelUse:
    """A layer parameter dimension that follows a channel layout."""

    module: str
    layout: Layout


@dataclass
class ChannelAnalysis:
    uf: UnionFind
    producers: dict[str, int] = field(default_factory=dict)  # module -> group of its output channels
    consumers: dict[str, Layout] = field(default_factory=dict)  # module -> layout of its input channels
    channelwise: dict[str, Layout] = field(default_factory=dict)  # BN/LN/depthwise conv -> layout of their channels
    heads: dict[str, int] = field(default_factory=dict)  # nn.MultiheadAttention -> group of its head channels
    frozen: dict[int, str] = field(default_factory=dict)  # group -> first reason it cannot change width
    annotations: dict[int, dict[int, Layout]] = field(default_factory=dict)  # value id -> {dim: layout}

    def root(self, group: int) -> int:
        return self.uf.find(group)

    def is_frozen(self, group: int) -> bool:
        return self.root(group) in self.frozen

    def freeze(self, groups: set[int] | list[int], reason: str) -> None:
        for g in groups:
            self.frozen.setdefault(self.root(g), reason)

    def finalize(self) -> None:
        """Re-key frozen reasons by final roots (unions may happen after a freeze)."""
        reasons: dict[int, str] = {}
        for g, why in self.frozen.items():
            reasons.setdefault(self.root(g), why)
        self.frozen = reasons


class _Propagator(FunctionRules):
    def __init__(self, graph: TracedGraph, model: nn.Module, opaque: set[str]) -> None:
        self.g = graph
        self.model = model
        self.opaque = opaque
        self.a = ChannelAnalysis(UnionFind())
        self.param_shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
        self.param_shapes.update({n: tuple(b.shape) for n, b in model.named_buffers()})

    # ---- helpers ----------------------------------------------------------------------------------------------------
    def ann(self, vid: int) -> dict[int, Layout]:
        return self.a.annotations.get(vid, {})

    def set_ann(self, vid: int, ann: dict[int, Layout]) -> None:
        if ann:
            self.a.annotations[vid] = ann

    def block_inputs(self, op: Op, why: str) -> None:
        for vid in op.inputs:
            for layout in self.ann(vid).values():
                self.a.freeze(layout_groups(layout), f"{why} ({'/'.join(op.scope[-1:]) or 'model'}: {op.name})")

    def where(self, op: Op) -> str:
        return op.module or (op.scope[-1] if op.scope else "model")

    # ---- ops --------------------------------------------------------------------------------------------------------
    def run(self) -> ChannelAnalysis:
        for op in self.g.ops:
            if not any(self.ann(v) for v in op.inputs) and op.kind == "function":
                continue
            if op.kind == "module":
                self.module_op(op)
            else:
                self.function_op(op)
        for vid in self.g.outputs:
            for layout in self.ann(vid).values():
                self.a.freeze(layout_groups(layout), "reaches a model output")
        self.a.finalize()
        return self.a

    def module_op(self, op: Op) -> None:
        module = self.model.get_submodule(op.module)
        x = op.inputs[0] if op.inputs else None
        ann = dict(self.ann(x)) if x is not None else {}
        out = op.outputs[0] if op.outputs else None
        if op.module in self.opaque:
            self.block_inputs(op, "its weights are also used outside the layer")
            return
        shape_in = self.g.shape(x) if x is not None else ()
        if isinstance(
            module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
        ):
            in_layout = ann.pop(1, None)
            if ann:
                self.block_inputs(op, "channels in a spatial dimension")
            transposed = isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
            if module.groups == 1:
                if in_layout is not None:
                    self.add_use(self.a.consumers, op.module, in_layout)
                self.set_ann(out, {1: (Segment(self.producer(op.module, module.out_channels), module.out_channels),)})
            elif not transposed and module.groups == module.in_channels == module.out_channels:
                if in_layout is not None:
                    self.add_use(self.a.channelwise, op.module, in_layout)
                    self.set_ann(out, {1: in_layout})
            elif in_layout is not None:
                self.a.freeze(layout_groups(in_layout), f"grouped convolution {op.module} (groups={module.groups})")
        elif isinstance(module, nn.Linear):
            last = len(shape_in) - 1
            in_layout = ann.pop(last, None)
            if in_layout is not None:
                self.add_use(self.a.consumers, op.module, in_layout)
            ann[last] = (Segment(self.producer(op.module, module.out_features), module.out_features),)
            self.set_ann(out, ann)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            if 1 in ann:
                self.add_use(self.a.channelwise, op.module, ann[1])
            self.set_ann(out, ann)
        elif isinstance(module, nn.LayerNorm):
            last = len(shape_in) - 1
            normalized = set(range(len(shape_in) - len(module.normalized_shape), len(shape_in)))
            if len(module.normalized_shape) == 1 and last in ann:
                self.add_use(self.a.channelwise, op.module, ann[last])
            elif normalized & set(ann):
                self.block_inputs(op, "LayerNorm over several dimensions")
                ann = {d: lay for d, lay in ann.items() if d not in normalized}
            self.set_ann(out, ann)
        elif isinstance(module, nn.MultiheadAttention) and _elastic_heads(module):
            # heads shrink inside the layer; the embedding stream around it keeps its width
            self.block_inputs(op, "attention keeps its embedding width")
            if op.module not in self.a.heads:
                self.a.heads[op.module] = self.a.uf.add(module.embed_dim)
        else:
            self.block_inputs(op, f"{type(module).__name__} is not elastic")

    def producer(self, module: str, size: int) -> int:
        if module not in self.a.producers:
            self.a.producers[module] = self.a.uf.add(size)
        return self.a.producers[module]

    def add_use(self, table: dict[str, Layout], module: str, layout: Layout) -> None:
        if module in table:  # a layer called more than once: both inputs must shrink alike
            merged, frozen = unify_layouts(self.a.uf, [table[module], layout])
            if merged is None:
                self.a.freeze(frozen, f"{module} is called on differently structured inputs")
            return
        table[module] = layout


def _elastic_heads(module: nn.MultiheadAttention) -> bool:
    return bool(
        module._qkv_same_embed_dim and module.in_proj_weight is not None and module.bias_k is None
        and not module.add_zero_attn and module.num_heads > 1
    )  # fmt: skip


def analyse_channels(graph: TracedGraph, model: nn.Module) -> ChannelAnalysis:
    """Propagate channel layouts through the traced graph of ``model``."""
    opaque = set()
    for op in graph.ops:
        for pname in op.params:
            owner = graph.param_owner.get(pname)
            if owner is not None and owner in graph.leaf_calls:
                opaque.add(owner)
    return _Propagator(graph, model, opaque).run()
