"""One analysed graph per model: traces (eval and train mode) + channel coupling + skippable blocks, read by every
structural step (width, depth, kernel, extraction, MACs)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .blocks import BlockGroup, BlockReject, find_blocks
from .channels import ChannelAnalysis
from .propagate import analyse_channels
from .tracer import TracedGraph, trace

logger = logging.getLogger("nncf_bootstrapnas")


@dataclass
class AnalysedGraph:
    graph: TracedGraph  # eval mode: MACs and blocks are read from it
    channels: ChannelAnalysis
    block_groups: list[BlockGroup]
    heads_count: dict[str, int]  # nn.MultiheadAttention path -> number of heads
    train_graph: TracedGraph | None = None
    block_rejects: list[BlockReject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def module_ops(self, path: str) -> list[int]:
        return self.graph.leaf_calls.get(path, [])

    @property
    def graphs(self) -> list[TracedGraph]:
        return [self.graph] + ([self.train_graph] if self.train_graph is not None else [])


def analyse(
    model: nn.Module,
    example_inputs: Sequence[Any],
    skipped_blocks: Sequence[str | Sequence[str]] | None = None,
    min_block_size: int | None = None,
    max_block_size: int | None = None,
    with_depth: bool = True,
    example_kwargs: Mapping[str, Any] | None = None,
    train_mode: bool = True,
    sequential_blocks: bool = False,
) -> AnalysedGraph:
    """Trace ``model`` in eval mode and (``train_mode``) in train mode, so that code paths that run only in training
    (auxiliary heads) are part of the analysis; a model that cannot run a train-mode forward on the example input is
    analysed in eval mode only, with a warning."""
    graph = trace(model, example_inputs, example_kwargs)
    graphs, notes = [graph], []
    if train_mode:
        try:
            graphs.append(trace(model, example_inputs, example_kwargs, training=True, count_macs=False))
        except Exception as exc:  # noqa: BLE001 - the model may not support train mode on this input
            notes.append(f"train-mode trace failed ({type(exc).__name__}: {exc}); train-only code paths not analysed")
            logger.warning("generation: %s", notes[-1])
    train_graph = graphs[1] if len(graphs) > 1 else None
    channels = analyse_channels(graphs, model)
    blocks, rejects = [], []
    if with_depth:
        blocks, rejects = find_blocks(graph, channels, model, skipped_blocks, min_block_size, max_block_size,
                                      train_graph, sequential_blocks)  # fmt: skip
    heads = {p: model.get_submodule(p).num_heads for p in channels.heads}
    return AnalysedGraph(graph, channels, blocks, heads, train_graph, rejects, notes)


_LEGACY_SCOPE = re.compile(r"\[([^\]]+)\]")


def scope_to_path(scope: str) -> str:
    """Legacy NNCF node names (``ResNet/Sequential[layer1]/BasicBlock[0]/NNCFConv2d[conv1]/conv2d_0``) -> module path."""
    if "[" in scope:
        return ".".join(_LEGACY_SCOPE.findall(scope))
    return scope


def matches_scope(path: str, scopes: Sequence[str] | str | None) -> bool:
    """NNCF scope semantics: exact module path (or legacy node name), a prefix of it, or ``{re}`` + regex."""
    if not scopes:
        return False
    for scope in [scopes] if isinstance(scopes, str) else scopes:
        if scope.startswith("{re}"):
            if re.search(scope[4:], path):
                return True
            continue
        target = scope_to_path(scope)
        if path == target or path.startswith(target + "."):
            return True
    return False
