"""Skippable blocks for elastic depth: single-input/single-output module calls whose output shape equals the input's.

Residual blocks are found automatically (innermost module whose input feeds an add inside it); ``skipped_blocks`` in
the config replaces discovery with the user's list (module paths, or ``[first, last]`` sibling spans). Consecutive
blocks (one's output is the next one's input) form a group whose depth is "how many trailing blocks are skipped".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from .channels import ChannelAnalysis
from .tracer import TracedGraph, is_leaf

logger = logging.getLogger("nncf_bootstrapnas")

_ADDS = {"add", "add_", "__add__", "__radd__", "__iadd__"}


@dataclass(frozen=True)
class Block:
    paths: tuple[str, ...]  # module paths replaced by identity when skipped (usually one)
    start: int  # op index range covered
    end: int
    input: int  # value ids
    output: int

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


def _same_channels(graph: TracedGraph, channels: ChannelAnalysis, a: int, b: int, couple: bool = False) -> bool:
    """Skipping must not change which channel groups the output carries. With ``couple`` (blocks the user asked
    for), output groups of the same structure are merged with the input's so that both always share one width."""
    ann_a, ann_b = channels.annotations.get(a, {}), channels.annotations.get(b, {})
    if set(ann_a) != set(ann_b):
        return False
    pairs = []
    for d in ann_a:
        la, lb = ann_a[d], ann_b[d]
        if len(la) != len(lb):
            return False
        for x, y in zip(la, lb):
            if x.size != y.size or x.repeat != y.repeat or (x.group is None) != (y.group is None):
                return False
            if x.group is not None and channels.root(x.group) != channels.root(y.group):
                pairs.append((x.group, y.group))
    if pairs and not couple:
        return False
    for x, y in pairs:
        channels.uf.union(x, y)
    return True


def _candidate(graph, channels, path, model, couple=False) -> tuple[Block | None, str]:  # noqa: ANN001
    call = graph.calls.get(path)
    if call is None:
        return None, "never called"
    if is_leaf(model.get_submodule(path)):
        return None, "a single layer"
    if call.num_calls != 1:
        return None, f"called {call.num_calls} times"
    if call.num_tensor_args != 1 or len(call.inputs) != 1 or len(call.outputs) != 1:
        return None, "not single-input/single-output"
    x, y = call.inputs[0], call.outputs[0]
    if x == y or call.end <= call.start:
        return None, "no ops"
    if graph.shape(x) != graph.shape(y):
        return None, f"output shape {graph.shape(y)} differs from input shape {graph.shape(x)}"
    if not _same_channels(graph, channels, x, y, couple):
        return None, "output channels are not coupled to its input channels"
    return Block((path,), call.start, call.end, x, y), ""


def _is_residual(graph: TracedGraph, block: Block) -> bool:
    return any(op.name in _ADDS and block.input in op.inputs for op in graph.ops[block.start : block.end])


def _span(graph, channels, model, first: str, last: str) -> tuple[Block | None, str]:  # noqa: ANN001
    parent = first.rpartition(".")[0]
    if last.rpartition(".")[0] != parent:
        return None, "span ends are not siblings"
    siblings = [n for n, _ in model.get_submodule(parent).named_children()] if parent else []
    names = [f"{parent}.{n}" if parent else n for n in siblings]
    if first not in names or last not in names or names.index(first) > names.index(last):
        return None, "span not found among the parent's children"
    paths = names[names.index(first) : names.index(last) + 1]
    calls = [graph.calls.get(p) for p in paths]
    if any(c is None or c.num_calls != 1 or len(c.inputs) != 1 or len(c.outputs) != 1 for c in calls):
        return None, "span members must each be called once with one input and one output"
    for a, b in zip(calls, calls[1:]):
        if a.outputs[0] != b.inputs[0]:
            return None, "span members are not chained"
    x, y = calls[0].inputs[0], calls[-1].outputs[0]
    if graph.shape(x) != graph.shape(y) or not _same_channels(graph, channels, x, y, couple=True):
        return None, "span output differs from its input in shape or channels"
    return Block(tuple(paths), calls[0].start, calls[-1].end, x, y), ""


def _size_ok(block: Block, min_size: int | None, max_size: int | None) -> bool:
    """Legacy ``min_block_size``/``max_block_size`` (ops per block) bound automatic discovery only."""
    if min_size and block.num_ops < min_size:
        logger.info("block %s not elastic: %d ops < min_block_size %d", block.name, block.num_ops, min_size)
        return False
    if max_size and max_size > 0 and block.num_ops > max_size:
        logger.info("block %s not elastic: %d ops > max_block_size %d", block.name, block.num_ops, max_size)
        return False
    return True


def find_blocks(
    graph: TracedGraph,
    channels: ChannelAnalysis,
    model,  # noqa: ANN001
    skipped_blocks: Sequence[str | Sequence[str]] | None = None,
    min_block_size: int | None = None,
    max_block_size: int | None = None,
) -> list[BlockGroup]:
    blocks: list[Block] = []
    if skipped_blocks:
        for entry in skipped_blocks:
            if isinstance(entry, str):
                block, why = _candidate(graph, channels, entry, model, couple=True)
            else:
                block, why = _span(graph, channels, model, entry[0], entry[-1])
            if block is None:
                logger.warning("skipped_blocks entry %r cannot be skipped: %s", entry, why)
            else:
                blocks.append(block)
    else:
        found = []
        for path in graph.calls:
            block, _ = _candidate(graph, channels, path, model)
            if block is not None and _is_residual(graph, block):
                found.append(block)
        # innermost residual blocks: drop any that contains another
        blocks = [b for b in found if not any(o is not b and b.start <= o.start and o.end <= b.end for o in found)]
    kept = blocks if skipped_blocks else [b for b in blocks if _size_ok(b, min_block_size, max_block_size)]
    channels.finalize()  # coupling may have merged groups
    kept.sort(key=lambda b: b.start)
    groups: list[list[Block]] = []
    for b in kept:
        if groups and groups[-1][-1].output == b.input:
            groups[-1].append(b)
        else:
            groups.append([b])
    return [BlockGroup(g[0].name, tuple(g)) for g in groups]
