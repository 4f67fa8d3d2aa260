"""The generation report: why a model got the search space it got.

Every prunable layer and every channel group with its status (elastic with its choices, or frozen with the precise
reason and the op that decided it), the depth blocks found and the candidates rejected (with why), the kernels, and
a warning for each requested dimension that yields no variable at all, naming the top reasons.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JSON_NAME = "generation_report.json"
MARKDOWN_NAME = "generation_report.md"


@dataclass
class GenerationReport:
    model: str
    dims: list[str]  # requested elasticity dimensions
    variables: dict[str, int]  # variables per dimension
    search_space_size: int
    macs: dict[str, int]  # "max", "min"
    groups: list[dict[str, Any]] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    kernels: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def top_frozen_reasons(self, n: int = 3) -> list[tuple[str, int]]:
        """The most frequent reasons channel groups are frozen, with how many groups each."""
        counts = Counter(g["reason"] for g in self.groups if g["status"] == "frozen")
        return counts.most_common(n)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dims": self.dims,
            "variables": self.variables,
            "search_space_size": self.search_space_size,
            "macs": self.macs,
            "top_frozen_reasons": [{"reason": r, "groups": c} for r, c in self.top_frozen_reasons()],
            "groups": self.groups,
            "layers": self.layers,
            "blocks": self.blocks,
            "kernels": self.kernels,
            "warnings": self.warnings,
            "notes": self.notes,
        }

    def summary(self) -> str:
        """A few lines for the console."""
        dims = ", ".join(f"{d} {self.variables.get(d, 0)}" for d in self.dims) or "none requested"
        frozen = sum(g["status"] == "frozen" for g in self.groups)
        lines = [
            f"generation: {self.model}: variables {dims} (search space {self.search_space_size:.3g} subnets); "
            f"MACs {self.macs['max'] / 1e6:.2f} M max, {self.macs['min'] / 1e6:.2f} M min",
            f"  channel groups: {len(self.groups) - frozen} elastic, {frozen} frozen",
        ]
        top = self.top_frozen_reasons()
        if top:
            lines.append("  top frozen reasons: " + "; ".join(f"{r} ({c})" for r, c in top))
        lines += [f"  WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        out = [f"# Generation report: {self.model}", "", self.summary().replace("\n", "  \n"), ""]
        out += ["## Channel groups", "", "| group | size | status | choices / reason | op |", "|---|---|---|---|---|"]
        for g in self.groups:
            detail = ", ".join(map(str, g["choices"])) if g["status"] == "elastic" else g["reason"]
            op = f"{g['where']}: {g['op']}" if g.get("op") else ""
            out.append(f"| {g['name']} | {g['size']} | {g['status']} | {detail} | {op} |")
        out += ["", "## Layers", "", "| layer | class | kind | output group | status |", "|---|---|---|---|---|"]
        for layer in self.layers:
            out.append(f"| {layer['name']} | {layer['class']} | {layer['kind']} ({layer['mode']}) | "
                       f"{layer['out_group'] or ''} | {layer['status']} |")  # fmt: skip
        out += ["", "## Depth", "", "| block | status | group / reason |", "|---|---|---|"]
        for b in self.blocks:
            out.append(f"| {b['name']} | {b['status']} | {b.get('group') or b.get('reason', '')} |")
        out += ["", "## Kernels", "", "| convolution | status |", "|---|---|"]
        for k in self.kernels:
            out.append(f"| {k['name']} | {k['status']} |")
        if self.notes:
            out += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(out) + "\n"

    def save(self, directory: str | Path) -> dict[str, Path]:
        """Write ``generation_report.json`` and ``generation_report.md`` into ``directory`` (created)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"json": directory / JSON_NAME, "markdown": directory / MARKDOWN_NAME}
        paths["json"].write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        paths["markdown"].write_text(self.to_markdown(), encoding="utf-8")
        return paths


