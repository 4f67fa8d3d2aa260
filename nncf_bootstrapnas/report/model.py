"""The data of a run report: stages with their status, deployed models with measured numbers, artifacts.

Plain dataclasses so that ``report.json`` is the single source the Markdown file and the console table are rendered
from. Every number comes from a measurement made by the caller; missing values stay ``None`` and carry a reason.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT = "nncf_bootstrapnas.report/1"
STATUSES = ("done", "skipped", "unavailable", "failed")
BASELINE = "original_fp32"


@dataclass
class StageRecord:
    """One pipeline stage; ``status`` is one of STATUSES and ``reason`` says why it was not ``done``."""

    name: str
    status: str
    seconds: float | None = None
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"stage {self.name!r}: status {self.status!r} is not one of {', '.join(STATUSES)}")


@dataclass
class ModelRow:
    """One deployed model (e.g. "original FP32"); metrics are ``None`` when not measured, with ``reason`` saying why."""

    key: str
    label: str
    precision: str
    status: str = "done"
    reason: str = ""
    accuracy: float | None = None
    accuracy_source: str = ""
    macs: int | None = None
    params: int | None = None
    latency_ms: float | None = None
    throughput_fps: float | None = None
    path: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    """Everything a run produced; ``speedups()`` is derived from the measured throughputs and latencies only."""

    command: str
    dataset: str
    model: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    stages: list[StageRecord] = field(default_factory=list)
    models: list[ModelRow] = field(default_factory=list)
    search: dict[str, Any] | None = None
    benchmark_settings: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    plots: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    created: str = field(default_factory=lambda: _dt.datetime.now().isoformat(timespec="seconds"))
    wall_time_s: float | None = None

    def add_stage(self, record: StageRecord) -> StageRecord:
        self.stages = [s for s in self.stages if s.name != record.name] + [record]
        return record

    def stage(self, name: str) -> StageRecord | None:
        return next((s for s in self.stages if s.name == name), None)

    def row(self, key: str) -> ModelRow | None:
        return next((m for m in self.models if m.key == key), None)

    def set_row(self, row: ModelRow) -> ModelRow:
        self.models = [m for m in self.models if m.key != row.key] + [row]
        return row

    def speedups(self, baseline: str = BASELINE) -> dict[str, dict[str, float | None]]:
        """Per row: throughput ratio and latency ratio against ``baseline`` (None where either side is missing)."""
        base = self.row(baseline)
        out: dict[str, dict[str, float | None]] = {}
        for m in self.models:
            thr = lat = None
            if base is not None and base.throughput_fps and m.throughput_fps:
                thr = m.throughput_fps / base.throughput_fps
            if base is not None and base.latency_ms and m.latency_ms:
                lat = base.latency_ms / m.latency_ms
            out[m.key] = {"throughput": thr, "latency": lat}
        return out

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = FORMAT
        data["speedup_vs_original_fp32"] = self.speedups()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunReport:
        data = {k: v for k, v in data.items() if k not in ("format", "speedup_vs_original_fp32")}
        data["stages"] = [StageRecord(**s) for s in data.get("stages", [])]
        data["models"] = [ModelRow(**m) for m in data.get("models", [])]
        return cls(**data)
