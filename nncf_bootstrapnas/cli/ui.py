"""Console output at the end of a command: the stage table, the deployment table and where the files are."""

from __future__ import annotations

from pathlib import Path

from nncf_bootstrapnas.cli.session import Session
from nncf_bootstrapnas.report import deployment_footnotes, deployment_table, stage_table


def print_summary(session: Session, files: dict[str, Path], models: bool = True) -> None:
    console = session.console
    console.rule("[bold]Summary")
    console.print(stage_table(session.report))
    if models and session.report.models:
        console.print(deployment_table(session.report))
        for note in deployment_footnotes(session.report):
            console.print(note, soft_wrap=True)
        settings = session.report.benchmark_settings
        if settings:
            console.print("benchmark: " + "; ".join(f"{k} {v}" for k, v in settings.items()))
    console.print(f"data: {session.report.dataset}")
    for note in session.report.notes:
        console.print(f"note: {note}")
    console.print(f"results: {session.out}/ (report: {files['markdown']}, {files['json']})")
