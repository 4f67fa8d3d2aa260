"""One analysed graph per model: trace + channel coupling + skippable blocks, read by every structural step."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import BlockGroup, find_blocks
from .channels import ChannelAnalysis, analyse_channels
from .tracer import TracedGraph, trace


@dataclass
class AnalysedGraph:
    graph: TracedGraph
    channels: ChannelAnalysis
    block_groups: list[BlockGroup]
    heads_count: dict[str, int]  # nn.MultiheadAttention path -> number of heads

    def module_ops(self, path: str) -> list[int]:
        return self.graph.leaf_calls.get(path, [])


def analyse(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    skipped_blocks: Sequence[str | Sequence[str]] | None = None,
    min_block_size: int | None = None,
    max_block_size: int | None = None,
    with_depth: bool = True,
) -> AnalysedGraph:
    graph = trace(model, example_inputs)
    channels = analyse_channels(graph, model)
    blocks = find_blocks(graph, channels, model, skipped_blocks, min_block_size, max_block_size) if with_depth else []
    heads = {p: model.get_submodule(p).num_heads for p in channels.heads}
    return AnalysedGraph(graph, channels, blocks, heads)


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
