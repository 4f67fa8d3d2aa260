"""``report.md``: the run's tables (deployed models, stages, search) with the plots and artifacts linked."""

from __future__ import annotations

import json
from typing import Any

from nncf_bootstrapnas.report.formatting import HEADERS, deployment_rows, fmt_seconds, footnotes
from nncf_bootstrapnas.report.model import RunReport


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def _compact(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_markdown(report: RunReport) -> str:
    """Markdown text of the report; links are the relative paths stored in ``report.artifacts`` / ``report.plots``."""
    lines = [f"# nncf_bootstrapnas run report: {report.model.get('name', 'model')}", ""]
    lines += [f"- command: `{report.command}`", f"- created: {report.created}", f"- data: {report.dataset}"]
    if report.wall_time_s is not None:
        lines.append(f"- wall time: {fmt_seconds(report.wall_time_s)}")
    lines += [f"- note: {n}" for n in report.notes]
    lines += ["", "## Deployed models (OpenVINO)", ""]
    if report.models:
        lines += _table(HEADERS, deployment_rows(report))
        lines.append("")
        lines.append(
            "Accuracy is top-1 of each deployed OpenVINO model on the validation split; speed-up is the throughput "
            "ratio against the original FP32 model, measured in the same run. `n/a` marks a value that was not measured."
        )
        lines.append("")
        lines += [f"- {note}" for note in footnotes(report)]
        for m in report.models:
            for note in m.notes:
                lines.append(f"- {m.label}: {note}")
    else:
        lines.append("No model was deployed in this run.")
    if report.benchmark_settings:
        lines += [
            "",
            "Benchmark settings: "
            + ", ".join(f"{k} = {_compact(v, 80)}" for k, v in report.benchmark_settings.items()),
        ]
    lines += ["", "## Stages", ""]
    stage_rows = [[s.name, s.status, fmt_seconds(s.seconds), s.reason or _compact(s.details)] for s in report.stages]
    lines += _table(["stage", "status", "time", "details"], stage_rows)
    if report.search:
        lines += ["", "## Search", ""]
        lines += [f"- {k}: {_compact(v)}" for k, v in report.search.items()]
    if report.plots:
        lines += ["", "## Plots", ""]
        for name, path in report.plots.items():
            lines += [f"![{name}]({path})", ""]
    if report.artifacts:
        lines += ["", "## Artifacts", ""]
        lines += [f"- {name}: [{path}]({path})" for name, path in report.artifacts.items()]
    if report.environment:
        lines += ["", "## Environment", ""]
        lines += [f"- {k}: {_compact(v)}" for k, v in report.environment.items()]
    return "\n".join(lines).rstrip() + "\n"
