"""Channel-coupling analysis: which channels must shrink together, DepGraph-style, on the traced graph.

The nodes are tensor dimensions. A layer op (``conv2d``, ``linear``, ``batch_norm``, ... wherever it is called and
whatever class owns the weight) binds its parameter dimensions to the channel layouts of its input and output; a
producer dimension that is not bound yet starts a new channel group. Residual adds and other elementwise ops merge
groups and bind per-channel parameters they meet (layer scale, fixed scale vectors); concat concatenates layouts;
flatten multiplies them; a reshape into heads gives the group a unit (the head size). Anything not understood freezes
only the groups it touches, with the reason and the op. Several traces (eval and train mode) feed one analysis, so
every op either mode runs is seen. Every later structural step reads this one result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from torch import nn

from .layout import Layout, UnionFind, layout_groups, segment, unify_layouts
from .tracer import Op, ParamArg, TensorArg, TracedGraph

ParamDim = tuple[str, int]  # (canonical parameter or buffer name, dimension)


@dataclass(frozen=True)
class Frozen:
    """Why a channel group keeps its width, and the op that decided it."""

    reason: str
    op: str = ""
    where: str = ""

    def text(self) -> str:
        return f"{self.reason} ({self.where}: {self.op})" if self.op else self.reason


@dataclass
class Operand:
    """One tensor argument of an op as the analysis sees it."""

    shape: tuple[int, ...]
    ann: dict[int, Layout]  # channel layouts of activation dimensions
    porig: dict[int, frozenset[ParamDim]]  # parameter dimensions a derived tensor's dimension comes from
    derived: bool  # computed from parameters and constants only
    param: str | None = None  # the parameter itself
    sources: frozenset[str] = frozenset()  # parameters a derived tensor was computed from


@dataclass
class GraphState:
    """Per-trace results: the layouts of every value, which values are derived from parameters only."""

    graph: TracedGraph
    ann: dict[int, dict[int, Layout]] = field(default_factory=dict)
    porig: dict[int, dict[int, frozenset[ParamDim]]] = field(default_factory=dict)
    sources: dict[int, frozenset[str]] = field(default_factory=dict)
    derived: set[int] = field(default_factory=set)
    activation_ops: set[int] = field(default_factory=set)


@dataclass
class LayerUse:
    """A layer op: ``kind`` conv|conv_transpose|linear|norm|embedding; ``mode`` dense|channelwise|grouped|fixed."""

    op: int
    graph: int  # index of the trace (0: eval)
    kind: str
    module: str
    param: str
    mode: str = "dense"
    in_dim: int | None = None
    out_dim: int | None = None


@dataclass
class ChannelAnalysis:
    uf: UnionFind
    units: dict[int, int] = field(default_factory=dict)  # group -> channels that must stay together
    params: dict[ParamDim, Layout] = field(default_factory=dict)  # parameter dimension -> layout it follows
    param_fixed: dict[ParamDim, Frozen] = field(default_factory=dict)  # dimensions used at full size somewhere
    origins: dict[int, tuple[str, ParamDim]] = field(default_factory=dict)  # group -> (layer, producer dimension)
    producers: dict[str, int] = field(default_factory=dict)  # layer -> group of its output channels
    consumers: dict[str, Layout] = field(default_factory=dict)  # layer -> layout of its input channels
    channelwise: dict[str, Layout] = field(default_factory=dict)  # norm / depthwise conv -> layout of its channels
    heads: dict[str, int] = field(default_factory=dict)  # nn.MultiheadAttention -> group of its head channels
    layers: list[LayerUse] = field(default_factory=list)
    mac_layouts: dict[int, tuple[Layout, ...]] = field(default_factory=dict)  # eval op -> layouts MACs scale with
    attrs: dict[tuple[str, str], tuple[Layout, str]] = field(default_factory=dict)  # (module, attr) -> layout, form
    attr_keys: dict[tuple[str, str], tuple[ParamDim, str]] = field(default_factory=dict)  # bound once keys are
    frozen: dict[int, Frozen] = field(default_factory=dict)  # group -> first reason it cannot change width
    states: list[GraphState] = field(default_factory=list)
    created_in: dict[int, int] = field(default_factory=dict)  # group -> trace that created it

    @property
    def annotations(self) -> dict[int, dict[int, Layout]]:
        return self.states[0].ann

    def root(self, group: int) -> int:
        return self.uf.find(group)

    def unit(self, group: int) -> int:
        root = self.root(group)
        return math.lcm(1, *(self.units.get(g, 1) for g in self.uf.members(root)))

    def is_frozen(self, group: int) -> bool:
        return self.root(group) in self.frozen

    def freeze(self, groups: Iterable[int], why: Frozen) -> None:
        for g in groups:
            self.frozen.setdefault(self.root(g), why)

    def finalize(self) -> None:
        """Re-key frozen reasons by final roots (unions may happen after a freeze)."""
        reasons: dict[int, Frozen] = {}
        for g, why in self.frozen.items():
            reasons.setdefault(self.root(g), why)
        self.frozen = reasons


def _tensors(obj) -> list[TensorArg | ParamArg]:  # noqa: ANN001
    if isinstance(obj, (TensorArg, ParamArg)):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


class PropagatorBase:
    """State and the primitive steps every rule uses (binding, freezing, producing, substituting)."""

    def __init__(self, model: nn.Module, analysis: ChannelAnalysis) -> None:
        self.model = model
        self.a = analysis
        self.g: TracedGraph
        self.s: GraphState
        self.index = 0

    # ---- operands ---------------------------------------------------------------------------------------------------
    def operand(self, arg) -> Operand | None:  # noqa: ANN001
        if isinstance(arg, ParamArg):
            shape = self.g.param_shapes.get(arg.name, ())
            porig = {d: frozenset({(arg.name, d)}) for d in range(len(shape))}
            return Operand(shape, {}, porig, True, arg.name, frozenset({arg.name}))
        if isinstance(arg, TensorArg):
            vid = arg.vid
            derived = vid in self.s.derived or (self.g.values[vid].producer is None and vid not in self.g.inputs)
            return Operand(self.g.shape(vid), self.s.ann.get(vid, {}), self.s.porig.get(vid, {}), derived,
                           sources=self.s.sources.get(vid, frozenset()))  # fmt: skip
        return None

    def operands(self, op: Op) -> list[Operand]:
        return [o for o in (self.operand(t) for t in _tensors(op.args) + _tensors(op.kwargs)) if o is not None]

    def set_ann(self, vid: int, ann: dict[int, Layout]) -> None:
        if ann:
            self.s.ann[vid] = ann

    def ann(self, vid: int) -> dict[int, Layout]:
        return self.s.ann.get(vid, {})

    # ---- freezing ---------------------------------------------------------------------------------------------------
    def frozen_by(self, op: Op, reason: str) -> Frozen:
        return Frozen(reason, op.name, op.where)

    def block_inputs(self, op: Op, reason: str) -> None:
        why = self.frozen_by(op, reason)
        for o in self.operands(op):
            for layout in o.ann.values():
                self.a.freeze(layout_groups(layout), why)
            for keys in o.porig.values():
                for key in keys:
                    self.mark_fixed(key, why)

    # ---- parameter dimensions ---------------------------------------------------------------------------------------
    def bind(self, key: ParamDim, layout: Layout, op: Op) -> Layout:
        """Parameter dimension ``key`` is sliced like ``layout`` (one binding per parameter: tied weights too)."""
        known = self.a.params.get(key)
        if known is None:
            self.a.params[key] = layout
        elif known != layout:
            merged, bad = unify_layouts(self.a.uf, [known, layout])
            if merged is None:
                self.a.freeze(bad, self.frozen_by(op, f"parameter {key[0]} meets differently structured channels"))
        if key in self.a.param_fixed:
            self.a.freeze(layout_groups(layout), self.a.param_fixed[key])
        return self.a.params[key]

    def mark_fixed(self, key: ParamDim, why: Frozen) -> None:
        """Parameter dimension ``key`` is used at full size against something that never shrinks."""
        if key not in self.a.param_fixed:
            self.a.param_fixed[key] = Frozen(f"parameter {key[0]} is also used at full size", why.op, why.where)
        if key in self.a.params:
            self.a.freeze(layout_groups(self.a.params[key]), self.a.param_fixed[key])

    def produce(self, keys: Iterable[ParamDim], size: int, module: str, op: Op) -> Layout:
        """The layout of a layer's output dimension: its weight's binding, or a new group it starts."""
        # the weight (highest rank) names the origin, not its bias
        keys = sorted(keys, key=lambda k: (-len(self.g.param_shapes.get(k[0], ())), k))
        known = [self.a.params[k] for k in keys if k in self.a.params]
        if known:
            layout = known[0]
        else:
            group = self.a.uf.add(size)
            self.a.origins[group] = (module, keys[0])
            self.a.created_in[group] = self.index
            self.a.producers.setdefault(module, group)
            layout = (segment(group, size),)
        for key in keys:
            self.bind(key, layout, op)
        return self.a.params[keys[0]]

    def owner(self, name: str) -> str:
        return self.g.param_owner.get(name, name.rpartition(".")[0])

    def add_unit(self, layout: Layout, unit: int) -> bool:
        if unit == 1:
            return True
        if any(s.group is None or s.repeat != 1 or s.unit != 1 or s.size % unit for s in layout):
            return False
        for s in layout:
            self.a.units[s.group] = math.lcm(self.a.units.get(s.group, 1), unit)
        return True

    # ---- substitution (a group that turns out to be several parts, e.g. fused q/k/v) --------------------------------
    def split_group(self, group: int, parts: int, op: Op, repeat: int = 1) -> Layout | None:
        """Every occurrence of ``group`` becomes ``parts`` consecutive segments of one new group of 1/parts the size
        (``repeat``: whose channels each span ``repeat`` consecutive entries, i.e. are pruned ``repeat`` at a time)."""
        root = self.a.root(group)
        size = self.a.uf.size[root]
        if size % (parts * repeat) or self.a.unit(root) != 1:
            return None
        new = self.a.uf.add(size // parts // repeat)
        if root in self.a.frozen:
            self.a.frozen[new] = self.a.frozen[root]
        if root in self.a.origins:
            self.a.origins[new] = self.a.origins.pop(root)
            self.a.producers[self.a.origins[new][0]] = new
        self.a.created_in[new] = self.a.created_in.get(root, self.index)
        members = set(self.a.uf.members(root))

        def replace(layout: Layout) -> Layout:
            out: list = []
            for s in layout:
                if s.group in members:
                    out.extend([segment(new, size // parts // repeat, s.repeat * repeat, s.unit)] * parts)
                else:
                    out.append(s)
            return tuple(out)

        self._replace_everywhere(replace)
        for g in members:
            self.a.frozen.pop(g, None)
        return (segment(new, size // parts // repeat, repeat),) * parts

    def _replace_everywhere(self, replace: Callable[[Layout], Layout]) -> None:
        a = self.a
        a.params = {k: replace(v) for k, v in a.params.items()}
        a.mac_layouts = {k: tuple(replace(v) for v in vs) for k, vs in a.mac_layouts.items()}
        a.attrs = {k: (replace(v[0]), v[1]) for k, v in a.attrs.items()}
        for state in a.states:
            state.ann = {vid: {d: replace(lay) for d, lay in ann.items()} for vid, ann in state.ann.items()}

    def unit_of(self, group: int) -> int:
        return self.a.unit(group)

    # ---- attributes read by forward --------------------------------------------------------------------------------
    def find_attribute(self, op: Op, value: int | tuple, heads: bool = False) -> tuple[str, str] | None:
        """The attribute of the module running ``op`` that holds this hard-coded count (or shape tuple); ``heads``:
        a number of heads (``num_heads``, not ``head_dim``)."""
        path = op.scope[-1] if op.scope else ""
        module = self.model.get_submodule(path)

        def same(v: object) -> bool:
            if isinstance(value, tuple):
                return isinstance(v, (tuple, list)) and tuple(v) == value
            return type(v) is int and v == value

        names = [n for n, v in vars(module).items() if not n.startswith("_") and same(v)]
        if heads:
            names = [n for n in names if not any(h in n for h in ("dim", "size", "channel"))]
            preferred = [n for n in names if "num" in n or n.endswith("heads")]
            names = preferred or names
        if len(names) > 1:
            hinted = [n for n in names if any(h in n for h in ("head", "dim", "channel", "feature", "group", "shape"))]
            names = hinted if len(hinted) == 1 else []
        return (path, names[0]) if len(names) == 1 else None

    def bind_attribute(self, op: Op, value: int | tuple, layout: Layout, form: str, heads: bool = False) -> bool:
        """A hard-coded count in ``op`` that equals an attribute of the module running it: the attribute then follows
        the channels (e.g. ``num_heads`` in ``reshape(B, N, 3, self.num_heads, self.head_dim)``)."""
        found = self.find_attribute(op, value, heads)
        if found is not None:
            self.a.attrs[found] = (layout, form)
        return found is not None

    # ---- one loop dimension shared by several operands ---------------------------------------------------------------
    def merge_dim(self, entries: list[tuple[Operand, int]], op: Op, size: int) -> Layout | None:
        """Operand dimensions that are one loop dimension of ``op``: their layouts merge, the parameter dimensions
        among them are bound to the result, and a fixed-size partner freezes them."""
        layouts: list[Layout] = []
        keys: set[ParamDim] = set()
        fixed = False
        for o, k in entries:
            if k in o.ann:
                layouts.append(o.ann[k])
            elif o.derived and k in o.porig:
                keys |= o.porig[k]
            elif size > 1:
                fixed = True
        why = self.frozen_by(op, "combined with a fixed-size tensor")
        if not layouts or fixed:
            if layouts:
                self.a.freeze(set().union(*(layout_groups(lay) for lay in layouts)), why)
            for key in keys:
                self.mark_fixed(key, why)
            return None
        merged, bad = unify_layouts(self.a.uf, layouts)
        if merged is None:
            layouts = self.refine(layouts, op)
            merged, bad = unify_layouts(self.a.uf, layouts) if layouts else (None, bad)
        if merged is None:
            self.a.freeze(bad, self.frozen_by(op, "incompatible layouts meet"))
            return None
        for key in keys:
            self.bind(key, merged, op)
        return merged

    def refine(self, layouts: list[Layout], op: Op) -> list[Layout] | None:
        """A one-segment layout meeting ``P`` equal segments of the same total (``cat([x1, cheap(x1)])`` against a
        shortcut) is split into ``P`` parts of one group, so that both can shrink alike."""
        target = max(layouts, key=lambda lay: (len(lay), lay[0].repeat if lay else 0))
        parts = len(target)
        repeat = target[0].repeat if target[0].unit == 1 else 1
        if (parts < 2 and repeat < 2) or len({(s.size, s.repeat, s.unit) for s in target}) != 1:
            return None
        out = []
        for lay in layouts:
            plain = len(lay) == 1 and lay[0].group is not None and lay[0].repeat == 1 and lay[0].unit == 1
            if plain and lay != target and lay[0].length == sum(s.length for s in target):
                lay = self.split_group(lay[0].group, parts, op, repeat)
                if lay is None:
                    return None
            out.append(lay)
        return out
