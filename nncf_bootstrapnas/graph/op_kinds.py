"""Op names by kind and the pure dimension maps shape rules share (reshape, permute, broadcast, indexing)."""

from __future__ import annotations

import math

from .tracer import Op, TensorArg

POINTWISE = {
    "relu", "relu6", "hardtanh", "sigmoid", "hardsigmoid", "hardswish", "silu", "gelu", "tanh", "elu", "selu", "celu",
    "leaky_relu", "softplus", "mish", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
    "feature_alpha_dropout", "abs", "neg", "__neg__", "exp", "log", "sqrt", "rsqrt", "clamp", "clip", "clamp_min",
    "clamp_max", "contiguous", "clone", "float", "double", "half", "bfloat16", "to", "type", "type_as", "detach", "sign",
    "square", "erf", "sin", "cos", "reciprocal", "nan_to_num", "__pos__", "softsign", "tanhshrink", "logsigmoid",
    "threshold", "rrelu", "glu_skip", "requires_grad_", "cpu", "cuda", "zeros_like", "ones_like", "empty_like",
    "full_like", "rand_like", "randn_like", "bernoulli", "data", "log1p", "expm1", "sigmoid_", "floor", "ceil", "round",
    "trunc", "frac", "__invert__", "logical_not", "isnan", "isinf", "isfinite", "__abs__", "hardshrink", "softshrink",
}  # fmt: skip
SPATIAL = {
    "avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "lp_pool1d", "lp_pool2d", "interpolate", "upsample", "upsample_nearest", "upsample_bilinear",
    "max_pool2d_with_indices", "adaptive_max_pool2d_with_indices", "boolean_dispatch", "max_pool1d_with_indices",
    "max_pool3d_with_indices", "fractional_max_pool2d",
}  # fmt: skip
ELEMENTWISE = {
    "add", "sub", "mul", "div", "true_divide", "maximum", "minimum", "where", "pow", "__pow__", "__rpow__", "__add__",
    "__radd__", "__iadd__", "__sub__", "__rsub__", "__isub__", "__mul__", "__rmul__", "__imul__", "__truediv__",
    "__rtruediv__", "__itruediv__", "__div__", "addcmul", "addcdiv", "lerp", "masked_fill", "fmax", "fmin", "rsub",
    "__and__", "__or__", "__xor__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "eq", "ne", "lt", "le",
    "gt", "ge", "logical_and", "logical_or", "copysign", "atan2", "__floordiv__", "floor_divide", "remainder", "fmod",
    "__mod__", "hypot", "xlogy", "heaviside", "copy_",
}  # fmt: skip
REDUCE = {"mean", "sum", "amax", "amin", "max", "min", "norm", "std", "var", "logsumexp", "prod", "argmax", "argmin",
          "all", "any", "var_mean", "std_mean", "nansum", "nanmean", "median", "count_nonzero"}  # fmt: skip
ALONG = {"softmax", "log_softmax", "cumsum", "cumprod", "normalize", "_softmax"}  # position-wise along channels
REORDER = {"flip", "roll", "sort", "topk", "fliplr", "flipud", "argsort"}  # would move channels: not along them
SPLIT = {"chunk", "split", "unbind", "narrow", "tensor_split", "split_with_sizes", "hsplit", "vsplit"}
RESHAPE = {"view", "reshape", "view_as", "reshape_as", "unflatten", "flatten"}
PERMUTE = {"permute", "transpose", "swapaxes", "swapdims", "t", "T", "mT", "movedim", "moveaxis"}
BROADCAST = {"unsqueeze", "squeeze", "expand", "expand_as", "broadcast_to"}
CAT = {"cat", "concat", "concatenate", "stack"}


def arg(op: Op, pos: int, name: str, default=None):  # noqa: ANN001, ANN201
    if name in op.kwargs:
        return op.kwargs[name]
    return op.args[pos] if len(op.args) > pos else default


def flat_ints(obj) -> list[int]:  # noqa: ANN001
    if isinstance(obj, bool):
        return []
    if isinstance(obj, int):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [i for o in obj for i in flat_ints(o)]
    return []


def base_name(name: str) -> str:
    return name[:-1] if name.endswith("_") and not name.startswith("__") else name


