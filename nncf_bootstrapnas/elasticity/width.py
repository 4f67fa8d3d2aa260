"""Elastic width: channel groups from the analysed graph become width variables; reorganisation by importance.

Every parameter dimension bound to a group (weights, biases, norm statistics, layer scales, class tokens, tied
weights once) is permuted with it, so reorganisation is function-preserving wherever the analysis found the group.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..graph.analysis import AnalysedGraph, matches_scope
from ..graph.channels import Frozen
from ..graph.layout import layout_groups, permute_along, segment_positions

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
    unit: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "choices": list(self.choices),
            "producers": self.producers,
            "consumers": self.consumers,
            "channelwise": self.channelwise,
            "unit": self.unit,
        }


@dataclass
class GroupStatus:
    """Every channel group the analysis found, elastic or not (for the generation report)."""

    name: str
    root: int
    size: int
    members: dict[str, list[str]]
    choices: tuple[int, ...] = ()
    frozen: Frozen | None = None
    unit: int = 1


def width_choices(size: int, options: Mapping[str, Any], unit: int = 1) -> tuple[int, ...]:
    """Legacy NNCF width list: multipliers of the full width, or steps of ``width_step`` down to ``min_width``;
    groups with a unit (whole heads, whole conv groups) round to multiples of it.

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
    if unit > 1:
        result = sorted({max(unit, round(w / unit) * unit) for w in result}, reverse=True)
    if max_num is not None and int(max_num) > 0:
        result = result[: int(max_num)]
    return tuple(result)


def _members(analysis: AnalysedGraph) -> dict[int, dict[str, list[str]]]:
    ch = analysis.channels
    order = {}
    for op in analysis.graph.ops:
        order.setdefault(op.where, op.index)
    members: dict[int, dict[str, list[str]]] = {}

    def entry(root: int) -> dict[str, list[str]]:
        return members.setdefault(root, {"producers": [], "consumers": [], "channelwise": []})

    for group, (module, _) in sorted(ch.origins.items(), key=lambda kv: (order.get(kv[1][0], 1 << 30), kv[0])):
        if module not in entry(ch.root(group))["producers"]:
            entry(ch.root(group))["producers"].append(module)
    for kind, table in (("consumers", ch.consumers), ("channelwise", ch.channelwise)):
        for module, layout in table.items():
            for g in layout_groups(layout):
                if ch.root(g) in members and module not in members[ch.root(g)][kind]:
                    members[ch.root(g)][kind].append(module)
    for module, gid in ch.heads.items():
        entry(ch.root(gid))["channelwise"].append(module)
    return members


def group_names(analysis: AnalysedGraph) -> dict[int, str]:
    """Stable names: the first producing layer (``<layer>.<param>`` when one layer produces several groups)."""
    ch = analysis.channels
    names: dict[int, str] = {}
    taken: set[str] = set()
    first_of = {}  # module -> its first (earliest created) group: that one is named by the module alone
    for group, (module, _) in sorted(ch.origins.items()):
        first_of.setdefault(module, ch.root(group))
    for root, mem in _members(analysis).items():
        heads_of = next((m for m in ch.heads if ch.root(ch.heads[m]) == root), None)
        if mem["producers"]:
            module = mem["producers"][0]
            origin = next(o for g, o in sorted(ch.origins.items()) if ch.root(g) == root and o[0] == module)
            name = module if first_of[module] == root else f"{module}.{origin[1][0].rpartition('.')[2]}"
            name = name if name not in taken else f"{name}:{origin[1][1]}"
        else:
            name = f"{heads_of}.heads"
        names[root] = name
        taken.add(name)
    return names


def build_width_groups(
    analysis: AnalysedGraph, options: Mapping[str, Any], scopes: Mapping[str, Any]
) -> tuple[list[WidthGroup], list[GroupStatus]]:
    ch = analysis.channels
    _apply_overwrite_groups(analysis, options)
    members = _members(analysis)
    names = group_names(analysis)
    overwrite = {}
    for group_names_, widths in zip(
        options.get("overwrite_groups") or [], options.get("overwrite_groups_widths") or []
    ):
        overwrite[ch.root(ch.producers[group_names_[0]])] = tuple(sorted({int(w) for w in widths}, reverse=True))
    groups: list[WidthGroup] = []
    statuses: list[GroupStatus] = []
    for root, mem in members.items():
        name, size, unit = names[root], ch.uf.size[root], ch.unit(root)
        status = GroupStatus(name, root, size, mem, unit=unit)
        statuses.append(status)
        every = mem["producers"] + mem["consumers"] + mem["channelwise"]
        if root in ch.frozen:
            status.frozen = ch.frozen[root]
        elif any(matches_scope(m, scopes.get("ignored_scopes")) for m in every):
            status.frozen = Frozen("in ignored_scopes")
        elif scopes.get("target_scopes") and not any(
            matches_scope(m, scopes["target_scopes"]) for m in mem["producers"]
        ):
            status.frozen = Frozen("not in target_scopes")
        if status.frozen is not None:
            logger.info("width group %s is not elastic: %s", name, status.frozen.text())
            continue
        choices = overwrite.get(root) or width_choices(size, options, unit)
        if choices[0] != size:
            raise WidthConfigError(f"overwrite_groups_widths for group {name}: must start at its full width {size}")
        status.choices = choices
        if len(choices) > 1:
            groups.append(WidthGroup(name, root, size, choices, unit=unit, **mem))
        else:
            status.frozen = Frozen(f"one width choice only (size {size}, min_width {options['min_width']})")
    return groups, statuses


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
    ch.finalize()


