"""Eager tracing of a model into a flat list of ops, keeping module boundaries.

Why our own tracer rather than torch.fx: the model runs eagerly (Python control flow and shape-dependent code just
run), and we need two things fx and NNCF's builder do not give directly: module calls of the layers we make elastic as
single "leaf" ops (their internals are irrelevant), and the op range of every module call (to find skippable blocks).
Every torch function call is seen through ``TorchFunctionMode``; module boundaries through per-module hooks that exist
only while tracing (no global state survives the trace).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map
from torch.utils.flop_counter import FlopCounterMode

from .macs import flop_counter

logger = logging.getLogger("nncf_bootstrapnas")

# Layers that are recorded as one op each: their weights are what elasticity slices.
LEAF_TYPES: tuple[type[nn.Module], ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.MultiheadAttention,
    nn.Embedding,
)

# Tensor methods that only describe a tensor; recording them would only add noise.
# Functions that may multiply-accumulate; only these run under torch's flop counter while tracing (it is slow).
_MAC_FUNCTIONS = {
    "matmul",
    "__matmul__",
    "__rmatmul__",
    "mm",
    "bmm",
    "addmm",
    "baddbmm",
    "addbmm",
    "einsum",
    "linear",
    "bilinear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "scaled_dot_product_attention",
    "multi_head_attention_forward",
    "tensordot",
    "inner",
    "outer",
    "dot",
    "mv",
}
_IGNORED = {"size", "dim", "numel", "__len__", "ndim", "is_floating_point", "__format__", "item"}


def is_leaf(module: nn.Module) -> bool:
    """Exactly one of the known layer types, or a subclass that does not change ``forward``."""
    for base in LEAF_TYPES:
        if isinstance(module, base):
            return type(module).forward is base.forward
    return False


@dataclass(frozen=True)
class TensorArg:
    """Placeholder for a tensor argument: the id of the traced value."""

    vid: int


@dataclass(frozen=True)
class ParamArg:
    """Placeholder for a parameter or buffer used directly by a function."""

    name: str


@dataclass
class Value:
    vid: int
    shape: tuple[int, ...]
    producer: int | None  # op index; None for model inputs


@dataclass
class Op:
    index: int
    kind: str  # "module" | "function"
    name: str  # function name ("add", "cat") or module class name ("Conv2d")
    scope: tuple[str, ...]  # enclosing module paths, outermost first (root excluded)
    inputs: list[int]  # value ids, in argument order
    outputs: list[int]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    module: str | None = None  # the leaf module's path for module ops
    params: list[str] = field(default_factory=list)  # parameters/buffers used directly (function ops)
    static_macs: int = 0  # MACs of a function op (matmul, sdpa, ...), counted by torch's flop counter


@dataclass
class ModuleCall:
    path: str
    start: int  # first op index inside the call
    end: int  # one past the last op index
    inputs: list[int]
    outputs: list[int]
    num_tensor_args: int
    num_calls: int = 1


@dataclass
class TracedGraph:
    ops: list[Op]
    values: dict[int, Value]
    inputs: list[int]
    outputs: list[int]
    calls: dict[str, ModuleCall]  # first call of every module, by path
    leaf_calls: dict[str, list[int]]  # leaf module path -> op indices of its calls
    param_owner: dict[str, str]  # parameter/buffer name -> owning module path

    def shape(self, vid: int) -> tuple[int, ...]:
        return self.values[vid].shape


class _Recorder(TorchFunctionMode):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.ops: list[Op] = []
        self.values: dict[int, Value] = {}
        self._by_id: dict[int, int] = {}  # id(tensor) -> vid
        self._keep: list[torch.Tensor] = []  # keeps traced tensors alive so ids are not reused
        self._param_names = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
        self._param_names.update({id(b): n for n, b in model.named_buffers(remove_duplicate=False)})
        self.scope: list[str] = []
        self.leaf_depth = 0
        self.calls: dict[str, ModuleCall] = {}
        self.leaf_calls: dict[str, list[int]] = {}
        self._pending: list[tuple[str, list[int], int, int]] = []
        self._counters: list[FlopCounterMode] = []

    # ---- values -----------------------------------------------------------------------------------------------------
    def new_value(self, t: torch.Tensor, producer: int | None) -> int:
        vid = len(self.values)
        self.values[vid] = Value(vid, tuple(t.shape), producer)
        self._by_id[id(t)] = vid
        self._keep.append(t)
        return vid

    def lookup(self, t: torch.Tensor) -> int | ParamArg | None:
        if id(t) in self._param_names:
            return ParamArg(self._param_names[id(t)])
        return self._by_id.get(id(t))

    def _encode(self, obj: Any, inputs: list[int], params: list[str]) -> Any:
        if isinstance(obj, torch.Tensor):
            ref = self.lookup(obj)
            if isinstance(ref, ParamArg):
                params.append(ref.name)
                return ref
            if ref is None:  # a constant made inside forward
                ref = self.new_value(obj, None)
            inputs.append(ref)
            return TensorArg(ref)
        return obj

    # ---- function calls ---------------------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        if name == "__get__":  # a property such as `x.T` or `x.data`: name it by the property
            name = getattr(getattr(func, "__self__", None), "__name__", name)
        if name in ("shape", "ndim", "device", "dtype", "is_cuda", "requires_grad", "grad_fn", "layout"):
            return func(*args, **kwargs)
        if self.leaf_depth > 0 or name in _IGNORED:
            return func(*args, **kwargs)
        inputs: list[int] = []
        params: list[str] = []
        enc_args = tree_map(lambda o: self._encode(o, inputs, params), args)
        enc_kwargs = tree_map(lambda o: self._encode(o, inputs, params), kwargs)
        counter = flop_counter() if name in _MAC_FUNCTIONS else None
        if counter is None:
            out = func(*args, **kwargs)
        else:
            with counter:
                out = func(*args, **kwargs)
        flat_out, _ = tree_flatten(out)
        tensors_out = [t for t in flat_out if isinstance(t, torch.Tensor)]
        if not tensors_out:
            return out
        index = len(self.ops)
        outputs = [self.new_value(t, index) for t in tensors_out]
        self.ops.append(
            Op(
                index=index,
                kind="function",
                name=name,
                scope=tuple(self.scope),
                inputs=inputs,
                outputs=outputs,
                args=enc_args,
                kwargs=enc_kwargs,
                params=params,
                static_macs=int(counter.get_total_flops()) // 2 if counter is not None else 0,
            )
        )
        return out

    # ---- module calls -----------------------------------------------------------------------------------------------
    def pre_hook(self, path: str, module: nn.Module, args: tuple, kwargs: dict) -> None:
        inputs = [v for v in (self.lookup(t) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor))]
        tensor_inputs = [v for v in inputs if isinstance(v, int)]
        n_tensors = sum(isinstance(t, torch.Tensor) for t in tree_flatten((args, kwargs))[0])
        self._pending.append((path, tensor_inputs, len(self.ops), n_tensors))
        if self.leaf_depth == 0:
            self.scope.append(path)
        if is_leaf(module):
            if self.leaf_depth == 0:
                counter = flop_counter()
                counter.__enter__()
                self._counters.append(counter)
            self.leaf_depth += 1

    def post_hook(self, path: str, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        _, inputs, start, n_tensors = self._pending.pop()
        leaf = is_leaf(module)
        macs = 0
        if leaf:
            self.leaf_depth -= 1
            if self.leaf_depth == 0:
                counter = self._counters.pop()
                counter.__exit__(None, None, None)
                macs = int(counter.get_total_flops()) // 2
        if self.leaf_depth > 0:
            return
        self.scope.pop()
        tensors_out = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor)]
        if leaf:
            index = len(self.ops)
            outputs = [self.new_value(t, index) for t in tensors_out]
            self.ops.append(
                Op(
                    index,
                    "module",
                    type(module).__name__,
                    tuple(self.scope),
                    inputs,
                    outputs,
                    module=path,
                    static_macs=macs,
                )  # fmt: skip
            )
            self.leaf_calls.setdefault(path, []).append(index)
        else:
            outputs = [self._by_id[id(t)] for t in tensors_out if id(t) in self._by_id]
        if path in self.calls:
            self.calls[path].num_calls += 1
        else:
            self.calls[path] = ModuleCall(path, start, len(self.ops), inputs, outputs, n_tensors)


def trace(model: nn.Module, example_inputs: Sequence[torch.Tensor] | torch.Tensor) -> TracedGraph:
    """Run ``model`` once in eval mode on ``example_inputs`` and record every op (no gradients)."""
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    recorder = _Recorder(model)
    handles = []
    for path, module in model.named_modules():
        if not path:
            continue
        handles.append(
            module.register_forward_pre_hook(
                lambda m, a, k, p=path: recorder.pre_hook(p, m, a, k), with_kwargs=True, prepend=True
            )
        )
        handles.append(
            module.register_forward_hook(
                lambda m, a, k, o, p=path: recorder.post_hook(p, m, a, k, o), with_kwargs=True, always_call=True
            )
        )
    was_training = model.training
    model.eval()
    try:
        inputs = [recorder.new_value(t, None) for t in example_inputs]
        with torch.no_grad(), recorder:
            output = model(*example_inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    outputs = []
    for t in tree_flatten(output)[0]:
        if isinstance(t, torch.Tensor):
            vid = recorder.lookup(t)
            outputs.append(vid if isinstance(vid, int) else recorder.new_value(t, None))
    param_owner = {}
    for mpath, module in model.named_modules():
        for pname, _ in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            param_owner[f"{mpath}.{pname}" if mpath else pname] = mpath
    return TracedGraph(
        ops=recorder.ops,
        values=recorder.values,
        inputs=inputs,
        outputs=outputs,
        calls=recorder.calls,
        leaf_calls=recorder.leaf_calls,
        param_owner=param_owner,
    )
