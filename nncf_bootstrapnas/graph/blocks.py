"""Skippable blocks for elastic depth: module calls with one tensor in and one tensor out of the same shape.

Residual blocks are found automatically (innermost module whose input feeds an add inside it); with
``sequential_blocks`` also runs of sibling layers without a residual whose output has the input's shape and channels
(VGG-style, as legacy NNCF's block search found them: a span starts at a weighted layer and takes the norm/activation
layers that follow it, so fused conv+bn+relu is never split). ``skipped_blocks`` in the config replaces discovery with
the user's list (module paths, or ``[first, last]`` sibling spans). Consecutive blocks (one's output is the next one's
input) form a group whose depth is "how many trailing blocks are skipped". Extra arguments a parent passes (``block(x,
drop_connect_rate=0.2)``) are fine: a skipped block returns its tensor argument.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from .channels import ChannelAnalysis
from .tracer import ModuleCall, TracedGraph

logger = logging.getLogger("nncf_bootstrapnas")

_ADDS = {"add", "add_", "__add__", "__radd__", "__iadd__"}
_LAYER_TYPES = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
                nn.Embedding, nn.MultiheadAttention)  # fmt: skip


@dataclass(frozen=True)
class Block:
    paths: tuple[str, ...]  # module paths replaced by identity when skipped (usually one)
    start: int  # op index range covered
    end: int
    input: int  # value ids
    output: int
    plain: bool = True  # every member is called as module(x)

    @property
    def name(self) -> str:
        return self.paths[0] if len(self.paths) == 1 else f"{self.paths[0]}..{self.paths[-1]}"

    @property
    def num_ops(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class BlockGroup:
    name: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class BlockReject:
    """A block candidate that depth does not use, and why."""

    name: str
    reason: str


def _same_channels(channels: ChannelAnalysis, a: int, b: int, couple: bool = False) -> bool:
    """Skipping must not change which channel groups the output carries. With ``couple`` (blocks the user asked
    for, VGG-style spans), output groups of the same structure are merged with the input's so that both always share
    one width."""
    ann_a, ann_b = channels.annotations.get(a, {}), channels.annotations.get(b, {})
    if set(ann_a) != set(ann_b):
        return False
    pairs = []
    for d in ann_a:
        la, lb = ann_a[d], ann_b[d]
        if len(la) != len(lb):
            return False
        for x, y in zip(la, lb):
            if (x.size, x.repeat, x.unit) != (y.size, y.repeat, y.unit) or (x.group is None) != (y.group is None):
                return False
            if x.group is not None and channels.root(x.group) != channels.root(y.group):
                pairs.append((x.group, y.group))
    if pairs and not couple:
        return False
    for x, y in pairs:
        channels.uf.union(x, y)
    return True


def _call_problem(graph: TracedGraph, call: ModuleCall | None, same_shape: bool = True) -> str:
    if call is None:
        return "never called"
    if call.num_calls != 1:
        return f"called {call.num_calls} times"
    if call.num_tensor_args != 1 or len(call.inputs) != 1 or len(call.outputs) != 1:
        return "not single-input/single-output"
    if not call.tensor_arg_direct or not call.output_is_tensor:
        return "its tensor is passed or returned inside a container"
    x, y = call.inputs[0], call.outputs[0]
    if x == y or call.end <= call.start:
        return "no ops"
    if same_shape and graph.shape(x) != graph.shape(y):
        return f"output shape {graph.shape(y)} differs from input shape {graph.shape(x)}"
    return ""


def _candidate(graph, channels, path, model, couple=False) -> tuple[Block | None, str]:  # noqa: ANN001
    call = graph.calls.get(path)
    if isinstance(model.get_submodule(path), _LAYER_TYPES):
        return None, "a single layer"
    why = _call_problem(graph, call)
    if why:
        return None, why
    if not _same_channels(channels, call.inputs[0], call.outputs[0], couple):
        return None, "output channels are not coupled to its input channels"
    return Block((path,), call.start, call.end, call.inputs[0], call.outputs[0], call.plain_call), ""


def _is_residual(graph: TracedGraph, start: int, end: int, x: int) -> bool:
    return any(op.name in _ADDS and x in op.inputs for op in graph.ops[start:end])


def _siblings(model: nn.Module, parent: str) -> list[str]:
    module = model.get_submodule(parent) if parent else model
    return [f"{parent}.{n}" if parent else n for n, _ in module.named_children()]


def _span(graph, channels, model, paths: Sequence[str], couple: bool = True) -> tuple[Block | None, str]:  # noqa: ANN001
    calls = [graph.calls.get(p) for p in paths]
    if any(_call_problem(graph, c, same_shape=False) for c in calls):
        return None, "span members must each be called once with one input and one output"
    for a, b in zip(calls, calls[1:]):
        if a.outputs[0] != b.inputs[0]:
            return None, "span members are not chained"
    x, y = calls[0].inputs[0], calls[-1].outputs[0]
    if graph.shape(x) != graph.shape(y) or not _same_channels(channels, x, y, couple=couple):
        return None, "span output differs from its input in shape or channels"
    plain = all(c.plain_call for c in calls)
    return Block(tuple(paths), calls[0].start, calls[-1].end, x, y, plain), ""


def _user_span(graph, channels, model, first: str, last: str) -> tuple[Block | None, str]:  # noqa: ANN001
    parent = first.rpartition(".")[0]
    if last.rpartition(".")[0] != parent:
        return None, "span ends are not siblings"
    names = _siblings(model, parent)
    if first not in names or last not in names or names.index(first) > names.index(last):
        return None, "span not found among the parent's children"
    return _span(graph, channels, model, names[names.index(first) : names.index(last) + 1])


def _size_ok(block: Block, min_size: int | None, max_size: int | None) -> str:
    """Legacy ``min_block_size``/``max_block_size`` (ops per block) bound automatic discovery only."""
    if min_size and block.num_ops < min_size:
        return f"{block.num_ops} ops < min_block_size {min_size}"
    if max_size and max_size > 0 and block.num_ops > max_size:
        return f"{block.num_ops} ops > max_block_size {max_size}"
    return ""


def _sequential_spans(graph, channels, model, taken: list[Block], weighted: set[int]) -> list[Block]:  # noqa: ANN001
    """VGG-style spans: chained siblings from a weighted layer to the first point where shape and channels are back
    to the span's input, plus trailing layers without weights; never inside or around a residual block."""
    spans: list[Block] = []
    for parent, _ in model.named_modules():
        names = _siblings(model, parent)
        calls = [graph.calls.get(n) for n in names]
        i = 0
        while i < len(names):
            block = None
            has_weights = False
            for j in range(i, len(names)):
                c = calls[j]
                if _call_problem(graph, c, same_shape=False):
                    break
                if j > i and calls[j - 1].outputs[0] != c.inputs[0]:
                    break
                has_weights = has_weights or any(c.start <= o < c.end for o in weighted)
                if j == i and not has_weights:
                    break
                x, y = calls[i].inputs[0], c.outputs[0]
                if has_weights and graph.shape(x) == graph.shape(y):
                    while j + 1 < len(names) and _trailing(graph, calls[j], calls[j + 1], weighted):
                        j += 1
                    block = _sequential_block(graph, channels, model, names[i : j + 1], taken + spans)
                    break
            if block is not None:
                spans.append(block)
                i = names.index(block.paths[-1]) + 1
            else:
                i += 1
    return spans


