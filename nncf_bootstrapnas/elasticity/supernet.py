"""The super-network: the user's model with elastic layers and skippable blocks, driven by plain-JSON subnet configs."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..graph.analysis import AnalysedGraph, analyse, matches_scope
from ..graph.layout import active_indices
from . import attention as _attention  # noqa: F401  (registers the elastic attention layer)
from .depth import make_skippable, strip_skippable
from .modules import ELASTIC_CLASSES, active_param_count, conv_kernel_choices, index_len, is_elastic, make_elastic
from .search_space import SearchSpace, SearchSpaceError, Variable
from .width import WidthConfigError, apply_permutations, build_width_groups, group_importance, sort_permutation

logger = logging.getLogger("nncf_bootstrapnas")
STATE_FORMAT = "nncf_bootstrapnas.supernet/1"


class SuperNetwork(nn.Module):
    """Wraps ``model`` (a deep copy); ``state_dict`` keys are the model's own, so pre-trained checkpoints load as-is."""

    def __init__(self, model: nn.Module, example_input: Sequence[torch.Tensor], options: Mapping[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.example_input = tuple(example_input)
        self.options = copy.deepcopy(dict(options))
        dims = list(self.options.get("available_elasticity_dims", ["kernel", "width", "depth"]))
        depth_opts = self.options.get("depth", {}) or {}
        self.analysis: AnalysedGraph = analyse(
            model,
            self.example_input,
            skipped_blocks=depth_opts.get("skipped_blocks"),
            min_block_size=depth_opts.get("min_block_size"),
            max_block_size=depth_opts.get("max_block_size"),
            with_depth="depth" in dims,
        )
        scopes = {k: self.options.get(k) for k in ("ignored_scopes", "target_scopes")}
        self.width_groups = (
            build_width_groups(self.analysis, self.options.get("width", {}) or {}, scopes) if "width" in dims else []
        )
        self.block_groups = self.analysis.block_groups if "depth" in dims else []
        self.kernel_choices = self._find_kernels(scopes) if "kernel" in dims else {}
        self._make_modules_elastic()
        variables = [Variable("kernel", k, c) for k, c in self.kernel_choices.items()]
        variables += [Variable("width", g.name, g.choices) for g in self.width_groups]
        variables += [Variable("depth", b.name, tuple(range(len(b.blocks) + 1))) for b in self.block_groups]
        self.search_space = SearchSpace(variables)
        self.stage_space = self.search_space
        self.stage: dict[str, Any] = {"dims": self.search_space.dims, "width_indicator": None, "depth_indicator": None}
        self._root_to_group = {g.root: g for g in self.width_groups}
        self._active: dict[str, dict[str, int]] = self.search_space.maximum()
        self._prepare_mac_table()
        self.activate(None)

    # ---- construction -----------------------------------------------------------------------------------------------
    def _find_kernels(self, scopes: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        max_num = int(self.options["kernel"]["max_num_kernels"])
        result = {}
        for path in self.analysis.graph.leaf_calls:
            module = self.model.get_submodule(path)
            if type(module) not in ELASTIC_CLASSES or matches_scope(path, scopes.get("ignored_scopes")):
                continue
            if scopes.get("target_scopes") and not matches_scope(path, scopes["target_scopes"]):
                continue
            choices, why = conv_kernel_choices(module, max_num)
            if why:
                logger.info("kernel of %s is not elastic: %s", path, why)
            elif choices:
                result[path] = choices
        return result

    def _make_modules_elastic(self) -> None:
        ch = self.analysis.channels
        names = set(ch.producers) | set(ch.consumers) | set(ch.channelwise) | set(self.kernel_choices) | set(ch.heads)
        for path in sorted(names):
            module = self.model.get_submodule(path)
            if type(module) not in ELASTIC_CLASSES:
                continue
            if path in self.kernel_choices:
                make_elastic(module, kernel_choices=self.kernel_choices[path])
            else:
                make_elastic(module)
        for group in self.block_groups:
            for block in group.blocks:
                for path in block.paths:
                    make_skippable(self.model.get_submodule(path))

    def _prepare_mac_table(self) -> None:
        """Per leaf call: MACs at full size and the sizes they scale with (exact integer scaling)."""
        self._mac_table: list[tuple[int, str | None, int]] = []  # (op index, elastic module or None, static MACs)
        for op in self.analysis.graph.ops:
            if op.static_macs:
                module = op.module if op.module and is_elastic(self.model.get_submodule(op.module)) else None
                self._mac_table.append((op.index, module, op.static_macs))

    # ---- activation -------------------------------------------------------------------------------------------------
    def _width_of(self, cfg: Mapping[str, Mapping[str, int]]):  # noqa: ANN202
        ch = self.analysis.channels
        widths = cfg.get("width", {})

        def width_of(gid: int) -> int:
            group = self._root_to_group.get(ch.root(gid))
            if group is None:
                return ch.uf.size[ch.root(gid)]
            return int(widths.get(group.name, group.size))

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
        ch = self.analysis.channels
        for path, gid in ch.producers.items():
            m = self.model.get_submodule(path)
            if is_elastic(m):
                w, full = width_of(gid), ch.uf.size[ch.root(gid)]
                m._bnas.out_index = None if w == full else slice(0, w)
        for path, layout in ch.consumers.items():
            m = self.model.get_submodule(path)
            if is_elastic(m):
                m._bnas.in_index = active_indices(layout, width_of)
        for path, layout in ch.channelwise.items():
            m = self.model.get_submodule(path)
            if is_elastic(m):
                m._bnas.channel_index = active_indices(layout, width_of)
        for path, gid in ch.heads.items():
            m = self.model.get_submodule(path)
            w, full = width_of(gid), ch.uf.size[ch.root(gid)]
            m._bnas.channel_index = None if w == full else slice(0, w)
        for path in self.kernel_choices:
            self.model.get_submodule(path)._bnas.kernel = int(cfg["kernel"][path])
        skipped = {p for b in self._skipped_blocks(cfg) for p in b.paths}
        for group in self.block_groups:
            for block in group.blocks:
                for path in block.paths:
                    self.model.get_submodule(path)._bnas_skip = path in skipped
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
        return self.model(*args, **kwargs)

    # ---- costs ------------------------------------------------------------------------------------------------------
    def _module_active(self, path: str, width_of) -> tuple[float, float]:  # noqa: ANN001
        """(active/full) factor numerator and denominator for one elastic layer's MACs."""
        m = self.model.get_submodule(path)
        ch = self.analysis.channels
        num = den = 1
        if path in ch.producers:
            gid = ch.producers[path]
            num *= width_of(gid)
            den *= ch.uf.size[ch.root(gid)]
        for table in (ch.consumers, ch.channelwise):
            if path in table:
                idx = active_indices(table[path], width_of)
                full = sum(s.size * s.repeat for s in table[path])
                num *= index_len(idx, full)
                den *= full
        if path in ch.heads:
            gid = ch.heads[path]
            num *= width_of(gid)
            den *= ch.uf.size[ch.root(gid)]
        if path in self.kernel_choices:
            k, kmax = self._active_kernel(path), self.kernel_choices[path][0]
            nd = len(m.kernel_size)
            num *= k**nd
            den *= kmax**nd
        return num, den

    def _active_kernel(self, path: str) -> int:
        return int(self._cost_cfg["kernel"][path])

    def macs(self, config: Mapping[str, Mapping[str, int]] | None = None) -> int:
        """Exact MACs of one forward on ``example_input`` (batch as given) for the active or given subnet."""
        cfg = self._active if config is None else self.search_space.validate(config)
        self._cost_cfg = cfg
        width_of = self._width_of(cfg)
        skipped = [(b.start, b.end) for b in self._skipped_blocks(cfg)]
        total = 0
        for index, module, static in self._mac_table:
            if any(s <= index < e for s, e in skipped):
                continue
            if module is None:
                total += static
            else:
                num, den = self._module_active(module, width_of)
                total += static * num // den
        return int(total)

    def params(self, config: Mapping[str, Mapping[str, int]] | None = None) -> int:
        """Parameters of the extracted subnet for the active or given config (kernel transforms are not part of it)."""
        previous = self._active
        if config is not None:
            self.activate(config)
        try:
            skipped = [p for b in self._skipped_blocks(self._active) for p in b.paths]
            skipped += list(self.analysis.channels.heads)  # their out_proj is counted with the attention layer
            total = 0
            for path, module in self.model.named_modules():
                if any(path.startswith(s + ".") for s in skipped) or (path in skipped and not is_elastic(module)):
                    continue
                if is_elastic(module):
                    total += active_param_count(module)
                else:
                    total += sum(p.numel() for p in module.parameters(recurse=False))
            return int(total)
        finally:
            if config is not None:
                self.activate(previous)

    # ---- extraction -------------------------------------------------------------------------------------------------
    def extract(self, config: Mapping[str, Mapping[str, int]] | None = None) -> nn.Module:
        """A plain, physically smaller copy of the subnet: ordinary torch modules, no elastic code."""
        previous = self._active
        if config is not None:
            self.activate(config)
        try:
            result = copy.deepcopy(self.model)
            skipped = {p for b in self._skipped_blocks(self._active) for p in b.paths}
            for path in sorted(skipped, key=len):
                result.set_submodule(path, nn.Identity())
            for path, module in list(result.named_modules()):
                if is_elastic(module):
                    result.set_submodule(path, module.to_static())
                elif hasattr(type(module), "_bnas_base"):
                    strip_skippable(module)
            return result
        finally:
            if config is not None:
                self.activate(previous)

    # ---- reorganisation ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def reorganize_weights(self, importance: str | None = None, external: Mapping[str, Any] | None = None) -> None:
        """Sort every width group's channels by importance (L1, L2, geometric_median, external): outputs unchanged."""
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
        perms = {g.root: sort_permutation(group_importance(self.model, g, kind, external)) for g in groups}
        apply_permutations(self.model, self.analysis, perms)

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
        return {
            "format": STATE_FORMAT,
            "options": self.options,
            "example_input": [
                {"shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", "")} for t in self.example_input
            ],
            "search_space": self.search_space.to_json(),
            "width_groups": {g.name: g.to_json() for g in self.width_groups},
            "block_groups": {b.name: [list(x.paths) for x in b.blocks] for b in self.block_groups},
            "kernels": {k: list(v) for k, v in self.kernel_choices.items()},
            "active_config": self.active_config,
            "stage": copy.deepcopy(self.stage),
        }

    @classmethod
    def from_state(cls, model: nn.Module, state: Mapping[str, Any], deep_copy: bool = True) -> SuperNetwork:
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"supernet state: format {state.get('format')!r} is not {STATE_FORMAT!r}")
        inputs = [torch.zeros(s["shape"], dtype=getattr(torch, s["dtype"])) for s in state["example_input"]]
        sn = cls(copy.deepcopy(model) if deep_copy else model, inputs, state["options"])
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
