"""Rules for ops that use parameters as layer weights, whoever calls them: convolutions, linear, embeddings, norms,
matmul/einsum with a parameter, attention.

A weight may be a parameter or a tensor computed from parameters only (weight standardisation, ``gain * weight``);
its dimensions are then traced back to the parameter dimensions they come from.
"""

from __future__ import annotations

from torch import nn

from .channels import LayerUse, Operand, ParamDim, PropagatorBase
from .layout import Layout, layout_groups, with_repeat, with_unit
from .op_kinds import arg, base_name
from .tracer import Op

CONV = {"conv1d", "conv2d", "conv3d"}
CONV_T = {"conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}
NORMS = {"batch_norm", "instance_norm"}
MATMUL = {"matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "baddbmm"}


class LayerRules(PropagatorBase):
    def layer_op(self, op: Op) -> bool:
        base = base_name(op.name)
        if base in CONV or base in CONV_T:
            self.conv(op, base in CONV_T)
        elif base == "linear":
            self.linear(op)
        elif base == "embedding":
            self.embedding(op)
        elif base in NORMS:
            self.norm(op)
        elif base in ("layer_norm", "rms_norm"):
            self.layer_norm(op)
        elif base == "group_norm":
            self.group_norm(op)
        elif base == "prelu":
            self.prelu(op)
        elif base in MATMUL:
            self.matmul(op, base)
        elif base == "scaled_dot_product_attention":
            self.attention(op)
        elif base == "einsum":
            self.einsum(op)
        else:
            return False
        return True

    # ---- weights ----------------------------------------------------------------------------------------------------
    def keys(self, o: Operand | None, d: int) -> frozenset[ParamDim]:
        """The parameter dimensions that dimension ``d`` of a weight operand is."""
        if o is None or not o.derived or d >= len(o.shape):
            return frozenset()
        if o.param is not None:
            return frozenset({(o.param, d)})
        main = self.main_param(o)
        if d in o.porig:
            out = set(o.porig[d])
        elif main is not None:
            out = {(main, d)}
        else:
            return frozenset()
        for q in o.sources - {main}:  # e.g. a per-output-channel gain of the same rank (scaled weight standardisation)
            shape = self.g.param_shapes.get(q, ())
            if len(shape) == len(o.shape) and shape[d] == o.shape[d] > 1:
                out.add((q, d))
        return frozenset(out)

    def main_param(self, o: Operand | None) -> str | None:
        if o is None or not o.derived:
            return None
        if o.param is not None:
            return o.param
        same = sorted(p for p in o.sources if self.g.param_shapes.get(p) == o.shape)
        if len(same) == 1:
            return same[0]
        first = sorted(k[0] for k in o.porig.get(0, ()) if len(self.g.param_shapes.get(k[0], ())) == len(o.shape))
        return first[0] if first else None

    def bind_or_fix(self, keys: frozenset[ParamDim], layout: Layout | None, op: Op) -> None:
        for key in keys:
            if layout is not None:
                self.bind(key, layout, op)
            else:
                self.mark_fixed(key, self.frozen_by(op, "input never changes width"))

    def record(self, op: Op, kind: str, param: str | None, mode: str, macs: list[Layout | None], **dims) -> None:
        if param is not None:
            self.a.layers.append(LayerUse(op.index, self.index, kind, self.owner(param), param, mode, **dims))
        if self.index == 0:
            self.a.mac_layouts[op.index] = tuple(m for m in macs if m is not None)

    # ---- layers -----------------------------------------------------------------------------------------------------
    def conv(self, op: Op, transposed: bool) -> None:
        x, w, b = (self.operand(arg(op, i, n)) for i, n in enumerate(("input", "weight", "bias")))
        main = self.main_param(w)
        if x is None or main is None:
            self.block_inputs(op, "convolution with a weight computed from several tensors")
            return
        groups = int(arg(op, 6, "groups", 1))
        ann = dict(x.ann)
        in_layout = ann.pop(1, None)
        if ann:
            for lay in ann.values():
                self.a.freeze(layout_groups(lay), self.frozen_by(op, "channels in a spatial dimension"))
        out_vid = op.outputs[0]
        cin, cout = x.shape[1], self.g.shape(out_vid)[1]
        module = self.owner(main)
        out_dim, in_dim = (1, 0) if transposed else (0, 1)
        k_in, k_out, k_bias = self.keys(w, in_dim), self.keys(w, out_dim), self.keys(b, 0)
        kind = "conv_transpose" if transposed else "conv"
        if groups == 1:
            self.bind_or_fix(k_in, in_layout, op)
            out = self.produce(k_out | k_bias, cout, module, op)
            self.set_ann(out_vid, {1: out})
            self.record(op, kind, main, "dense", [out, in_layout], in_dim=in_dim, out_dim=out_dim)
        elif not transposed and in_layout is not None and self.add_unit(in_layout, cin // groups):
            # whole conv groups shrink: each block of cin/groups input channels feeds cout/groups outputs
            out = with_unit(with_repeat(in_layout, cout // groups), cin // groups)
            self.bind_or_fix(k_out | k_bias, out, op)
            self.set_ann(out_vid, {1: out})
            mode = "channelwise" if groups == cin == cout else "grouped"
            self.record(op, kind, main, mode, [in_layout], out_dim=out_dim)
        else:
            if in_layout is not None:
                self.a.freeze(layout_groups(in_layout), self.frozen_by(op, f"grouped convolution (groups={groups})"))
            self.bind_or_fix(k_in | k_out | k_bias, None, op)
            self.record(op, kind, main, "fixed", [])

    def linear(self, op: Op) -> None:
        x, w, b = (self.operand(arg(op, i, n)) for i, n in enumerate(("input", "weight", "bias")))
        main = self.main_param(w)
        if x is None or main is None or len(w.shape) != 2:
            self.block_inputs(op, "linear with a weight computed from several tensors")
            return
        last = len(x.shape) - 1
        ann = dict(x.ann)
        in_layout = ann.pop(last, None)
        self.bind_or_fix(self.keys(w, 1), in_layout, op)
        out_vid = op.outputs[0]
        out = self.produce(self.keys(w, 0) | self.keys(b, 0), self.g.shape(out_vid)[-1], self.owner(main), op)
        self.set_ann(out_vid, {**ann, last: out})
        self.record(op, "linear", main, "dense", [*x.ann.values(), out], in_dim=1, out_dim=0)

    def embedding(self, op: Op) -> None:
        ids, w = self.operand(arg(op, 0, "input")), self.operand(arg(op, 1, "weight"))
        main = self.main_param(w)
        if ids is None or main is None or ids.ann or len(w.shape) != 2:
            self.block_inputs(op, "unsupported embedding")
            return
        self.bind_or_fix(self.keys(w, 0), None, op)
        out_vid = op.outputs[0]
        out = self.produce(self.keys(w, 1), w.shape[1], self.owner(main), op)
        self.set_ann(out_vid, {len(self.g.shape(out_vid)) - 1: out})
        self.record(op, "embedding", main, "dense", [], out_dim=1)

    def norm(self, op: Op) -> None:
        x = self.operand(arg(op, 0, "input"))
        names = ("running_mean", "running_var", "weight", "bias")
        params = [self.operand(arg(op, i + 1, n)) for i, n in enumerate(names)]
        layout = x.ann.get(1) if x is not None and len(x.shape) > 1 else None
        keys = frozenset().union(*(self.keys(p, 0) for p in params))
        self.bind_or_fix(keys, layout, op)
        self.set_ann(op.outputs[0], dict(x.ann) if x is not None else {})
        main = next((self.main_param(p) for p in params if self.main_param(p) is not None), None)
        self.record(op, "norm", main, "channelwise", [], out_dim=0)

    def layer_norm(self, op: Op) -> None:
        x = self.operand(arg(op, 0, "input"))
        shape = arg(op, 1, "normalized_shape", ())
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        w = self.operand(arg(op, 2, "weight"))
        b = self.operand(arg(op, 3, "bias")) if base_name(op.name) == "layer_norm" else None
        n, nd = len(x.shape), len(shape)
        for j in range(nd):
            layout = x.ann.get(n - nd + j)
            self.bind_or_fix(self.keys(w, j) | self.keys(b, j), layout, op)
        self.set_ann(op.outputs[0], dict(x.ann))
        main = self.main_param(w) or self.main_param(b)
        layout = x.ann.get(n - 1)
        owner = self.model.get_submodule(self.owner(main)) if main else None
        if nd == 1 and layout is not None and not isinstance(owner, nn.LayerNorm):
            self.bind_attribute(op, shape, layout, "tuple")
        self.record(op, "norm", main, "channelwise", [], out_dim=0)

    def group_norm(self, op: Op) -> None:
        x = self.operand(arg(op, 0, "input"))
        groups = int(arg(op, 1, "num_groups", 1))
        w, b = self.operand(arg(op, 2, "weight")), self.operand(arg(op, 3, "bias"))
        channels = x.shape[1]
        layout = x.ann.get(1)
        if layout is not None and 1 < groups < channels and not self.add_unit(layout, channels // groups):
            self.a.freeze(layout_groups(layout), self.frozen_by(op, "group normalisation over channel groups"))
            layout = None
        self.bind_or_fix(self.keys(w, 0) | self.keys(b, 0), layout, op)
        self.set_ann(op.outputs[0], dict(x.ann))
        main = self.main_param(w) or self.main_param(b)
        owner = self.model.get_submodule(self.owner(main)) if main else None
        if layout is not None and groups > 1 and not isinstance(owner, nn.GroupNorm):
            self.bind_attribute(op, groups, with_unit(layout, channels // groups), "int")
        self.record(op, "norm", main, "channelwise", [], out_dim=0)

    def prelu(self, op: Op) -> None:
        x, w = self.operand(arg(op, 0, "input")), self.operand(arg(op, 1, "weight"))
        if w is not None and w.shape and w.shape[0] > 1:
            self.bind_or_fix(self.keys(w, 0), x.ann.get(1), op)
        self.set_ann(op.outputs[0], dict(x.ann))

    # ---- products ---------------------------------------------------------------------------------------------------
    def merge_or_produce(self, entries: list[tuple[Operand, int]], op: Op, size: int) -> Layout | None:
        """An output dimension that only a parameter contributes (``x @ self.proj``) starts a group like a linear."""
        if entries and all(o.derived and k in o.porig for o, k in entries) and size > 1:
            keys = frozenset().union(*(o.porig[k] for o, k in entries))
            return self.produce(keys, size, self.owner(sorted(keys)[0][0]), op)
        return self.merge_dim(entries, op, size)

    def matmul(self, op: Op, base: str) -> None:
        if base in ("addmm", "baddbmm"):
            bias, a, b = (self.operand(arg(op, i, n)) for i, n in enumerate(("input", "mat1", "mat2")))
        elif base == "__rmatmul__":
            bias, b, a = None, self.operand(arg(op, 0, "self")), self.operand(arg(op, 1, "other"))
        else:
            bias, a, b = None, self.operand(arg(op, 0, "input")), self.operand(arg(op, 1, "other"))
        if a is None or b is None or len(a.shape) < 2 or len(b.shape) < 2:
            self.block_inputs(op, "unsupported matmul shape")
            return
        out_vid = op.outputs[0]
        oshape = self.g.shape(out_vid)
        n = len(oshape)
        result: dict[int, Layout] = {}
        for d in range(n):
            if d == n - 2:
                entries = [(a, len(a.shape) - 2)]
            elif d == n - 1:
                entries = [(b, len(b.shape) - 1)]
            else:
                entries = [(o, d - (n - len(o.shape))) for o in (a, b)]
                entries = [(o, k) for o, k in entries if k >= 0 and o.shape[k] == oshape[d]]
            if bias is not None:
                k = d - (n - len(bias.shape))
                if k >= 0 and bias.shape[k] == oshape[d]:
                    entries.append((bias, k))
            merged = (
                self.merge_or_produce(entries, op, oshape[d]) if d >= n - 2 else self.merge_dim(entries, op, oshape[d])
            )
            if merged is not None:
                result[d] = merged
        inner = self.merge_dim([(a, len(a.shape) - 1), (b, len(b.shape) - 2)], op, a.shape[-1])
        self.set_ann(out_vid, result)
        self.record(op, "matmul", None, "dense", [*result.values(), inner])

    def attention(self, op: Op) -> None:
        q, k, v = (self.operand(arg(op, i, n)) for i, n in enumerate(("query", "key", "value")))
        mask = self.operand(arg(op, 3, "attn_mask"))
        out_vid = op.outputs[0]
        oshape = self.g.shape(out_vid)
        n = len(oshape)

        def scores(d: int) -> list[tuple[Operand, int]]:  # mask dimension aligned with scores dimension d
            if mask is None:
                return []
            j = d - (n - len(mask.shape))
            return [(mask, j)] if j >= 0 and mask.shape[j] > 1 else []

        result: dict[int, Layout] = {}
        for d in range(n - 2):
            entries = [(o, d - (n - len(o.shape))) for o in (q, k, v)]
            entries = [(o, j) for o, j in entries if j >= 0 and o.shape[j] == oshape[d]] + scores(d)
            merged = self.merge_dim(entries, op, oshape[d])
            if merged is not None:
                result[d] = merged
        tokens = self.merge_dim([(q, len(q.shape) - 2)] + scores(n - 2), op, q.shape[-2])
        keys = self.merge_dim([(k, len(k.shape) - 2), (v, len(v.shape) - 2)] + scores(n - 1), op, k.shape[-2])
        inner = self.merge_dim([(q, len(q.shape) - 1), (k, len(k.shape) - 1)], op, q.shape[-1])
        value = self.merge_dim([(v, len(v.shape) - 1)], op, v.shape[-1])
        for lay in (inner, value):
            if lay is not None:
                self.a.freeze(layout_groups(lay), self.frozen_by(op, "attention over sliced head channels"))
        if tokens is not None:
            result[n - 2] = tokens
        self.set_ann(out_vid, result)
        self.record(op, "attention", None, "dense", [*(result[d] for d in range(n - 2) if d in result), tokens, keys])

    def einsum(self, op: Op) -> None:
        equation = op.args[0] if op.args and isinstance(op.args[0], str) else None
        rest = op.args[1:]
        items = list(rest[0]) if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else list(rest)
        operands = [self.operand(t) for t in items]
        if equation is None or "..." in equation or any(o is None for o in operands):
            self.block_inputs(op, "unsupported einsum")
            return
        equation = equation.replace(" ", "")
        lhs, _, rhs = equation.partition("->")
        specs = lhs.split(",")
        if not rhs and "->" not in equation:
            letters = "".join(specs)
            rhs = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
        entries: dict[str, list[tuple[Operand, int]]] = {}
        sizes: dict[str, int] = {}
        for spec, o in zip(specs, operands):
            for pos, letter in enumerate(spec):
                entries.setdefault(letter, []).append((o, pos))
                sizes[letter] = o.shape[pos]
        merged = {
            c: (self.merge_or_produce(e, op, sizes[c]) if c in rhs else self.merge_dim(e, op, sizes[c]))
            for c, e in entries.items()
        }
        self.set_ann(op.outputs[0], {i: merged[c] for i, c in enumerate(rhs) if merged.get(c) is not None})
        self.record(op, "matmul", None, "dense", list(merged.values()))
