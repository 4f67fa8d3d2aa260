"""Eager tracing of a model into a flat list of ops, keeping module boundaries.

Why our own tracer rather than torch.fx: the model runs eagerly (Python control flow and shape-dependent code just
run), and we need what fx does not give directly: every parameter use as it happens (``F.conv2d(x, self.weight)`` in a
user's own ``forward`` is as visible as ``nn.Conv2d``), and the op range of every module call (to find skippable blocks).
Every torch function call is seen through ``TorchFunctionMode``; module boundaries through per-module hooks that exist
only while tracing (no global state survives the trace). Layers are recognised by the functions that use their
parameters, not by their class; only ``nn.MultiheadAttention`` (whose functional form cannot express fewer heads) is
recorded as one op.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_map
from torch.utils.flop_counter import FlopCounterMode

from .macs import flop_counter

# Layers recorded as one op each (their internals are irrelevant: elasticity replaces their forward).
LEAF_TYPES: tuple[type[nn.Module], ...] = (nn.MultiheadAttention,)

# Functions that may multiply-accumulate; only these run under torch's flop counter while tracing (it is slow).
MAC_FUNCTIONS = {
    "matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "baddbmm", "addbmm", "einsum", "linear", "bilinear",
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "scaled_dot_product_attention", "multi_head_attention_forward", "tensordot", "inner", "outer", "dot", "mv",
}  # fmt: skip
_IGNORED = {
    "size", "dim", "numel", "__len__", "ndim", "is_floating_point", "__format__", "item", "stride", "is_contiguous",
    "data_ptr", "storage_offset", "tolist", "__bool__", "__index__", "__int__", "__float__", "get_device", "element_size",
    "is_complex", "nelement", "__hash__", "__repr__", "__str__",
}  # fmt: skip
_ATTRIBUTES = {"shape", "ndim", "device", "dtype", "is_cuda", "requires_grad", "grad_fn", "layout", "is_leaf", "grad"}

# While > 0 (elastic parameter views being computed) nothing is recorded: those are not the user's ops.
QUIET = [0]


def is_leaf(module: nn.Module) -> bool:
    """One of ``LEAF_TYPES`` with its own ``forward`` (a subclass that changes it is traced inside)."""
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
    """Placeholder for a parameter or buffer used directly by a function (its canonical name)."""

    name: str


@dataclass
class Value:
    vid: int
    shape: tuple[int, ...]
    producer: int | None  # op index; None for model inputs and constants


@dataclass
class Op:
    index: int
    kind: str  # "module" | "function"
    name: str  # function name ("add", "cat") or module class name ("MultiheadAttention")
    scope: tuple[str, ...]  # enclosing module paths, outermost first (root excluded)
    inputs: list[int]  # value ids, in argument order
    outputs: list[int]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    module: str | None = None  # the leaf module's path for module ops
    params: list[str] = field(default_factory=list)  # parameters/buffers used directly (function ops)
    static_macs: int = 0  # MACs counted by torch's flop counter

    @property
    def where(self) -> str:
        return self.module or (self.scope[-1] if self.scope else "model")


@dataclass
class ModuleCall:
    path: str
    start: int  # first op index inside the call
    end: int  # one past the last op index
    inputs: list[int]
    outputs: list[int]
    num_tensor_args: int
    num_calls: int = 1
    tensor_arg_direct: bool = True  # the tensor arguments are passed as such, not inside containers
    output_is_tensor: bool = True  # the call returns one bare tensor
    plain_call: bool = True  # called as ``module(x)``: one positional argument, no keywords


@dataclass
class TracedGraph:
    ops: list[Op]
    values: dict[int, Value]
    inputs: list[int]
    outputs: list[int]
    calls: dict[str, ModuleCall]  # first call of every module, by path
    leaf_calls: dict[str, list[int]]  # leaf module path -> op indices of its calls
    param_owner: dict[str, str]  # canonical parameter/buffer name -> owning module path (first owner)
    param_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    param_owners: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # name -> [(module, local name)]
    training: bool = False
    batch_doubled: bool = False  # a train-mode trace that needed a batch of two
    error: BaseException | None = None  # set when tracing with ``catch=True`` stopped at a failing op

    def shape(self, vid: int) -> tuple[int, ...]:
        return self.values[vid].shape


def parameter_names(model: nn.Module) -> tuple[dict[int, str], dict[str, list[tuple[str, str]]]]:
    """``id(tensor) -> canonical name`` (the first of its names, as ``named_parameters()`` reports it) and every
    ``(module path, local name)`` that holds each tensor (tied weights have several)."""
    names: dict[int, str] = {}
    owners: dict[str, list[tuple[str, str]]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        for store in (module._parameters, module._buffers):
            for local, tensor in store.items():
                if tensor is None:
                    continue
                name = names.setdefault(id(tensor), f"{path}.{local}" if path else local)
                entry = (path, local)
                if entry not in owners.setdefault(name, []):
                    owners[name].append(entry)
    return names, owners


class _Recorder(TorchFunctionMode):
    def __init__(self, model: nn.Module, count_macs: bool = True) -> None:
        super().__init__()
        self.count_macs = count_macs
        self.ops: list[Op] = []
        self.values: dict[int, Value] = {}
        self._by_id: dict[int, int] = {}  # id(tensor) -> vid
        self._keep: list[torch.Tensor] = []  # keeps traced tensors alive so ids are not reused
        self._param_names, self.param_owners = parameter_names(model)
        self.scope: list[str] = []
        self.leaf_depth = 0
        self.calls: dict[str, ModuleCall] = {}
        self.leaf_calls: dict[str, list[int]] = {}
        self._pending: list[tuple[str, list[int], int, int]] = []
        self._counters: list[FlopCounterMode] = []
        self.error: BaseException | None = None

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
            if ref is None:  # a constant made inside forward (or an elastic parameter view)
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
        if name in _ATTRIBUTES or QUIET[0] or self.leaf_depth > 0 or name in _IGNORED:
            return func(*args, **kwargs)
        inputs: list[int] = []
        params: list[str] = []
        enc_args = tree_map(lambda o: self._encode(o, inputs, params), args)
        enc_kwargs = tree_map(lambda o: self._encode(o, inputs, params), kwargs)
        counter = flop_counter() if self.count_macs and name in MAC_FUNCTIONS else None
        try:
            if counter is None:
                out = func(*args, **kwargs)
            else:
                with counter:
                    out = func(*args, **kwargs)
        except Exception as exc:
            if self.error is None:
                self.error = exc
                self.ops.append(Op(len(self.ops), "function", name, tuple(self.scope), inputs, [], enc_args,
                                   enc_kwargs, params=params))  # fmt: skip
            raise
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
        flat = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        tensor_inputs = [v for v in (self.lookup(t) for t in flat) if isinstance(v, int)]
        self._pending.append((path, tensor_inputs, len(self.ops), len(flat), _signature(args, kwargs, len(flat))))
        if self.leaf_depth == 0:
            self.scope.append(path)
        if is_leaf(module):
            if self.leaf_depth == 0:
                counter = flop_counter() if self.count_macs else nullcontext()
                counter.__enter__()
                self._counters.append(counter)
            self.leaf_depth += 1

    def post_hook(self, path: str, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        _, inputs, start, n_tensors, (direct, plain) = self._pending.pop()
        leaf = is_leaf(module)
        macs = 0
        if leaf:
            self.leaf_depth -= 1
            if self.leaf_depth == 0:
                counter = self._counters.pop()
                counter.__exit__(None, None, None)
                macs = int(counter.get_total_flops()) // 2 if self.count_macs else 0
        if self.leaf_depth > 0:
            return
        self.scope.pop()
        tensors_out = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor)]
        if leaf:
            index = len(self.ops)
            outputs = [self.new_value(t, index) for t in tensors_out]
            self.ops.append(Op(index, "module", type(module).__name__, tuple(self.scope), inputs, outputs,
                               module=path, static_macs=macs))  # fmt: skip
            self.leaf_calls.setdefault(path, []).append(index)
        else:
            outputs = [self._by_id[id(t)] for t in tensors_out if id(t) in self._by_id]
        if path in self.calls:
            self.calls[path].num_calls += 1
        else:
            self.calls[path] = ModuleCall(path, start, len(self.ops), inputs, outputs, n_tensors,
                                          tensor_arg_direct=direct, output_is_tensor=isinstance(output, torch.Tensor),
                                          plain_call=plain)  # fmt: skip


def _signature(args: tuple, kwargs: dict, n_tensors: int) -> tuple[bool, bool]:
    direct = sum(isinstance(a, torch.Tensor) for a in list(args) + list(kwargs.values())) == n_tensors
    plain = len(args) == 1 and not kwargs and isinstance(args[0], torch.Tensor)
    return direct, plain


def _batch_of_two(obj: Any) -> Any:
    """Train-mode tracing needs batch statistics: a batch of one becomes two copies of the sample."""
    if isinstance(obj, torch.Tensor) and obj.dim() > 0 and obj.shape[0] == 1:
        return torch.cat([obj, obj])
    return obj


def trace(
    model: nn.Module,
    example_inputs: Sequence[Any] | torch.Tensor,
    example_kwargs: Mapping[str, Any] | None = None,
    training: bool = False,
    catch: bool = False,
    count_macs: bool = True,
) -> TracedGraph:
    """Run ``model`` once on ``example_inputs`` (positional arguments, each a tensor or a nested tuple/list/dict of
    tensors) and record every op, without gradients.

    ``training`` traces in train mode (a batch of one is doubled if it fails, e.g. for batch statistics of a single
    value) and restores every buffer and the random state afterwards, so the model is unchanged. ``catch`` returns the ops recorded up to a failing op
    (``graph.error``) instead of raising. ``count_macs=False`` skips torch's (slow) flop counter.
    """
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    args, kwargs = tuple(example_inputs), dict(example_kwargs or {})
    if training and not catch:
        try:
            return _trace(model, args, kwargs, True, False, count_macs)
        except Exception:  # noqa: BLE001 - e.g. batch statistics of a single sample: try a batch of two
            doubled = tree_map(_batch_of_two, (args, kwargs))
            if all(a is b for a, b in zip(tree_flatten(doubled)[0], tree_flatten((args, kwargs))[0])):
                raise
            graph = _trace(model, *doubled, True, False, count_macs)
            graph.batch_doubled = True
            return graph
    return _trace(model, args, kwargs, training, catch, count_macs)


def train_inputs(args: tuple, kwargs: dict, doubled: bool) -> tuple[tuple, dict]:
    """The example arguments a train-mode forward uses (a batch of one doubled when the trace needed it)."""
    return tree_map(_batch_of_two, (args, kwargs)) if doubled else (args, kwargs)


def _trace(model: nn.Module, args: tuple, kwargs: dict, training: bool, catch: bool, count_macs: bool) -> TracedGraph:
    recorder = _Recorder(model, count_macs)
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
    modes = {m: m.training for m in model.modules()}
    buffers = {id(b): b.detach().clone() for b in model.buffers()} if training else {}
    model.train(training)
    output = None
    try:
        inputs = [recorder.new_value(t, None) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        with torch.random.fork_rng(devices=[]), torch.no_grad(), recorder:
            output = model(*args, **kwargs)
    except Exception as exc:
        if not catch:
            raise
        recorder.error = recorder.error or exc
    finally:
        for h in handles:
            h.remove()
        for module, mode in modes.items():
            module.training = mode
        with torch.no_grad():
            for b in model.buffers():
                if id(b) in buffers:
                    b.copy_(buffers[id(b)])
    outputs = []
    for t in tree_flatten(output)[0]:
        if isinstance(t, torch.Tensor):
            vid = recorder.lookup(t)
            outputs.append(vid if isinstance(vid, int) else recorder.new_value(t, None))
    names, owners = recorder._param_names, recorder.param_owners
    shapes = {names[id(t)]: tuple(t.shape) for t in list(model.parameters()) + list(model.buffers())}
    return TracedGraph(
        ops=recorder.ops,
        values=recorder.values,
        inputs=inputs,
        outputs=outputs,
        calls=recorder.calls,
        leaf_calls=recorder.leaf_calls,
        param_owner={name: entries[0][0] for name, entries in owners.items()},
        param_shapes=shapes,
        param_owners=owners,
        training=training,
        error=recorder.error,
    )


def clone_inputs(obj: Any) -> Any:
    """A detached copy of a nested example input (kept by the super-network)."""
    return tree_map(lambda t: t.detach().clone() if isinstance(t, torch.Tensor) else copy.deepcopy(t), obj)
