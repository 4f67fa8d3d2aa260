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
from nncf_bootstrapnas.utils.io import atomic_write_text, write_json


def write_report(report: RunReport, out_dir: str | os.PathLike[str], stem: str = "report") -> dict[str, Path]:
    """Write ``<stem>.json`` (strict JSON: NaN/inf as null) and ``<stem>.md`` into ``out_dir``, atomically."""
    out = Path(out_dir)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    write_json(json_path, report.to_json(), default=str)
    atomic_write_text(md_path, render_markdown(report))
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
