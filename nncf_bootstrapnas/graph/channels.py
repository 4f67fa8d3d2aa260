"""Channel-coupling analysis: which channels must shrink together, DepGraph-style, on the traced graph.

Layers with weights create channel groups (producers); residual adds and other elementwise ops merge groups; concat
concatenates layouts; flatten multiplies them; consumers record the layout they read. Anything not understood freezes
only the groups it touches, with the reason kept for the log. Every later structural step reads this one result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from torch import nn

from .layout import Layout, Segment, UnionFind, layout_groups, unify_layouts, with_repeat
from .tracer import Op, TracedGraph, TensorArg

_POINTWISE = {
    "relu", "relu6", "hardtanh", "sigmoid", "hardsigmoid", "hardswish", "silu", "gelu", "tanh", "elu", "selu", "celu",
    "leaky_relu", "softplus", "mish", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout", "abs", "neg", "__neg__", "exp", "log", "sqrt", "rsqrt", "clamp", "clip", "clamp_min",
    "clamp_max", "contiguous", "clone", "float", "double", "half", "bfloat16", "to", "type", "detach", "sign", "square",
    "erf", "sin", "cos", "reciprocal", "nan_to_num", "sigmoid_", "relu_", "hardtanh_", "hardswish_", "silu_",
    "hardsigmoid_", "leaky_relu_", "elu_", "clamp_", "__pos__", "softsign", "tanhshrink", "logsigmoid", "threshold",
    "threshold_", "rrelu", "glu_skip", "requires_grad_", "cpu", "cuda",
}  # fmt: skip
_SPATIAL = {
    "avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "lp_pool1d", "lp_pool2d", "interpolate", "upsample", "upsample_nearest", "upsample_bilinear",
    "max_pool2d_with_indices", "adaptive_max_pool2d_with_indices", "boolean_dispatch",
}  # fmt: skip
_ELEMENTWISE = {
    "add", "sub", "mul", "div", "true_divide", "maximum", "minimum", "where", "pow", "__pow__", "__add__", "__radd__",
    "__iadd__", "__sub__", "__rsub__", "__isub__", "__mul__", "__rmul__", "__imul__", "__truediv__", "__rtruediv__",
    "__itruediv__", "__div__", "add_", "sub_", "mul_", "div_", "addcmul", "lerp", "masked_fill", "fmax", "fmin",
}  # fmt: skip
_REDUCE = {"mean", "sum", "amax", "amin", "max", "min", "norm", "std", "var", "logsumexp", "prod", "argmax", "argmin"}
_ALONG = {"softmax", "log_softmax", "cumsum", "cumprod", "normalize"}  # position-wise: fine along channels
_REORDER = {"flip", "roll", "sort", "topk", "fliplr", "flipud", "argsort"}  # would move channels: not along them
_SPLIT = {"chunk", "split", "unbind", "narrow", "tensor_split", "split_with_sizes", "hsplit", "vsplit"}
_RESHAPE = {"view", "reshape", "view_as", "reshape_as", "unflatten"}
_PERMUTE = {"permute", "transpose", "swapaxes", "swapdims", "t", "T", "mT", "movedim", "moveaxis"}
_CAT = {"cat", "concat", "concatenate"}


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


def _tensor_args(obj) -> list[TensorArg]:  # noqa: ANN001
    if isinstance(obj, TensorArg):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensor_args(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensor_args(o)]
    return []


def _arg(op: Op, pos: int, name: str, default=None):  # noqa: ANN001, ANN202
    if name in op.kwargs:
        return op.kwargs[name]
    return op.args[pos] if len(op.args) > pos else default


class _Propagator:
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
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
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

    def function_op(self, op: Op) -> None:
        name = op.name
        base = name.rstrip("_") if name.endswith("_") and not name.startswith("__") else name
        outs = op.outputs
        x = op.inputs[0] if op.inputs else None
        if base in _POINTWISE or name in _POINTWISE:
            ann = self.ann(x)
            if all(self.g.shape(o) == self.g.shape(x) for o in outs):
                for o in outs:
                    self.set_ann(o, dict(ann))
            else:
                self.block_inputs(op, "shape-changing op")
        elif base in _SPATIAL:
            ann = dict(self.ann(x))
            if set(ann) - {1} or any(self.g.shape(o)[1] != self.g.shape(x)[1] for o in outs):
                self.block_inputs(op, "pooling over channels")
            else:
                for o in outs:
                    self.set_ann(o, dict(ann))
        elif base in _ELEMENTWISE or name in _ELEMENTWISE:
            self.elementwise(op)
        elif base in _CAT:
            self.concat(op)
        elif base in _RESHAPE or base == "flatten":
            self.reshape(op)
        elif base in _PERMUTE:
            self.permute(op)
        elif base in ("unsqueeze", "squeeze", "expand", "expand_as", "broadcast_to"):
            self.align_right_or_by_shape(op)
        elif base in _REDUCE or base in _ALONG or base in _REORDER:
            self.reduce(op, base)
        elif base in _SPLIT:
            dim = _arg(op, 2 if base in ("narrow",) else 2, "dim", 0)
            dim = dim % len(self.g.shape(x)) if isinstance(dim, int) else None
            ann = self.ann(x)
            if dim is None or dim in ann:
                self.block_inputs(op, "split along channels")
                return
            for o in outs:
                if len(self.g.shape(o)) == len(self.g.shape(x)):
                    self.set_ann(o, dict(ann))
                else:
                    self.set_ann(o, {(d if d < dim else d - 1): lay for d, lay in ann.items()})
        elif base == "__getitem__":
            self.getitem(op)
        elif base == "pad":
            pad = _arg(op, 1, "pad", ())
            nd = len(self.g.shape(x))
            padded = set(range(nd - len(pad) // 2, nd))
            if padded & set(self.ann(x)):
                self.block_inputs(op, "padding along channels")
            else:
                self.set_ann(outs[0], dict(self.ann(x)))
        else:
            self.block_inputs(op, "unsupported op")

    def elementwise(self, op: Op) -> None:
        out = op.outputs[0]
        oshape = self.g.shape(out)
        n = len(oshape)
        operands: list[tuple[tuple[int, ...], dict[int, Layout]]] = []
        for t in _tensor_args(op.args) + _tensor_args(op.kwargs):
            operands.append((self.g.shape(t.vid), self.ann(t.vid)))
        for pname in op.params:
            operands.append((self.param_shapes.get(pname, ()), {}))
        result: dict[int, Layout] = {}
        for d in range(n):
            if oshape[d] == 1:
                continue
            layouts, fixed = [], False
            for shape, ann in operands:
                k = d - (n - len(shape))
                if k < 0 or shape[k] != oshape[d]:
                    continue
                if k in ann:
                    layouts.append(ann[k])
                else:
                    fixed = True
            if not layouts:
                continue
            groups = set().union(*(layout_groups(lay) for lay in layouts))
            if fixed:
                self.a.freeze(groups, f"combined with a fixed-size tensor ({self.where(op)}: {op.name})")
                continue
            merged, frozen = unify_layouts(self.a.uf, layouts)
            if merged is None:
                self.a.freeze(frozen, f"incompatible layouts meet ({self.where(op)}: {op.name})")
                continue
            result[d] = merged
        self.set_ann(out, result)

    def concat(self, op: Op) -> None:
        tensors = _tensor_args(op.args[0] if op.args else op.kwargs.get("tensors", []))
        out = op.outputs[0]
        n = len(self.g.shape(out))
        dim = _arg(op, 1, "dim", 0) % n
        along: list[Segment] = []
        others: dict[int, list[Layout]] = {}
        fixed_other: dict[int, bool] = {}
        for t in tensors:
            ann = self.ann(t.vid)
            along.extend(ann.get(dim, (Segment(None, self.g.shape(t.vid)[dim]),)))
            for d in range(n):
                if d == dim:
                    continue
                if d in ann:
                    others.setdefault(d, []).append(ann[d])
                else:
                    fixed_other[d] = True
        result: dict[int, Layout] = {}
        if any(s.group is not None for s in along):
            result[dim] = tuple(along)
        for d, layouts in others.items():
            groups = set().union(*(layout_groups(lay) for lay in layouts))
            merged, frozen = unify_layouts(self.a.uf, layouts) if not fixed_other.get(d) else (None, groups)
            if merged is None:
                self.a.freeze(frozen, f"concatenated with fixed channels ({self.where(op)})")
            else:
                result[d] = merged
        self.set_ann(out, result)

    def reshape(self, op: Op) -> None:
        x, out = op.inputs[0], op.outputs[0]
        ishape, oshape = self.g.shape(x), self.g.shape(out)
        explicit = {a for a in _flat_ints(op.args[1:]) + _flat_ints(list(op.kwargs.values()))}
        result: dict[int, Layout] = {}
        for d, layout in self.ann(x).items():
            before = math.prod(ishape[:d])
            j, acc = 0, 1
            while j < len(oshape) and acc < before:
                acc *= oshape[j]
                j += 1
            while j < len(oshape) and oshape[j] == 1 and ishape[d] != 1 and acc == before:
                j += 1
            ok = acc == before and j < len(oshape) and oshape[j] % ishape[d] == 0
            if ok and oshape[j] != ishape[d]:
                # merged with the following dims: they must multiply to exactly oshape[j] / channels
                tail, e = 1, d + 1
                while e < len(ishape) and tail < oshape[j] // ishape[d]:
                    tail *= ishape[e]
                    e += 1
                ok = tail == oshape[j] // ishape[d]
            if not ok or (op.name not in ("flatten",) and oshape[j] in explicit and oshape[j] != 1):
                why = "channels split by a reshape" if ok is False else "hard-coded channel count in a reshape"
                self.a.freeze(layout_groups(layout), f"{why} ({self.where(op)}: {op.name})")
                continue
            result[j] = with_repeat(layout, oshape[j] // ishape[d])
        self.set_ann(out, result)

    def permute(self, op: Op) -> None:
        x, out = op.inputs[0], op.outputs[0]
        n = len(self.g.shape(x))
        base = op.name
        order = list(range(n))
        if base == "permute":
            dims = op.args[1:] if len(op.args) > 2 else _arg(op, 1, "dims", ())
            order = [int(d) % n for d in (dims[0] if len(dims) == 1 and isinstance(dims[0], (list, tuple)) else dims)]
        elif base in ("transpose", "swapaxes", "swapdims"):
            a, b = int(_arg(op, 1, "dim0")) % n, int(_arg(op, 2, "dim1")) % n
            order[a], order[b] = order[b], order[a]
        elif base in ("t", "T", "mT"):
            order[-1], order[-2] = order[-2], order[-1]
        else:
            self.block_inputs(op, "unsupported dimension move")
            return
        ann = self.ann(x)
        self.set_ann(out, {order.index(d): lay for d, lay in ann.items()})

    def align_right_or_by_shape(self, op: Op) -> None:
        x, out = op.inputs[0], op.outputs[0]
        ishape, oshape = self.g.shape(x), self.g.shape(out)
        result: dict[int, Layout] = {}
        non_one_in = [d for d in range(len(ishape)) if ishape[d] != 1]
        non_one_out = [d for d in range(len(oshape)) if oshape[d] != 1]
        for d, layout in self.ann(x).items():
            if op.name.startswith(("unsqueeze", "squeeze")) and len(non_one_in) == len(non_one_out):
                result[non_one_out[non_one_in.index(d)]] = layout
            elif op.name.startswith(("expand", "broadcast")) and oshape[d + len(oshape) - len(ishape)] == ishape[d]:
                result[d + len(oshape) - len(ishape)] = layout
            else:
                self.a.freeze(layout_groups(layout), f"unsupported broadcast ({self.where(op)}: {op.name})")
        self.set_ann(out, result)

    def reduce(self, op: Op, base: str) -> None:
        """Reducing over channels is exact on any width (the extracted layer reduces the same channels); reordering
        along channels is not (a prefix would stop being a prefix)."""
        x = op.inputs[0]
        n = len(self.g.shape(x))
        dim = _arg(op, 1, "dim", None)
        ann = self.ann(x)
        dims = set(range(n)) if dim is None else {int(d) % n for d in (dim if isinstance(dim, (list, tuple)) else [dim])}
        if base in _REORDER and dims & set(ann):
            self.block_inputs(op, "reordering along channels")
            return
        for o in op.outputs:
            shape = self.g.shape(o)
            if len(shape) == n:
                self.set_ann(o, {d: lay for d, lay in ann.items() if shape[d] == self.g.shape(x)[d]})
            else:
                self.set_ann(o, {d - sum(r < d for r in dims): lay for d, lay in ann.items() if d not in dims})

    def getitem(self, op: Op) -> None:
        x, out = op.inputs[0], op.outputs[0]
        index = op.args[1] if len(op.args) > 1 else ()
        index = index if isinstance(index, tuple) else (index,)
        ann = self.ann(x)
        if any(isinstance(i, (TensorArg, list)) for i in index):
            self.block_inputs(op, "advanced indexing")
            return
        n_in = len(self.g.shape(x))
        consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
        expanded: list = []
        for i in index:
            if i is Ellipsis:
                expanded.extend([slice(None)] * (n_in - consumed))
            else:
                expanded.append(i)
        expanded.extend([slice(None)] * (n_in - sum(1 for i in expanded if i is not None)))
        result: dict[int, Layout] = {}
        din = dout = 0
        for i in expanded:
            if i is None:
                dout += 1
                continue
            if din in ann:
                if isinstance(i, slice) and i == slice(None):
                    result[dout] = ann[din]
                else:
                    self.a.freeze(layout_groups(ann[din]), f"channels sliced by indexing ({self.where(op)})")
            din += 1
            if isinstance(i, slice):
                dout += 1
        self.set_ann(out, result)


def _elastic_heads(module: nn.MultiheadAttention) -> bool:
    return bool(
        module._qkv_same_embed_dim and module.in_proj_weight is not None and module.bias_k is None
        and not module.add_zero_attn and module.num_heads > 1
    )  # fmt: skip


def _flat_ints(obj) -> list[int]:  # noqa: ANN001
    if isinstance(obj, bool):
        return []
    if isinstance(obj, int):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [i for o in obj for i in _flat_ints(o)]
    return []


def analyse_channels(graph: TracedGraph, model: nn.Module) -> ChannelAnalysis:
    """Propagate channel layouts through the traced graph of ``model``."""
    opaque = set()
    for op in graph.ops:
        for pname in op.params:
            owner = graph.param_owner.get(pname)
            if owner is not None and owner in graph.leaf_calls:
                opaque.add(owner)
    return _Propagator(graph, model, opaque).run()
