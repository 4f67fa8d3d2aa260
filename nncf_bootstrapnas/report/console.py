"""Rich tables of a report for the terminal (the same cells as the Markdown tables)."""

from __future__ import annotations

from typing import Any

from nncf_bootstrapnas.report.formatting import SHORT_HEADERS, deployment_rows, fmt_seconds, footnotes, short_details
from nncf_bootstrapnas.report.model import RunReport


def deployment_table(report: RunReport, title: str = "Deployed models (OpenVINO, validation split)") -> Any:
    from rich.table import Table

    table = Table(title=title, caption="speed-up: throughput vs original FP32, same process", show_lines=False)
    for i, header in enumerate(SHORT_HEADERS):
        table.add_column(header, justify="left" if i in (0, len(SHORT_HEADERS) - 1) else "right", no_wrap=i > 0)
    for row in deployment_rows(report):
        table.add_row(*row)
    return table


def deployment_footnotes(report: RunReport) -> list[str]:
    return footnotes(report)


def stage_table(report: RunReport) -> Any:
    from rich.table import Table

    table = Table(title="Stages")
    for header in ("stage", "status", "time", "details"):
        table.add_column(header, overflow="fold")
    colours = {"done": "green", "skipped": "yellow", "unavailable": "yellow", "failed": "red"}
    for s in report.stages:
        status = f"[{colours.get(s.status, 'white')}]{s.status}[/]"
        table.add_row(s.name, status, fmt_seconds(s.seconds), s.reason or short_details(s.details))
    return table
