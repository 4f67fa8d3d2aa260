"""Run reports: ``report.json`` (the data), ``report.md`` (tables + linked plots) and rich console tables.

report = RunReport(command="nncf-bootstrapnas run ...", dataset="digits")
report.add_stage(StageRecord("search", "done", seconds=12.3))
report.set_row(ModelRow("original_fp32", "original FP32", "FP32", accuracy=97.5, throughput_fps=1800.0))
write_report(report, "outputs/demo")   # -> {"json": ..., "markdown": ...}
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from nncf_bootstrapnas.report.console import deployment_footnotes, deployment_table, stage_table
from nncf_bootstrapnas.report.markdown import render_markdown
from nncf_bootstrapnas.report.model import BASELINE, FORMAT, STATUSES, ModelRow, RunReport, StageRecord


def write_report(report: RunReport, out_dir: str | os.PathLike[str], stem: str = "report") -> dict[str, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``out_dir`` (created) and return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    data = json.dumps(strict_json(report.to_json()), indent=2, default=str, allow_nan=False)
    json_path.write_text(data + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return {"json": json_path, "markdown": md_path}


def strict_json(value: Any) -> Any:
    """``value`` with NaN/inf floats replaced by ``None``: ``report.json`` stays valid JSON for every parser."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def read_report(path: str | os.PathLike[str]) -> RunReport:
    return RunReport.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


__all__ = [
    "BASELINE",
    "FORMAT",
    "STATUSES",
    "ModelRow",
    "RunReport",
    "StageRecord",
    "deployment_footnotes",
    "deployment_table",
    "read_report",
    "render_markdown",
    "stage_table",
    "write_report",
]
