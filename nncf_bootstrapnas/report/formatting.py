"""Number formatting shared by the Markdown report and the console table (so both show the same digits)."""

from __future__ import annotations

from nncf_bootstrapnas.report.model import ModelRow, RunReport

NA = "n/a"


def fmt_acc(value: float | None) -> str:
    return NA if value is None else f"{value:.2f}%"


def fmt_macs(value: int | None) -> str:
    if value is None:
        return NA
    if value >= 1e9:
        return f"{value / 1e9:.2f} G"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    return f"{value / 1e3:.1f} K"


def fmt_ms(value: float | None) -> str:
    return NA if value is None else f"{value:.3f}"


def fmt_fps(value: float | None) -> str:
    return NA if value is None else f"{value:.0f}"


def fmt_ratio(value: float | None) -> str:
    return NA if value is None else f"{value:.2f}x"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def status_text(row: ModelRow, index: int | None = None) -> str:
    """``measured``, or the status with a footnote number pointing at its reason (tables stay narrow)."""
    if row.status == "done":
        return "measured"
    return f"{row.status} [{index}]" if index is not None and row.reason else row.status


def footnotes(report: RunReport) -> list[str]:
    """``[n] label: reason`` for every row that was not measured, numbered as in the table."""
    return [f"[{i}] {m.label}: {m.reason}" for i, m in enumerate(report.models, 1) if m.status != "done" and m.reason]


def deployment_rows(report: RunReport) -> list[list[str]]:
    """The cells of the headline table, one list per model, in report order."""
    speed = report.speedups()
    rows = []
    for i, m in enumerate(report.models, 1):
        s = speed.get(m.key, {})
        rows.append(
            [
                m.label,
                fmt_acc(m.accuracy),
                fmt_macs(m.macs),
                fmt_ms(m.latency_ms),
                fmt_fps(m.throughput_fps),
                fmt_ratio(s.get("throughput")),
                status_text(m, i),
            ]
        )
    return rows


HEADERS = ["model", "accuracy", "MACs", "latency (ms)", "throughput (img/s)", "speed-up vs original FP32", "status"]
SHORT_HEADERS = ["model", "acc.", "MACs", "latency ms", "img/s", "speed-up", "status"]


def short_details(details: dict, limit: int = 90) -> str:
    """``key=value`` pairs of scalar details only (nested data lives in report.json)."""
    parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in details.items()
             if isinstance(v, (int, float, str, bool)) or v is None]  # fmt: skip
    text = ", ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."