# ---- reorganisation ---------------------------------------------------------------------------------------------------
def raw_tensor(model: nn.Module, analysis: AnalysedGraph, name: str) -> torch.Tensor:
    """A parameter or buffer by canonical name, never an elastic view."""
    path, local = analysis.graph.param_owners[name][0]
    module = model.get_submodule(path) if path else model
    return module._parameters[local] if local in module._parameters else module._buffers[local]


def _filter_importance(rows: torch.Tensor, kind: str) -> torch.Tensor:
    flat = rows.detach().float()
    if kind == "L1":
        return flat.abs().sum(1)
    if kind == "L2":
        return flat.pow(2).sum(1).sqrt()
    if kind == "geometric_median":  # FPGM: filters far from the others carry the most information
        return torch.cdist(flat, flat).sum(1)
    raise WidthConfigError(f"filter_importance: {kind!r} is not one of L1, L2, geometric_median, external")


def _channel_rows(tensor: torch.Tensor, dim: int, positions: list[torch.Tensor], unit: int) -> torch.Tensor:
    """One row per channel of the group: every entry of ``tensor`` that belongs to it, along ``dim``."""
    parts = []
    for pos in positions:  # (blocks, repeat) per segment
        picked = tensor.index_select(dim, pos.flatten()).movedim(dim, 0)
        parts.append(picked.reshape(pos.shape[0], -1))
    rows = torch.cat(parts, 1)
    return rows.reshape(rows.shape[0] * unit, -1) if unit > 1 and rows.shape[1] % unit == 0 else rows


def group_importance(
    model: nn.Module, analysis: AnalysedGraph, group: WidthGroup, kind: str, external: Mapping[str, Any] | None
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
    ch = analysis.channels
    total = torch.zeros(group.size // group.unit)
    for gid, (_, (pname, dim)) in ch.origins.items():
        if ch.root(gid) != group.root:
            continue
        layout = ch.params[(pname, dim)]
        positions = [p for g in layout_groups(layout) if ch.root(g) == group.root
                     for p in segment_positions(layout, g)]  # fmt: skip
        rows = _channel_rows(raw_tensor(model, analysis, pname), dim, positions, 1)
        scores = _filter_importance(rows, kind)
        total += scores.reshape(-1, scores.numel() // total.numel()).sum(1)
    return total


def sort_permutation(importance: torch.Tensor, unit: int = 1) -> torch.Tensor:
    """Channels (or whole ``unit``-channel blocks) from the most to the least important."""
    order = torch.argsort(importance, descending=True, stable=True)
    if unit == 1:
        return order
    return (order[:, None] * unit + torch.arange(unit)).flatten()


Permutation = tuple[torch.Tensor, int, torch.Tensor]  # (tensor permuted, dim, index: new[i] = old[index[i]])


@torch.no_grad()
def apply_permutations(
    model: nn.Module, analysis: AnalysedGraph, perms: Mapping[int, torch.Tensor]
) -> list[Permutation]:
    """Permute every parameter dimension bound to a permuted group (keys are group roots), each tensor once.

    Returns what was done, so that tensors kept beside a parameter (per-channel quantizer scales) can follow it.
    """
    ch = analysis.channels
    raw = {g: perms[ch.root(g)] for g in ch.uf.parent if ch.root(g) in perms}
    done: list[Permutation] = []
    for (pname, dim), layout in ch.params.items():
        relevant = {g: raw[g] for g in layout_groups(layout) if g in raw}
        if relevant:
            t = raw_tensor(model, analysis, pname)
            index = permute_along(torch.arange(t.shape[dim]), 0, layout, relevant).to(t.device)
            t.copy_(t.index_select(dim, index))
            done.append((t, dim, index))
    return done
