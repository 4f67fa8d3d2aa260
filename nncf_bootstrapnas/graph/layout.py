"""Channel layouts: which channel groups a tensor dimension is made of, and in what order.

A dimension that carries channels is a sequence of segments. A plain conv output is one segment of its own group;
``torch.cat`` concatenates segments; ``flatten`` multiplies ``repeat`` (each channel then spans ``repeat`` consecutive
entries). With the active widths known, the layout gives the exact indices a consumer must keep.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Segment:
    group: int | None  # channel group id; None for channels that never change (e.g. concatenated with the input)
    size: int  # channels in the segment
    repeat: int = 1  # entries per channel along the dimension (after flatten)

    def to_json(self) -> list[int | None]:
        return [self.group, self.size, self.repeat]


Layout = tuple[Segment, ...]


def layout_length(layout: Layout) -> int:
    return sum(s.size * s.repeat for s in layout)


def with_repeat(layout: Layout, factor: int) -> Layout:
    return tuple(Segment(s.group, s.size, s.repeat * factor) for s in layout)


def layout_groups(layout: Layout) -> set[int]:
    return {s.group for s in layout if s.group is not None}


def active_indices(layout: Layout, width_of: Callable[[int], int]) -> torch.Tensor | slice | None:
    """Indices kept along a dimension with this layout; ``None`` when all are kept, a slice when they form a prefix."""
    pieces: list[torch.Tensor] = []
    offset = 0
    full = True
    for seg in layout:
        active = seg.size if seg.group is None else width_of(seg.group)
        if active != seg.size:
            full = False
        span = active * seg.repeat
        pieces.append(torch.arange(offset, offset + span))
        offset += seg.size * seg.repeat
    if full:
        return None
    if len(layout) == 1:
        return slice(0, pieces[0].numel())
    return torch.cat(pieces)


def segment_positions(layout: Layout, group: int) -> list[torch.Tensor]:
    """For each segment of ``group`` in the layout: a (channels, repeat) tensor of the positions it occupies."""
    out = []
    offset = 0
    for seg in layout:
        if seg.group == group:
            out.append(torch.arange(offset, offset + seg.size * seg.repeat).view(seg.size, seg.repeat))
        offset += seg.size * seg.repeat
    return out


def permute_along(tensor: torch.Tensor, dim: int, layout: Layout, perms: Mapping[int, torch.Tensor]) -> torch.Tensor:
    """Reorder ``tensor`` along ``dim`` so that every group's channels follow its permutation."""
    index = torch.arange(tensor.shape[dim])
    for group, perm in perms.items():
        for pos in segment_positions(layout, group):
            index[pos.flatten()] = pos[perm].flatten()
    return tensor.index_select(dim, index)


class UnionFind:
    """Channel groups that must keep the same width (residual adds, shared consumers) are merged here."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.size: dict[int, int] = {}

    def add(self, size: int) -> int:
        gid = len(self.parent)
        self.parent[gid] = gid
        self.size[gid] = size
        return gid

    def find(self, g: int) -> int:
        root = g
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[g] != root:
            self.parent[g], g = root, self.parent[g]
        return root

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            ra, rb = min(ra, rb), max(ra, rb)  # the earliest group names the merged one: stable names
            self.parent[rb] = ra
        return ra


def unify_layouts(uf: UnionFind, layouts: Sequence[Layout]) -> tuple[Layout | None, set[int]]:
    """Merge layouts that meet elementwise. Returns the merged layout, or ``None`` and the groups that must be frozen."""
    first = layouts[0]
    involved = set().union(*(layout_groups(lay) for lay in layouts))
    for other in layouts[1:]:
        if len(other) != len(first):
            return None, involved
        for a, b in zip(first, other):
            if a.size != b.size or a.repeat != b.repeat:
                return None, involved
            if (a.group is None) != (b.group is None):
                return None, involved
    for other in layouts[1:]:
        for a, b in zip(first, other):
            if a.group is not None and b.group is not None:
                uf.union(a.group, b.group)
    return first, set()
