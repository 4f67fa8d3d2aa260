"""The propagation driver: every traced op in order, through the rule that knows it; several traces, one analysis."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .channels import ChannelAnalysis, Frozen, GraphState
from .function_rules import FunctionRules
from .layer_rules import LayerRules
from .layout import UnionFind, layout_groups, segment
from .tracer import Op, TracedGraph

_FACTORIES = {"new_empty", "new_zeros", "new_ones", "new_full", "new_tensor", "new_empty_strided"}


class Propagator(FunctionRules, LayerRules):
    def run(self, graph: TracedGraph, index: int) -> None:
        self.g, self.index = graph, index
        self.s = GraphState(graph)
        self.a.states.append(self.s)
        for op in graph.ops:
            operands = self.operands(op)
            factory = op.name in _FACTORIES  # x.new_empty(shape): a constant, whatever x is
            if op.kind == "function" and (factory or not operands or all(o.derived for o in operands)):
                self.derived_op(op, operands)
                continue
            self.s.activation_ops.add(op.index)
            if op.kind == "module":
                self.module_op(op)
            else:
                self.function_op(op)
            if op.static_macs and index == 0 and op.index not in self.a.mac_layouts:
                if any(o.ann for o in self.operands(op)):
                    self.block_inputs(op, "its MACs would not follow a smaller width")
        for vid in graph.outputs:
            for layout in self.ann(vid).values():
                self.a.freeze(layout_groups(layout), Frozen("reaches a model output", "output", "model"))

    def module_op(self, op: Op) -> None:
        module = self.model.get_submodule(op.module)
        if isinstance(module, nn.MultiheadAttention) and _elastic_heads(module):
            # heads shrink inside the layer; the embedding stream around it keeps its width
            self.block_inputs(op, "attention keeps its embedding width")
            if op.module not in self.a.heads:
                group = self.a.uf.add(module.embed_dim)
                self.a.heads[op.module] = group
                self.a.units[group] = module.head_dim
                self.a.created_in[group] = self.index
            if self.index == 0:
                self.a.mac_layouts[op.index] = ((segment(self.a.heads[op.module], module.embed_dim),),)
        else:
            self.block_inputs(op, f"{type(module).__name__} is not elastic")
            if self.index == 0:
                self.a.mac_layouts[op.index] = ()


def _elastic_heads(module: nn.MultiheadAttention) -> bool:
    return bool(
        module._qkv_same_embed_dim and module.in_proj_weight is not None and module.bias_k is None
        and not module.add_zero_attn and module.num_heads > 1
    )  # fmt: skip


def analyse_channels(graphs: Sequence[TracedGraph], model: nn.Module) -> ChannelAnalysis:
    """Propagate channel layouts through every trace of ``model`` (the first is the eval-mode trace: MACs and
    blocks are read from it). Groups that only a later (train-mode) trace creates are used in training only and
    keep their width."""
    analysis = ChannelAnalysis(UnionFind())
    propagator = Propagator(model, analysis)
    for i, graph in enumerate(graphs):
        propagator.run(graph, i)
    eval_groups = {analysis.root(g) for g, where in analysis.created_in.items() if where == 0}
    for g, where in analysis.created_in.items():
        if where > 0 and analysis.root(g) not in eval_groups:
            analysis.freeze([g], Frozen("used only in training mode"))
    for found, (key, form) in analysis.attr_keys.items():
        if key in analysis.params and found not in analysis.attrs:
            analysis.attrs[found] = (analysis.params[key], form)
    analysis.finalize()
    _layer_tables(analysis)
    return analysis


def _layer_tables(a: ChannelAnalysis) -> None:
    """Which layers consume, produce and follow each group (for naming, importance and the report)."""
    for use in a.layers:
        if use.mode == "channelwise" or use.mode == "grouped":
            layout = a.params.get((use.param, use.out_dim or 0))
            if layout is not None:
                a.channelwise.setdefault(use.module, layout)
        elif use.in_dim is not None:
            layout = a.params.get((use.param, use.in_dim))
            if layout is not None and layout_groups(layout):
                a.consumers.setdefault(use.module, layout)
