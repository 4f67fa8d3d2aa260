"""The super-network: the user's model with elastic layers and skippable blocks, driven by plain-JSON subnet configs."""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..graph.analysis import AnalysedGraph, analyse
from ..graph.layout import layout_groups
from . import attention as _attention  # noqa: F401  (registers the elastic attention layer)
from .attention import ElasticMultiheadAttention
from .depth import skipped_stand_in
from .inputs import build_inputs, describe_inputs
from .kernel import KernelPlan, add_kernel_transforms, find_kernels
from .modules import active_param_count
from .plans import Activation, ModulePlan, accessors, build_plans
from .report import GenerationReport, build_report
from .search_space import SearchSpace, SearchSpaceError, Variable
from .views import ACTIVE, is_view_elastic, make_elastic, make_skippable, materialize
from .width import (
    Permutation,
    WidthConfigError,
    apply_permutations,
    build_width_groups,
    group_importance,
    sort_permutation,
)

logger = logging.getLogger("nncf_bootstrapnas")
STATE_FORMAT = "nncf_bootstrapnas.supernet/1"


class SuperNetwork(nn.Module):
    """Wraps ``model`` (a deep copy); ``state_dict`` keys are the model's own, so pre-trained checkpoints load as-is."""

    def __init__(
        self,
        model: nn.Module,
        example_input: Sequence[Any],
        options: Mapping[str, Any],
        example_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.example_input = tuple(example_input)
        self.example_kwargs = dict(example_kwargs or {})
        self.options = copy.deepcopy(dict(options))
        self.dims_requested = list(self.options.get("available_elasticity_dims", ["kernel", "width", "depth"]))
        depth_opts = self.options.get("depth", {}) or {}
        self.analysis: AnalysedGraph = analyse(
            model,
            self.example_input,
            skipped_blocks=depth_opts.get("skipped_blocks"),
            min_block_size=depth_opts.get("min_block_size"),
            max_block_size=depth_opts.get("max_block_size"),
            with_depth="depth" in self.dims_requested,
            example_kwargs=self.example_kwargs,
            sequential_blocks=bool(depth_opts.get("sequential_blocks", False)),
        )
        scopes = {k: self.options.get(k) for k in ("ignored_scopes", "target_scopes")}
        self.width_groups, self.group_status = build_width_groups(self.analysis, self.options.get("width", {}), scopes)
        if "width" not in self.dims_requested:
            self.width_groups = []
        self.block_groups = self.analysis.block_groups if "depth" in self.dims_requested else []
        self.kernel_plans: dict[str, KernelPlan] = {}
        self.kernel_status: dict[str, str] = {}
        if "kernel" in self.dims_requested:
            max_num = int(self.options["kernel"]["max_num_kernels"])
            self.kernel_plans, self.kernel_status = find_kernels(self.model, self.analysis, max_num, scopes)
        self.dropped: dict[str, str] = {}  # variable name -> why the self-check removed it
        self._build()

    # ---- construction -----------------------------------------------------------------------------------------------
    @property
    def kernel_choices(self) -> dict[str, tuple[int, ...]]:
        return {p: plan.choices for p, plan in self.kernel_plans.items()}

    def _build(self) -> None:
        """Search space, module plans, elastic classes and the MAC table from the current variables."""
        variables = [Variable("kernel", k, c) for k, c in self.kernel_choices.items()]
        variables += [Variable("width", g.name, g.choices) for g in self.width_groups]
        variables += [Variable("depth", b.name, tuple(range(len(b.blocks) + 1))) for b in self.block_groups]
        self.search_space = SearchSpace(variables)
        self.stage_space = self.search_space
        self.stage: dict[str, Any] = {"dims": self.search_space.dims, "width_indicator": None, "depth_indicator": None}
        self._root_to_group = {g.root: g for g in self.width_groups}
        roots = set(self._root_to_group)
        self._plans: list[ModulePlan] = build_plans(self.model, self.analysis, roots, self.kernel_plans)
        self._make_modules_elastic()
        self._prepare_mac_table(roots)
        self._active: dict[str, dict[str, int]] = self.search_space.maximum()
        self.activate(None)

    def _make_modules_elastic(self) -> None:
        for plan in self._plans:
            make_elastic(plan.module, plan.names())
            if plan.kernel is not None:
                add_kernel_transforms(plan.module, plan.kernel.choices)
        for path in accessors(self.analysis, self._plans):
            make_elastic(self.model.get_submodule(path) if path else self.model)
        for path in self.analysis.channels.heads:
            module = self.model.get_submodule(path)
            if not isinstance(module, ElasticMultiheadAttention):
                module.__class__ = ElasticMultiheadAttention
                module.setup_elastic()
        for group in self.block_groups:
            for block in group.blocks:
                for path in block.paths:
                    make_skippable(self.model.get_submodule(path))

    def _prepare_mac_table(self, roots: set[int]) -> None:
        """Per op with MACs: MACs at full size, the layouts with a width variable they scale with, the kernel."""
        ch = self.analysis.channels
        kernel_ops = {u.op: u.module for u in ch.layers if u.graph == 0 and u.module in self.kernel_plans}
        self._mac_table: list[tuple[int, int, tuple, str | None]] = []
        for op in self.analysis.graph.ops:
            if op.static_macs:
                layouts = tuple(lay for lay in ch.mac_layouts.get(op.index, ())
                                if any(ch.root(g) in roots for g in layout_groups(lay)))  # fmt: skip
                self._mac_table.append((op.index, op.static_macs, layouts, kernel_ops.get(op.index)))

    # ---- activation -------------------------------------------------------------------------------------------------
    def _width_of(self, cfg: Mapping[str, Mapping[str, int]]):  # noqa: ANN202
        ch = self.analysis.channels
        widths = cfg.get("width", {})
        cache: dict[int, int] = {}

        def width_of(gid: int) -> int:
            if gid not in cache:
                group = self._root_to_group.get(ch.root(gid))
                cache[gid] = ch.uf.size[ch.root(gid)] if group is None else int(widths.get(group.name, group.size))
            return cache[gid]

        return width_of

    def _skipped_blocks(self, cfg: Mapping[str, Mapping[str, int]]) -> list:
        skipped = []
        for group in self.block_groups:
            n = int(cfg.get("depth", {}).get(group.name, 0))
            skipped.extend(group.blocks[len(group.blocks) - n :] if n else [])
        return skipped

    def activate(self, config: Mapping[str, Mapping[str, int]] | None) -> None:
        cfg = self.search_space.validate(config)
        width_of = self._width_of(cfg)
        activation = Activation(width_of, {k: int(v) for k, v in cfg.get("kernel", {}).items()})
        for plan in self._plans:
            activation.apply(plan)
        ch = self.analysis.channels
        for path, gid in ch.heads.items():
            w, full = width_of(gid), ch.uf.size[ch.root(gid)]
            self.model.get_submodule(path)._bnas.channel_index = None if w == full else slice(0, w)
        skipped = {p for b in self._skipped_blocks(cfg) for p in b.paths}
        for group in self.block_groups:
            for block in group.blocks:
                for path in block.paths:
                    self.model.get_submodule(path).__dict__["_bnas_skip"] = path in skipped
        self._active = cfg

    @property
    def active_config(self) -> dict[str, dict[str, int]]:
        return copy.deepcopy(self._active)

    def set_stage(
        self, enabled_dims: Sequence[str], width_indicator: int | None = None, depth_indicator: int | None = None
    ) -> None:
        """Restrict sampling to a progressive-shrinking stage; disabled dimensions stay at their maximum."""
        unknown = set(enabled_dims) - {"kernel", "width", "depth"}
        if unknown:
            raise SearchSpaceError(f"unknown elasticity dimension(s) {sorted(unknown)}; allowed: kernel, width, depth")
        self.stage_space = self.search_space.restrict(enabled_dims, width_indicator, depth_indicator)
        self.stage = {
            "dims": list(enabled_dims),
            "width_indicator": width_indicator,
            "depth_indicator": depth_indicator,
        }

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        ACTIVE[0] += 1
        try:
            return self.model(*args, **kwargs)
        finally:
            ACTIVE[0] -= 1

    # ---- costs ------------------------------------------------------------------------------------------------------
    def macs(self, config: Mapping[str, Mapping[str, int]] | None = None) -> int:
        """Exact MACs of one forward on ``example_input`` (batch as given) for the active or given subnet."""
        cfg = self._active if config is None else self.search_space.validate(config)
        activation = Activation(self._width_of(cfg), {})
        skipped = [(b.start, b.end) for b in self._skipped_blocks(cfg)]
        kernels = cfg.get("kernel", {})
        total = 0
        for index, static, layouts, kernel_path in self._mac_table:
            if any(s <= index < e for s, e in skipped):
                continue
            num = den = 1
            for layout in layouts:
                num *= activation.length(layout)
                den *= sum(s.length for s in layout)
            if kernel_path is not None:
                nd = len(self.model.get_submodule(kernel_path).__dict__["kernel_size"])
                num *= int(kernels[kernel_path]) ** nd
                den *= self.kernel_plans[kernel_path].choices[0] ** nd
            total += static * num // den
        return int(total)

    def params(self, config: Mapping[str, Mapping[str, int]] | None = None) -> int:
        """Parameters of the extracted subnet for the active or given config (kernel transforms are not part of it)."""
        cfg = self._active if config is None else self.search_space.validate(config)
        activation = Activation(self._width_of(cfg), {})
        skipped = [p for b in self._skipped_blocks(cfg) for p in b.paths]
        ch, graph = self.analysis.channels, self.analysis.graph
        heads = list(ch.heads)

        def inside(path: str, prefixes: list[str]) -> bool:
            return any(path == s or path.startswith(s + ".") for s in prefixes)

        total = 0
        previous = self._active
        if heads and config is not None:
            self.activate(cfg)
        try:
            for path in heads:
                if not inside(path, skipped):
                    total += active_param_count(self.model.get_submodule(path))
        finally:
            if heads and config is not None:
                self.activate(previous)
        kernels = cfg.get("kernel", {})
        for name, param in self.model.named_parameters():
            owners = graph.param_owners.get(name, [])
            if "kernel_transform_" in name or all(inside(p, skipped) or inside(p, heads) for p, _ in owners):
                continue
            shape = list(param.shape)
            for dim in range(len(shape)):
                layout = ch.params.get((name, dim))
                if layout is not None and any(ch.root(g) in self._root_to_group for g in layout_groups(layout)):
                    shape[dim] = activation.length(layout)
            path = owners[0][0] if owners else ""
            if path in self.kernel_plans and owners[0][1] == "weight":
                shape[2:] = [int(kernels[path])] * (len(shape) - 2)
            total += math.prod(shape)
        return int(total)

    # ---- extraction -------------------------------------------------------------------------------------------------
    def extract(self, config: Mapping[str, Mapping[str, int]] | None = None) -> nn.Module:
        """A plain, physically smaller copy of the subnet: the user's own classes, no elastic code."""
        previous = self._active
        if config is not None:
            self.activate(config)
        try:
            result = copy.deepcopy(self.model)
            blocks = {p: b for b in self._skipped_blocks(self._active) for p in b.paths}
            done: list[str] = []
            for path in sorted(blocks, key=len):
                if not any(path.startswith(d + ".") for d in done):
                    result.set_submodule(path, skipped_stand_in(blocks[path].plain))
                    done.append(path)
            memo: dict[int, torch.Tensor] = {}
            for path, module in list(result.named_modules()):
                if isinstance(module, ElasticMultiheadAttention):
                    result.set_submodule(path, module.to_static())
            for module in list(result.modules()):
                if is_view_elastic(module):
                    materialize(module, memo)
            return result
        finally:
            if config is not None:
                self.activate(previous)

    # ---- reorganisation ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def reorganize_weights(
        self, importance: str | None = None, external: Mapping[str, Any] | None = None
    ) -> list[Permutation]:
        """Sort every width group's channels by importance (L1, L2, geometric_median, external): outputs unchanged.

        Returns the ``(parameter, dim, index)`` permutations applied; quantizers kept beside the parameters must follow
        them (``training.quantization.follow_permutations``), or the outputs of a QAT super-network change.
        """
        opts = self.options.get("width", {}) or {}
        kind = importance or opts.get("filter_importance", "L1")
        if kind == "external" and external is None:
            path = opts.get("external_importance_path")
            external = torch.load(path, weights_only=True) if path else None
        groups = [g for g in self.width_groups if g.producers]  # attention heads keep their order
        if kind == "external":
            known = set(external or {})
            groups = [g for g in groups if g.name in known or known & set(g.producers)]
            if not groups:
                raise WidthConfigError(
                    "external_importance_path: no importance tensor for any width group; keys must be group or layer "
                    f"names such as {', '.join(g.name for g in self.width_groups[:5])}"
                )
            for g in [g for g in self.width_groups if g not in groups]:
                logger.warning("external importance has no entry for width group %s: its order is kept", g.name)
        perms = {}
        for g in groups:
            score = group_importance(self.model, self.analysis, g, kind, external)
            if kind == "external" and g.unit > 1:
                score = score.reshape(-1, g.unit).sum(1)
            perms[g.root] = sort_permutation(score, g.unit)
        return apply_permutations(self.model, self.analysis, perms)

    # ---- report -----------------------------------------------------------------------------------------------------
    def generation_report(self) -> GenerationReport:
        """Every prunable layer and channel group with its status, the depth blocks and the kernels (see report.py)."""
        return build_report(self)

    # ---- state ------------------------------------------------------------------------------------------------------
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # noqa: D102
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):  # noqa: ANN201, D102
        missing_transforms = [k for k in self.model.state_dict() if "kernel_transform_" in k and k not in state_dict]
        result = self.model.load_state_dict(state_dict, strict=False, assign=assign)
        missing = [k for k in result.missing_keys if k not in missing_transforms]
        if strict and (missing or result.unexpected_keys):
            raise RuntimeError(
                f"checkpoint does not match the model: missing keys {missing[:5]}, unexpected keys "
                f"{result.unexpected_keys[:5]}"
            )
        return result

    def get_state(self) -> dict[str, Any]:
        state = {
            "format": STATE_FORMAT,
            "options": self.options,
            "example_input": describe_inputs(self.example_input),
            "search_space": self.search_space.to_json(),
            "width_groups": {g.name: g.to_json() for g in self.width_groups},
            "block_groups": {b.name: [list(x.paths) for x in b.blocks] for b in self.block_groups},
            "kernels": {k: list(v) for k, v in self.kernel_choices.items()},
            "active_config": self.active_config,
            "stage": copy.deepcopy(self.stage),
        }
        if self.example_kwargs:
            state["example_kwargs"] = describe_inputs(self.example_kwargs)
        if self.dropped:
            state["dropped"] = dict(self.dropped)
        return state

    @classmethod
    def from_state(cls, model: nn.Module, state: Mapping[str, Any], deep_copy: bool = True) -> SuperNetwork:
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"supernet state: format {state.get('format')!r} is not {STATE_FORMAT!r}")
        inputs = build_inputs(state["example_input"])
        kwargs = build_inputs(state.get("example_kwargs") or {})
        sn = cls(copy.deepcopy(model) if deep_copy else model, inputs, state["options"], kwargs)
        if state.get("dropped"):
            sn.drop_variables(state["dropped"])
        mine = sn.search_space.to_json()
        if mine != state["search_space"]:
            theirs = {v["dim"] + "/" + v["key"]: v["choices"] for v in state["search_space"]["variables"]}
            ours = {v["dim"] + "/" + v["key"]: v["choices"] for v in mine["variables"]}
            diff = [k for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)][:5]
            raise ValueError(f"supernet state does not match this model: search space differs at {diff}")
        stage = state.get("stage") or {}
        sn.set_stage(
            stage.get("dims", sn.search_space.dims), stage.get("width_indicator"), stage.get("depth_indicator")
        )
        sn.activate(state.get("active_config"))
        return sn

    def drop_variables(self, reasons: Mapping[str, str]) -> None:
        """Remove variables (``dim/key`` -> why) from the space; their layers keep their full size."""
        self.dropped.update(reasons)
        names = set(reasons)
        self.width_groups = [g for g in self.width_groups if f"width/{g.name}" not in names]
        self.block_groups = [b for b in self.block_groups if f"depth/{b.name}" not in names]
        for path in [p for p in self.kernel_plans if f"kernel/{p}" in names]:
            del self.kernel_plans[path]
            self.kernel_status[path] = reasons[f"kernel/{path}"]
        self.activate(None)
        self._build()

    def extra_repr(self) -> str:
        return f"search_space={self.search_space!r}"


def fingerprint(supernet: SuperNetwork) -> str:
    """Stable identity of the weights and structure (for evaluation caches)."""
    import hashlib

    h = hashlib.sha256(repr(supernet.search_space.to_json()).encode())
    for name, t in sorted(supernet.state_dict().items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(t.detach().float().cpu().numpy()).tobytes()[:4096])
        h.update(str(float(t.float().sum())).encode())
    return h.hexdigest()[:16]


__all__ = ["SuperNetwork", "fingerprint"]