def _group_entries(sn: Any) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    variable = {g.root for g in sn.width_groups}
    entries, by_root = [], {}
    for status in sn.group_status:
        entry = {"name": status.name, "size": status.size, "unit": status.unit, "choices": list(status.choices),
                 "status": "elastic", "reason": "", "op": "", "where": "", **status.members}  # fmt: skip
        dropped = sn.dropped.get(f"width/{status.name}")
        if status.root in variable:
            pass
        elif "width" not in sn.dims_requested:
            entry.update(status="not requested", reason="width not requested", choices=[])
        elif dropped:
            entry.update(status="frozen", reason=dropped, choices=[])
        else:
            why = status.frozen
            entry.update(status="frozen", reason=why.reason if why else "frozen", op=why.op if why else "",
                         where=why.where if why else "", choices=[])  # fmt: skip
        entries.append(entry)
        by_root[status.root] = entry
    return entries, by_root


def _layer_entries(sn: Any, by_root: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    ch = sn.analysis.channels
    seen, out = set(), []
    for use in ch.layers:
        if use.module in seen or use.kind in ("matmul", "attention"):
            continue
        seen.add(use.module)
        module = sn.model.get_submodule(use.module) if use.module else sn.model
        cls = getattr(type(module), "_bnas_base", type(module))
        out_group = None
        if use.mode == "dense" and use.out_dim is not None and (use.param, use.out_dim) in ch.params:
            out_group = by_root.get(ch.root(next(iter(_groups(ch.params[(use.param, use.out_dim)])), -1)))
        elif (use.param, 0) in ch.params:
            out_group = by_root.get(ch.root(next(iter(_groups(ch.params[(use.param, 0)])), -1)))
        status = out_group["status"] if out_group else "fixed"
        if out_group and out_group["status"] == "frozen":
            status = f"frozen: {out_group['reason']}"
        out.append({"name": use.module, "class": cls.__name__, "kind": use.kind, "mode": use.mode,
                    "out_group": out_group["name"] if out_group else None, "status": status,
                    "kernel": sn.kernel_status.get(use.module)})  # fmt: skip
    return out


def _groups(layout: Any) -> set[int]:
    return {s.group for s in layout if s.group is not None} or {-1}


def _block_entries(sn: Any) -> list[dict[str, Any]]:
    if "depth" not in sn.dims_requested:
        return []
    out = []
    for group in sn.analysis.block_groups:
        dropped = sn.dropped.get(f"depth/{group.name}")
        for block in group.blocks:
            entry = {"name": block.name, "paths": list(block.paths), "group": group.name, "status": "elastic"}
            if dropped:
                entry.update(status="rejected", reason=dropped, group=None)
            out.append(entry)
    out += [{"name": r.name, "status": "rejected", "reason": r.reason} for r in sn.analysis.block_rejects]
    return out


def _warnings(sn: Any, report: GenerationReport) -> list[str]:
    out = []
    for dim in report.dims:
        if report.variables.get(dim, 0):
            continue
        if dim == "width":
            top = report.top_frozen_reasons()
            reasons = "; ".join(f"{r} ({c} groups)" for r, c in top) or "no channel group between two layers"
        elif dim == "depth":
            counts = Counter(b["reason"] for b in report.blocks if b["status"] == "rejected")
            reasons = "; ".join(f"{r} ({c})" for r, c in counts.most_common(3)) or "no residual block found"
        else:
            counts = Counter(k["status"] for k in report.kernels)
            reasons = "; ".join(f"{r} ({c})" for r, c in counts.most_common(3)) or "no convolution has a kernel >= 5"
        out.append(f"elastic {dim} requested but no variable was found: {reasons}")
    return out


def build_report(sn: Any) -> GenerationReport:
    space = sn.search_space
    base = getattr(type(sn.model), "_bnas_base", type(sn.model))
    groups, by_root = _group_entries(sn)
    report = GenerationReport(
        model=base.__name__,
        dims=list(sn.dims_requested),
        variables={d: sum(v.dim == d for v in space.variables) for d in ("width", "depth", "kernel")},
        search_space_size=space.size,
        macs={"max": sn.macs(space.maximum()), "min": sn.macs(space.minimum())},
        groups=groups,
        layers=_layer_entries(sn, by_root),
        blocks=_block_entries(sn),
        kernels=[{"name": p, "status": s} for p, s in sn.kernel_status.items() if "below 5" not in s],
        notes=list(sn.analysis.notes),
    )
    below = sum("below 5" in s for s in sn.kernel_status.values())
    if below:
        report.notes.append(f"{below} convolutions have kernels below 5 (not elastic by design)")
    report.warnings = _warnings(sn, report)
    return report
