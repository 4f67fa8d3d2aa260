"""Elastic width: channel groups from the analysed graph become width variables; reorganisation by importance."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..graph.analysis import AnalysedGraph, matches_scope
from ..graph.layout import Layout, layout_groups, permute_along

logger = logging.getLogger("nncf_bootstrapnas")


class WidthConfigError(ValueError):
    pass


@dataclass
class WidthGroup:
    name: str
    root: int
    size: int
    choices: tuple[int, ...]
    producers: list[str] = field(default_factory=list)
    consumers: list[str] = field(default_factory=list)
    channelwise: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "choices": list(self.choices),
            "producers": self.producers,
            "consumers": self.consumers,
            "channelwise": self.channelwise,
        }


def width_choices(size: int, options: Mapping[str, Any]) -> tuple[int, ...]:
    """Legacy NNCF width list: multipliers of the full width, or steps of ``width_step`` down to ``min_width``.

    ``options`` carries the schema's defaults (``create_supernet`` fills them).
    """
    min_width = int(options["min_width"])
    max_num = options.get("max_num_widths")
    multipliers = options.get("width_multipliers")
    if multipliers:
        widths = {size} | {max(1, int(round(size * m))) for m in multipliers}
    else:
        step = int(options["width_step"])
        widths, w = {size}, size - step
        while w >= min_width:
            widths.add(w)
            w -= step
    result = sorted((w for w in widths if w >= min_width or w == size), reverse=True)
    if max_num is not None and int(max_num) > 0:
        result = result[: int(max_num)]
    return tuple(result)


def build_width_groups(
    analysis: AnalysedGraph, options: Mapping[str, Any], scopes: Mapping[str, Any]
) -> list[WidthGroup]:
    ch = analysis.channels
    members: dict[int, dict[str, list[str]]] = {}
    order = {op.module: op.index for op in analysis.graph.ops if op.module}
    for module, gid in sorted(ch.producers.items(), key=lambda kv: order.get(kv[0], 0)):
        members.setdefault(ch.root(gid), {"producers": [], "consumers": [], "channelwise": []})["producers"].append(
            module
        )
    for kind, table in (("consumers", ch.consumers), ("channelwise", ch.channelwise)):
        for module, layout in table.items():
            for g in layout_groups(layout):
                entry = members.get(ch.root(g))
                if entry is not None and module not in entry[kind]:
                    entry[kind].append(module)
    _apply_overwrite_groups(analysis, options)
    overwrite = {}
    for names, widths in zip(options.get("overwrite_groups") or [], options.get("overwrite_groups_widths") or []):
        overwrite[ch.root(ch.producers[names[0]])] = tuple(sorted({int(w) for w in widths}, reverse=True))
    for module, gid in ch.heads.items():
        members.setdefault(ch.root(gid), {"producers": [], "consumers": [], "channelwise": [module]})
    groups: list[WidthGroup] = []
    for root, mem in members.items():
        heads_of = next(
            (m for m in mem["channelwise"] if ch.heads.get(m) is not None and ch.root(ch.heads[m]) == root), None
        )
        name = mem["producers"][0] if mem["producers"] else f"{heads_of}.heads"
        every = mem["producers"] + mem["consumers"] + mem["channelwise"]
        if root in ch.frozen:
            logger.info("width group %s is not elastic: %s", name, ch.frozen[root])
            continue
        if any(matches_scope(m, scopes.get("ignored_scopes")) for m in every):
            logger.info("width group %s is not elastic: in ignored_scopes", name)
            continue
        if scopes.get("target_scopes") and not any(matches_scope(m, scopes["target_scopes"]) for m in mem["producers"]):
            continue
        size = ch.uf.size[root]
        choices = overwrite.get(root) or width_choices(size, options)
        if heads_of is not None:  # whole heads only
            head_dim = size // analysis_num_heads(analysis, heads_of)
            choices = tuple(sorted({max(head_dim, round(c / head_dim) * head_dim) for c in choices}, reverse=True))
        if choices[0] != size:
            raise WidthConfigError(f"overwrite_groups_widths for group {name}: must start at its full width {size}")
        if len(choices) > 1:
            groups.append(WidthGroup(name, root, size, choices, **mem))
    return groups


def analysis_num_heads(analysis: AnalysedGraph, module: str) -> int:
    return analysis.heads_count[module]


def _apply_overwrite_groups(analysis: AnalysedGraph, options: Mapping[str, Any]) -> None:
    ch = analysis.channels
    for i, names in enumerate(options.get("overwrite_groups") or []):
        missing = [n for n in names if n not in ch.producers]
        if missing:
            known = ", ".join(list(ch.producers)[:10])
            raise WidthConfigError(
                f"elasticity.width.overwrite_groups[{i}]: {missing[0]!r} is not a layer with output channels; "
                f"known layers include: {known}"
            )
        sizes = {ch.uf.size[ch.root(ch.producers[n])] for n in names}
        if len(sizes) != 1:
            raise WidthConfigError(f"elasticity.width.overwrite_groups[{i}]: layers have different widths {sizes}")
        for n in names[1:]:
            ch.uf.union(ch.producers[names[0]], ch.producers[n])


# ---- reorganisation ---------------------------------------------------------------------------------------------------
def _filter_importance(weight: torch.Tensor, kind: str) -> torch.Tensor:
    flat = weight.detach().flatten(1).float()
    if kind == "L1":
        return flat.abs().sum(1)
    if kind == "L2":
        return flat.pow(2).sum(1).sqrt()
    if kind == "geometric_median":  # FPGM: filters far from the others carry the most information
        return torch.cdist(flat, flat).sum(1)
    raise WidthConfigError(f"filter_importance: {kind!r} is not one of L1, L2, geometric_median, external")


def _out_weight(module: nn.Module) -> torch.Tensor:
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return module.weight.transpose(0, 1)
    return module.weight


def group_importance(
    model: nn.Module, group: WidthGroup, kind: str, external: Mapping[str, Any] | None
) -> torch.Tensor:
    if kind == "external":
        if external is None or (group.name not in external and not any(p in external for p in group.producers)):
            raise WidthConfigError(f"external_importance_path: no importance tensor for width group {group.name!r}")
        value = external.get(group.name)
        value = value if value is not None else next(external[p] for p in group.producers if p in external)
        value = torch.as_tensor(value).flatten().float()
        if value.numel() != group.size:
            raise WidthConfigError(f"external importance for {group.name}: {value.numel()} values, need {group.size}")
        return value
    total = torch.zeros(group.size)
    for name in group.producers:
        total += _filter_importance(_out_weight(model.get_submodule(name)), kind)
    return total


@torch.no_grad()
def apply_permutations(model: nn.Module, analysis: AnalysedGraph, perms: Mapping[int, torch.Tensor]) -> None:
    """Permute every parameter coupled to the permuted groups (keys are group roots) — function-preserving."""
    ch = analysis.channels
    raw: dict[int, torch.Tensor] = {}
    for g in range(len(ch.uf.parent)):
        if ch.root(g) in perms:
            raw[g] = perms[ch.root(g)]

    def relevant(layout: Layout) -> dict[int, torch.Tensor]:
        return {g: raw[g] for g in layout_groups(layout) if g in raw}

    def permute_param(t: torch.Tensor | None, dim: int, layout: Layout) -> None:
        p = relevant(layout)
        if t is not None and p:
            t.copy_(permute_along(t, dim, layout, p))

    for module_name, gid in ch.producers.items():
        if gid not in raw:
            continue
        m = model.get_submodule(module_name)
        dim = 1 if isinstance(m, nn.modules.conv._ConvTransposeNd) else 0
        layout = ((_segment(gid, ch.uf.size[ch.root(gid)])),)
        permute_param(m.weight, dim, layout)
        permute_param(getattr(m, "bias", None), 0, layout)
    for module_name, layout in ch.consumers.items():
        m = model.get_submodule(module_name)
        permute_param(m.weight, 0 if isinstance(m, nn.modules.conv._ConvTransposeNd) else 1, layout)
    for module_name, layout in ch.channelwise.items():
        m = model.get_submodule(module_name)
        for attr in ("weight", "bias", "running_mean", "running_var"):
            permute_param(getattr(m, attr, None), 0, layout)


def _segment(gid: int, size: int):  # noqa: ANN202
    from ..graph.layout import Segment

    return Segment(gid, size, 1)


def sort_permutation(importance: torch.Tensor) -> torch.Tensor:
    return torch.argsort(importance, descending=True, stable=True)
