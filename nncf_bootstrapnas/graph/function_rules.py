"""Channel-layout rules for shape functions (elementwise, concat, reshape, permute, reductions, indexing, splits).

Each rule maps the input layouts of one op to its output layouts, merging groups that meet and freezing (with a
reason) groups whose channels it would mix. Values computed from parameters only ("derived") carry, instead of
layouts, the parameter dimensions they come from (``porig``), so that ``self.gamma.view(1, -1, 1, 1)`` is still known
to be ``gamma``'s dimension 0 when it meets the channels.
"""

from __future__ import annotations

from .channels import Operand, PropagatorBase, _tensors
from .layout import Layout, layout_groups, segment, unify_layouts, with_repeat, with_unit
from .op_kinds import (
    ALONG,
    BROADCAST,
    CAT,
    ELEMENTWISE,
    PERMUTE,
    POINTWISE,
    REDUCE,
    REORDER,
    RESHAPE,
    SPATIAL,
    SPLIT,
    arg,
    base_name,
    broadcast_map,
    flat_ints,
    getitem_map,
    permutation,
    reshape_map,
)
from .tracer import Op, TensorArg


class FunctionRules(PropagatorBase):
    """Shape rules; ``layer_op``/``matmul`` come from ``LayerRules``."""

    def function_op(self, op: Op) -> None:
        name, base = op.name, base_name(op.name)
        if self.layer_op(op):
            return
        if base in POINTWISE or name in POINTWISE:
            self.pointwise(op)
        elif base in SPATIAL:
            ann = dict(self.ann(op.inputs[0]))
            x = op.inputs[0]
            if set(ann) - {1} or any(len(self.g.shape(o)) < 2 or self.g.shape(o)[1] != self.g.shape(x)[1]
                                     for o in op.outputs):  # fmt: skip
                self.block_inputs(op, "pooling over channels")
            else:
                for o in op.outputs:
                    self.set_ann(o, dict(ann))
        elif base in ELEMENTWISE or name in ELEMENTWISE:
            self.elementwise(op)
        elif base in CAT:
            self.concat(op)
        elif base in RESHAPE:
            self.reshape(op)
        elif base in PERMUTE:
            order = permutation(op, len(self.g.shape(op.inputs[0])))
            if order is None:
                self.block_inputs(op, "unsupported dimension move")
            else:
                self.set_ann(op.outputs[0], {order.index(d): lay for d, lay in self.ann(op.inputs[0]).items()})
        elif base in BROADCAST:
            self.broadcast(op)
        elif base in REDUCE or base in ALONG or base in REORDER:
            self.reduce(op, base)
        elif base in SPLIT:
            self.split(op, base)
        elif base == "__getitem__":
            self.getitem(op)
        elif base == "pad":
            self.pad(op)
        elif base in ("index_select", "repeat", "tile", "repeat_interleave"):
            self.along_other_dims(op, base)
        else:
            self.block_inputs(op, "unsupported op")

    # ---- simple rules -----------------------------------------------------------------------------------------------
    def pointwise(self, op: Op) -> None:
        x = op.inputs[0]
        if all(self.g.shape(o) == self.g.shape(x) for o in op.outputs):
            for o in op.outputs:
                self.set_ann(o, dict(self.ann(x)))
        elif self.ann(x):
            self.block_inputs(op, "shape-changing op")

    def elementwise(self, op: Op) -> None:
        if not op.outputs:
            return
        out = op.outputs[0]
        oshape = self.g.shape(out)
        n = len(oshape)
        operands = self.operands(op)
        result: dict[int, Layout] = {}
        for d in range(n):
            if oshape[d] == 1:
                continue
            entries = []
            for o in operands:
                k = d - (n - len(o.shape))
                if k >= 0 and o.shape[k] == oshape[d]:
                    entries.append((o, k))
            merged = self.merge_dim(entries, op, oshape[d])
            if merged is not None:
                result[d] = merged
        for o in op.outputs:
            self.set_ann(o, dict(result))

    def concat(self, op: Op) -> None:
        items = [self.operand(t) for t in _tensors(op.args[0] if op.args else op.kwargs.get("tensors", []))]
        items = [o for o in items if o is not None]
        out = op.outputs[0]
        oshape = self.g.shape(out)
        n = len(oshape)
        stack = base_name(op.name) == "stack"
        dim = arg(op, 1, "dim", 0) % n
        result: dict[int, Layout] = {}
        if not stack:
            along: list = []
            for o in items:
                along.extend(o.ann.get(dim, (segment(None, o.shape[dim]),)))
                for key in o.porig.get(dim, frozenset()) if o.derived else ():
                    self.mark_fixed(key, self.frozen_by(op, "concatenated"))
            if any(s.group is not None for s in along):
                result[dim] = tuple(along)
        for d in range(n):
            if d == dim:
                continue
            k = d - 1 if stack and d > dim else d
            merged = self.merge_dim([(o, k) for o in items], op, oshape[d])
            if merged is not None:
                result[d] = merged
            elif any(k in o.ann for o in items):
                why = self.frozen_by(op, "concatenated with fixed channels")
                for o in items:
                    if k in o.ann:
                        self.a.freeze(layout_groups(o.ann[k]), why)
        self.set_ann(out, result)

    def broadcast(self, op: Op) -> None:
        x, out = op.inputs[0], op.outputs[0]
        ishape, oshape = self.g.shape(x), self.g.shape(out)
        result: dict[int, Layout] = {}
        for d, layout in self.ann(x).items():
            j = broadcast_map(ishape, oshape, op.name, d)
            if j is None:
                self.a.freeze(layout_groups(layout), self.frozen_by(op, "unsupported broadcast"))
            else:
                result[j] = layout
        self.set_ann(out, result)

    def reduce(self, op: Op, base: str) -> None:
        """Reducing over channels is exact on any width (the extracted layer reduces the same channels); reordering
        along channels is not (a prefix would stop being a prefix)."""
        x = op.inputs[0]
        n = len(self.g.shape(x))
        dim = arg(op, {"roll": 2, "topk": 2}.get(base, 1), "dims" if base in ("roll", "flip") else "dim", None)
        if base in ("fliplr", "flipud"):
            dim = 1 if base == "fliplr" else 0
        ann = self.ann(x)
        if dim is not None and not isinstance(dim, (int, list, tuple)):
            self.block_inputs(op, "reduction over an unknown dimension")
            return
        dims = (
            set(range(n)) if dim is None else {int(d) % n for d in (dim if isinstance(dim, (list, tuple)) else [dim])}
        )
        if base in REORDER and dims & set(ann):
            self.block_inputs(op, "reordering along channels")
            return
        for o in op.outputs:
            shape = self.g.shape(o)
            if len(shape) == n:
                self.set_ann(o, {d: lay for d, lay in ann.items() if shape[d] == self.g.shape(x)[d]})
            else:
                self.set_ann(o, {d - sum(r < d for r in dims): lay for d, lay in ann.items() if d not in dims})

    def pad(self, op: Op) -> None:
        x = op.inputs[0]
        pad = arg(op, 1, "pad", ())
        nd = len(self.g.shape(x))
        padded = {nd - 1 - i // 2 for i, p in enumerate(pad) if p}
        if padded & set(self.ann(x)):
            self.block_inputs(op, "padding along channels")
        else:
            self.set_ann(op.outputs[0], dict(self.ann(x)))

    def along_other_dims(self, op: Op, base: str) -> None:
        x, out = op.inputs[0], op.outputs[0]
        ishape, oshape = self.g.shape(x), self.g.shape(out)
        ann = self.ann(x)
        if len(ishape) != len(oshape) or any(ishape[d] != oshape[d] for d in ann):
            self.block_inputs(op, f"{base} along channels")
        else:
            self.set_ann(out, dict(ann))

    def getitem(self, op: Op) -> None:
        x, out = op.inputs[0], op.outputs[0]
        ann = self.ann(x)
        mapping = getitem_map(op, self.g.shape(x))
        if mapping is None:
            self.block_inputs(op, "advanced indexing")
            return
        kept, cut = mapping
        for d in cut & set(ann):
            self.a.freeze(layout_groups(ann[d]), self.frozen_by(op, "channels sliced by indexing"))
        self.set_ann(out, {kept[d]: lay for d, lay in ann.items() if d in kept})

    # ---- splits and reshapes ----------------------------------------------------------------------------------------
    def split(self, op: Op, base: str) -> None:
        x = op.inputs[0]
        n = len(self.g.shape(x))
        dim = arg(op, 2, "dim", 0) if base != "unbind" else arg(op, 1, "dim", 0)
        dim = dim % n if isinstance(dim, int) else None
        ann = self.ann(x)
        if dim is None:
            self.block_inputs(op, "split along channels")
            return
        if dim in ann:
            self.split_channels(op, base, dim, ann)
            return
        for o in op.outputs:
            if len(self.g.shape(o)) == n:
                self.set_ann(o, dict(ann))
            else:
                self.set_ann(o, {(d if d < dim else d - 1): lay for d, lay in ann.items()})

    def split_channels(self, op: Op, base: str, dim: int, ann: dict[int, Layout]) -> None:
        """``chunk`` into equal parts (and a ``split`` whose size divides the channels evenly) is exact when every part
        has the same layout: the parts then share one group, so they shrink alike."""
        sizes = [self.g.shape(o)[dim] for o in op.outputs]
        parts = len(op.outputs)
        chunk = base == "chunk" or (base == "split" and isinstance(arg(op, 1, "split_size"), int))
        if not chunk or parts < 2 or len(set(sizes)) != 1:
            self.block_inputs(op, "split along channels")
            return
        layout = ann[dim]
        if len(layout) % parts:
            if len(layout) != 1 or layout[0].group is None:
                self.block_inputs(op, "split along channels")
                return
            layout = self.split_group(layout[0].group, parts, op)
            if layout is None:
                self.block_inputs(op, "split along channels")
                return
        step = len(layout) // parts
        pieces = [layout[i * step : (i + 1) * step] for i in range(parts)]
        merged, bad = unify_layouts(self.a.uf, pieces)
        if merged is None:
            self.a.freeze(bad, self.frozen_by(op, "split into differently structured parts"))
            return
        if base == "split":
            self.bind_attribute(op, sizes[0], merged, "int")
        rest = {d: lay for d, lay in self.ann(op.inputs[0]).items() if d != dim}
        for o in op.outputs:
            self.set_ann(o, {**rest, dim: merged})

    def reshape(self, op: Op) -> None:
        x, out = op.inputs[0], op.outputs[0]
        ishape, oshape = self.g.shape(x), self.g.shape(out)
        explicit = set(flat_ints(op.args[1:]) + flat_ints(list(op.kwargs.values())))
        result: dict[int, Layout] = {}
        for d, layout in list(self.ann(x).items()):
            layout = self.ann(x).get(d, layout)  # a split may have rewritten it
            where = reshape_map(ishape, oshape, d)
            if where is not None and where[0] == "tile":
                result[where[1]] = layout * where[2]
                continue
            if where is not None and where[0] == "merge":
                _, j, factor = where
                result[j] = with_repeat(layout, factor)
                if oshape[j] in explicit and oshape[j] != 1:
                    self.bind_attribute(op, oshape[j], result[j], "int")
                continue
            heads = self.split_heads(op, layout, where) if where is not None else None
            if heads is None:
                self.a.freeze(layout_groups(layout), self.frozen_by(op, "channels split by a reshape"))
                continue
            j, heads_layout = heads
            result[j] = heads_layout
            if oshape[j] in explicit and oshape[j] != 1:
                self.bind_attribute(op, oshape[j], heads_layout, "int", heads=True)
        self.set_ann(out, result)

    def split_heads(self, op: Op, layout: Layout, where: tuple) -> tuple[int, Layout] | None:
        """``(C) -> (heads, head_dim)`` or ``(parts, heads, head_dim)`` (fused q/k/v): the heads dimension gets the
        channels' layout with a unit of ``head_dim`` channels; whole heads shrink."""
        _, j, sizes = where
        if len(sizes) == 2:
            head = sizes[1]
            return (j, with_unit(layout, head)) if self.add_unit(layout, head) else None
        if len(sizes) != 3:
            return None
        parts, head = sizes[0], sizes[2]
        if len(layout) == 1 and layout[0].group is not None:
            layout = self.split_group(layout[0].group, parts, op)
            if layout is None:
                return None
        if len(layout) != parts or len({(s.size, s.repeat, s.unit) for s in layout}) != 1:
            return None
        merged, _ = unify_layouts(self.a.uf, [layout[i : i + 1] for i in range(parts)])
        if merged is None or not self.add_unit(merged, head):
            return None
        return j + 1, with_unit(merged, head)

    def gathered_porig(self, op: Op, x: Operand, oshape: tuple[int, ...]) -> dict:
        """``table[index]`` (one tensor index on dimension 0, e.g. relative position bias tables): the dimensions
        after it are kept."""
        index = op.args[1] if len(op.args) > 1 else None
        if not isinstance(index, TensorArg):
            return {}
        shift = len(self.g.shape(index.vid)) - 1
        return {d + shift: k for d, k in x.porig.items() if d >= 1 and x.shape[d] == oshape[d + shift]}

    def shape_attributes(self, op: Op, oshape: tuple[int, ...], porig: dict) -> None:
        """``self.scale.view(self.shape)``: a shape attribute whose entry is a parameter dimension follows it once that
        dimension is bound to channels."""
        args = [a for a in op.args[1:] if not isinstance(a, TensorArg)]
        shape_arg = tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else tuple(args)
        for j, keys in porig.items():
            if oshape[j] == 1 or oshape[j] not in flat_ints(shape_arg):
                continue
            found = self.find_attribute(op, oshape[j]) if shape_arg.count(oshape[j]) else None
            form = "int"
            if found is None and len(shape_arg) == len(oshape):
                found, form = self.find_attribute(op, shape_arg), f"tuple:{j}"
            if found is not None:
                self.a.attr_keys[found] = (min(keys), form)

    # ---- values computed from parameters only -----------------------------------------------------------------------
    def derived_op(self, op: Op, operands: list[Operand]) -> None:
        sources = frozenset().union(*(o.sources for o in operands)) if operands else frozenset()
        porig = self.derived_porig(op, operands) if operands else {}
        for vid in op.outputs:
            self.s.derived.add(vid)
            self.s.sources[vid] = sources
            if porig:
                self.s.porig[vid] = porig

    def derived_porig(self, op: Op, operands: list[Operand]) -> dict:
        x = operands[0]
        base = base_name(op.name)
        oshape = self.g.shape(op.outputs[0]) if op.outputs else ()
        if base == "stack":
            return {}
        if base in ELEMENTWISE or base in CAT:
            items = operands
            if base in CAT:
                items = [o for o in (self.operand(t) for t in _tensors(op.args[0] if op.args else [])) if o]
            n = len(oshape)
            dim = arg(op, 1, "dim", 0) % n if base in CAT and n else None
            result = {}
            for d in range(n):
                if d == dim or oshape[d] == 1:
                    continue
                aligned = [(o, d - (n - len(o.shape))) for o in items]
                aligned = [(o, k) for o, k in aligned if k >= 0 and o.shape[k] == oshape[d]]
                if aligned and all(k in o.porig for o, k in aligned):
                    result[d] = frozenset().union(*(o.porig[k] for o, k in aligned))
            return result
        if base in RESHAPE:
            out = {}
            for d, keys in x.porig.items():
                where = reshape_map(x.shape, oshape, d)
                if where is not None and where[0] == "merge" and where[2] == 1:
                    out[where[1]] = keys
            self.shape_attributes(op, oshape, out)
            return out
        if base in PERMUTE:
            order = permutation(op, len(x.shape))
            return {order.index(d): k for d, k in x.porig.items()} if order else {}
        if base in BROADCAST:
            maps = {d: broadcast_map(x.shape, oshape, op.name, d) for d in x.porig}
            return {j: x.porig[d] for d, j in maps.items() if j is not None}
        if base == "__getitem__":
            mapping = getitem_map(op, x.shape)
            if mapping is None:
                return self.gathered_porig(op, x, oshape)
            return {mapping[0][d]: k for d, k in x.porig.items() if d in mapping[0]}
        if oshape == x.shape:  # pointwise, norms, casts: the same entries
            return dict(x.porig)
        return {}
