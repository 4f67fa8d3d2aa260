"""Channel-layout rules for function ops (elementwise, concat, reshape, permute, reductions, indexing).

Mixed into the propagator of ``channels.py``; each rule maps the input layouts of one op to its output layouts,
merging groups that meet and freezing (with a reason) groups whose channels it would mix.
"""

from __future__ import annotations

import math

from .layout import Layout, Segment, layout_groups, unify_layouts, with_repeat
from .tracer import Op, TensorArg

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


def _flat_ints(obj) -> list[int]:  # noqa: ANN001
    if isinstance(obj, bool):
        return []
    if isinstance(obj, int):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [i for o in obj for i in _flat_ints(o)]
    return []


class FunctionRules:
    """Needs ``self.g`` (traced graph), ``self.a`` (analysis), ``self.ann/set_ann/block_inputs/where``."""

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
        dims = (
            set(range(n)) if dim is None else {int(d) % n for d in (dim if isinstance(dim, (list, tuple)) else [dim])}
        )
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
