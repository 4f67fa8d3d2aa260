"""Channel layouts: which channel groups a tensor dimension is made of, and in what order.

A dimension that carries channels is a sequence of segments. A plain conv output is one segment of its own group;
``torch.cat`` concatenates segments; ``flatten`` multiplies ``repeat`` (each channel then spans ``repeat`` consecutive
entries); a dimension over attention heads has one entry per ``unit`` channels (the head size). With the active widths
known, the layout gives the exact indices a consumer (or a parameter) must keep.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Segment:
    """``size`` channels of ``group`` (``None``: channels that never change); each block of ``unit`` channels is one
    entry repeated ``repeat`` times along the dimension."""

    group: int | None
    size: int
    repeat: int = 1
    unit: int = 1

    @property
    def length(self) -> int:
        return self.size // self.unit * self.repeat

    def to_json(self) -> list[int | None]:
        return [self.group, self.size, self.repeat, self.unit]


def segment(group: int | None, size: int, repeat: int = 1, unit: int = 1) -> Segment:
    """A segment in canonical form: a block of ``u`` channels spread over ``r`` entries equals ``u/g`` channels over
    ``r/g`` entries, so the common factor is divided out and equal layouts compare equal."""
    common = math.gcd(repeat, unit)
    return Segment(group, size, repeat // common, unit // common)


Layout = tuple[Segment, ...]


def layout_length(layout: Layout) -> int:
    return sum(s.length for s in layout)


def with_repeat(layout: Layout, factor: int) -> Layout:
    return tuple(segment(s.group, s.size, s.repeat * factor, s.unit) for s in layout)


def with_unit(layout: Layout, factor: int) -> Layout:
    return tuple(segment(s.group, s.size, s.repeat, s.unit * factor) for s in layout)


def layout_groups(layout: Layout) -> set[int]:
    return {s.group for s in layout if s.group is not None}


def active_length(layout: Layout, width_of: Callable[[int], int]) -> int:
    return sum((s.size if s.group is None else width_of(s.group)) // s.unit * s.repeat for s in layout)


def active_indices(layout: Layout, width_of: Callable[[int], int]) -> torch.Tensor | slice | None:
    """Indices kept along a dimension with this layout; ``None`` when all are kept, a slice when they form a prefix."""
    pieces: list[tuple[int, int]] = []
    offset = 0
    full = True
    for seg in layout:
        active = seg.size if seg.group is None else width_of(seg.group)
        if active != seg.size:
            full = False
        pieces.append((offset, offset + active // seg.unit * seg.repeat))
        offset += seg.length
    if full:
        return None
    if len(pieces) == 1 or all(a[1] == b[0] for a, b in zip(pieces, pieces[1:])):
        return slice(pieces[0][0], pieces[-1][1])
    return torch.cat([torch.arange(a, b) for a, b in pieces])


def segment_positions(layout: Layout, group: int) -> list[torch.Tensor]:
    """For each segment of ``group``: a (blocks, repeat) tensor of the positions it occupies."""
    out = []
    offset = 0
    for seg in layout:
        if seg.group == group:
            out.append(torch.arange(offset, offset + seg.length).view(seg.size // seg.unit, seg.repeat))
        offset += seg.length
    return out


def block_permutation(perm: torch.Tensor, unit: int) -> torch.Tensor:
    """The permutation of ``unit``-channel blocks that a block-structured channel permutation makes."""
    return perm if unit == 1 else perm.view(-1, unit)[:, 0] // unit


def permute_along(tensor: torch.Tensor, dim: int, layout: Layout, perms: Mapping[int, torch.Tensor]) -> torch.Tensor:
    """Reorder ``tensor`` along ``dim`` so that every group's channels follow its (channel-level) permutation."""
    index = torch.arange(tensor.shape[dim])
    offset = 0
    for seg in layout:
        if seg.group in perms:
            pos = torch.arange(offset, offset + seg.length).view(seg.size // seg.unit, seg.repeat)
            index[pos.flatten()] = pos[block_permutation(perms[seg.group], seg.unit)].flatten()
        offset += seg.length
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

    def members(self, root: int) -> list[int]:
        return [g for g in self.parent if self.find(g) == root]


def unify_layouts(uf: UnionFind, layouts: Sequence[Layout]) -> tuple[Layout | None, set[int]]:
    """Merge layouts that meet elementwise. Returns the merged layout, or ``None`` and the groups that must be frozen."""
    first = layouts[0]
    involved = set().union(*(layout_groups(lay) for lay in layouts))
    for other in layouts[1:]:
        if len(other) != len(first):
            return None, involved
        for a, b in zip(first, other):
            if (a.size, a.repeat, a.unit) != (b.size, b.repeat, b.unit) or (a.group is None) != (b.group is None):
                return None, involved
    for other in layouts[1:]:
        for a, b in zip(first, other):
            if a.group is not None and b.group is not None:
                uf.union(a.group, b.group)
    return first, set()