def _trailing(graph: TracedGraph, prev: ModuleCall, call: ModuleCall | None, weighted: set[int]) -> bool:
    return (
        not _call_problem(graph, call)
        and call.inputs[0] == prev.outputs[0]
        and not any(call.start <= o < call.end for o in weighted)
        and graph.shape(call.outputs[0]) == graph.shape(call.inputs[0])
    )


def _sequential_block(graph, channels, model, paths, taken) -> Block | None:  # noqa: ANN001
    calls = [graph.calls[p] for p in paths]
    start, end, x = calls[0].start, calls[-1].end, calls[0].inputs[0]
    if _is_residual(graph, start, end, x) or any(b.start < end and start < b.end for b in taken):
        return None
    block, _ = _span(graph, channels, model, paths)
    return block


def _valid_in_training(train: TracedGraph | None, block: Block) -> str:
    if train is None:
        return ""
    calls = [train.calls.get(p) for p in block.paths]
    if any(c is None for c in calls):
        return ""
    for a, b in zip(calls, calls[1:]):
        if a.outputs[0] != b.inputs[0]:
            return "its members are not chained in training mode"
    first, last = calls[0], calls[-1]
    if any(c.num_calls != 1 or len(c.inputs) != 1 or len(c.outputs) != 1 for c in calls):
        return "not single-input/single-output in training mode"
    if train.shape(first.inputs[0]) != train.shape(last.outputs[0]):
        return "output shape differs from its input in training mode"
    return ""


def find_blocks(
    graph: TracedGraph,
    channels: ChannelAnalysis,
    model,  # noqa: ANN001
    skipped_blocks: Sequence[str | Sequence[str]] | None = None,
    min_block_size: int | None = None,
    max_block_size: int | None = None,
    train_graph: TracedGraph | None = None,
    sequential: bool = False,
) -> tuple[list[BlockGroup], list[BlockReject]]:
    blocks: list[Block] = []
    rejects: list[BlockReject] = []
    if skipped_blocks:
        for entry in skipped_blocks:
            if isinstance(entry, str):
                block, why = _candidate(graph, channels, entry, model, couple=True)
            else:
                block, why = _user_span(graph, channels, model, entry[0], entry[-1])
            if block is None:
                logger.warning("skipped_blocks entry %r cannot be skipped: %s", entry, why)
                rejects.append(BlockReject(str(entry), why))
            else:
                blocks.append(block)
    else:
        found = []
        for path, call in graph.calls.items():
            if len(call.inputs) < 1 or not _is_residual(graph, call.start, call.end, call.inputs[0]):
                continue
            block, why = _candidate(graph, channels, path, model)
            if block is None:
                rejects.append(BlockReject(path, why))
            else:
                found.append(block)
        # innermost residual blocks: drop any that contains another
        blocks = [b for b in found if not any(o is not b and b.start <= o.start and o.end <= b.end for o in found)]
        for b in blocks[:]:
            why = _size_ok(b, min_block_size, max_block_size)
            if why:
                logger.info("block %s not elastic: %s", b.name, why)
                rejects.append(BlockReject(b.name, why))
                blocks.remove(b)
        if sequential:
            weighted = {
                u.op for u in channels.layers if u.graph == 0 and u.kind in ("conv", "conv_transpose", "linear")
            }
            blocks += _sequential_spans(graph, channels, model, blocks, weighted)
    for b in blocks[:]:
        why = _valid_in_training(train_graph, b)
        if why:
            rejects.append(BlockReject(b.name, why))
            blocks.remove(b)
    channels.finalize()  # coupling may have merged groups
    blocks.sort(key=lambda b: b.start)
    groups: list[list[Block]] = []
    for b in blocks:
        if groups and groups[-1][-1].output == b.input:
            groups[-1].append(b)
        else:
            groups.append([b])
    return [BlockGroup(g[0].name, tuple(g)) for g in groups], rejects