def reshape_map(ishape: tuple[int, ...], oshape: tuple[int, ...], d: int) -> tuple[str, int, object] | None:
    """Where input dimension ``d`` goes in a reshape: ``("merge", j, factor)`` (dimension ``j`` holds it, each entry
    repeated ``factor`` times by the trailing input dimensions merged into it) or ``("split", j, sizes)``."""
    before = math.prod(ishape[:d])
    j, acc = 0, 1
    while j < len(oshape) and acc < before:
        acc *= oshape[j]
        j += 1
    while j < len(oshape) and oshape[j] == 1 and ishape[d] != 1 and acc == before:
        j += 1
    if acc != before or j >= len(oshape):
        return _tiled(ishape, oshape, d)
    if oshape[j] % ishape[d] == 0:
        tail, e = 1, d + 1
        while e < len(ishape) and tail < oshape[j] // ishape[d]:
            tail *= ishape[e]
            e += 1
        return ("merge", j, tail) if tail == oshape[j] // ishape[d] else None
    if oshape[j] < ishape[d]:
        sizes, prod = [], 1
    else:
        return _tiled(ishape, oshape, d)
    while j + len(sizes) < len(oshape) and prod < ishape[d]:
        prod *= oshape[j + len(sizes)]
        sizes.append(oshape[j + len(sizes)])
    return ("split", j, tuple(sizes)) if prod == ishape[d] and len(sizes) > 1 else None


def _tiled(ishape: tuple[int, ...], oshape: tuple[int, ...], d: int) -> tuple[str, int, int] | None:
    """Dimension ``d`` merged with the ``k`` dimensions before it (``(2, 2, C) -> 4C`` in patch merging):
    ``("tile", j, copies)`` - the output dimension ``j`` holds ``copies`` consecutive copies of its layout."""
    for k in range(1, d + 1):
        before = math.prod(ishape[: d - k])
        j, acc = 0, 1
        while j < len(oshape) and acc < before:
            acc *= oshape[j]
            j += 1
        if acc == before and j < len(oshape) and oshape[j] == math.prod(ishape[d - k : d + 1]):
            return "tile", j, math.prod(ishape[d - k : d])
    return None


def permutation(op: Op, n: int) -> list[int] | None:
    """``order`` such that output dimension ``i`` is input dimension ``order[i]``."""
    order = list(range(n))
    name = op.name
    if name == "permute":
        dims = op.args[1:] if len(op.args) > 2 else arg(op, 1, "dims", ())
        dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (list, tuple)) else dims
        return [int(d) % n for d in dims]
    if name in ("transpose", "swapaxes", "swapdims"):
        a, b = int(arg(op, 1, "dim0")) % n, int(arg(op, 2, "dim1")) % n
        order[a], order[b] = order[b], order[a]
        return order
    if name in ("t", "T", "mT") and n >= 2:
        order[-1], order[-2] = order[-2], order[-1]
        return order
    if name in ("movedim", "moveaxis"):
        src, dst = arg(op, 1, "source"), arg(op, 2, "destination")
        src = [src] if isinstance(src, int) else list(src)
        dst = [dst] if isinstance(dst, int) else list(dst)
        rest = [i for i in range(n) if i not in [s % n for s in src]]
        out: list[int | None] = [None] * n
        for s, t in zip(src, dst):
            out[t % n] = s % n
        it = iter(rest)
        return [o if o is not None else next(it) for o in out]
    return None


def broadcast_map(ishape: tuple[int, ...], oshape: tuple[int, ...], name: str, d: int) -> int | None:
    non_one_in = [i for i in range(len(ishape)) if ishape[i] != 1]
    non_one_out = [i for i in range(len(oshape)) if oshape[i] != 1]
    if name.startswith(("unsqueeze", "squeeze")) and len(non_one_in) == len(non_one_out) and d in non_one_in:
        return non_one_out[non_one_in.index(d)]
    j = d + len(oshape) - len(ishape)
    if name.startswith(("expand", "broadcast")) and 0 <= j < len(oshape) and oshape[j] == ishape[d]:
        return j
    return None


def _whole(index: slice, size: int) -> bool:
    """``[:]`` or ``[:n]`` with ``n`` >= the size: keeps every entry at this width and at any smaller one."""
    start_ok = index.start in (None, 0)
    step_ok = index.step in (None, 1)
    stop_ok = index.stop is None or (isinstance(index.stop, int) and index.stop >= size)
    return start_ok and step_ok and stop_ok


def getitem_map(op: Op, shape: tuple[int, ...]) -> tuple[dict[int, int], set[int]] | None:
    """(input dim -> output dim for dimensions kept whole, input dims indexed otherwise); ``None``: advanced index."""
    n_in = len(shape)
    index = op.args[1] if len(op.args) > 1 else ()
    index = index if isinstance(index, tuple) else (index,)
    if any(isinstance(i, (TensorArg, list)) or (not isinstance(i, (int, slice)) and i not in (None, Ellipsis))
           for i in index):  # fmt: skip
        return None
    consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
    expanded: list = []
    for i in index:
        expanded.extend([slice(None)] * (n_in - consumed) if i is Ellipsis else [i])
    expanded.extend([slice(None)] * (n_in - sum(1 for i in expanded if i is not None)))
    kept, cut = {}, set()
    din = dout = 0
    for i in expanded:
        if i is None:
            dout += 1
            continue
        if isinstance(i, slice) and _whole(i, shape[din]):
            kept[din] = dout
        else:
            cut.add(din)
        din += 1
        if isinstance(i, slice):
            dout += 1
    return kept, cut
