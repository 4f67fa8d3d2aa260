"""Run reports: ``report.json`` (the data), ``report.md`` (tables + linked plots) and rich console tables.

report = RunReport(command="nncf-bootstrapnas run ...", dataset="digits")
report.add_stage(StageRecord("search", "done", seconds=12.3))
report.set_row(ModelRow("original_fp32", "original FP32", "FP32", accuracy=97.5, throughput_fps=1800.0))
write_report(report, "outputs/demo")   # -> {"json": ..., "markdown": ...}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nncf_bootstrapnas.report.console import deployment_footnotes, deployment_table, stage_table
from nncf_bootstrapnas.report.markdown import render_markdown
from nncf_bootstrapnas.report.model import BASELINE, FORMAT, STATUSES, ModelRow, RunReport, StageRecord


def write_report(report: RunReport, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir`` (created) and return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(report.to_json(), indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return {"json": json_path, "markdown": md_path}


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
