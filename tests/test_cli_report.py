"""The report writer alone: JSON round trip, derived speed-ups, Markdown tables/links, the console table."""

from __future__ import annotations

import json

import pytest

from nncf_bootstrapnas.report import (
    ModelRow,
    RunReport,
    StageRecord,
    deployment_footnotes,
    deployment_table,
    read_report,
    render_markdown,
    write_report,
)


def _report() -> RunReport:
    report = RunReport(command="nncf-bootstrapnas run --config c.json", dataset="digits (test)")
    report.add_stage(StageRecord("pretrain", "done", seconds=3.25))
    report.add_stage(StageRecord("train", "unavailable", reason="training not importable"))
    report.set_row(
        ModelRow(
            "original_fp32",
            "original FP32",
            "FP32",
            accuracy=97.5,
            macs=8_000_000,
            latency_ms=2.0,
            throughput_fps=400.0,
            path="exported/original/openvino/model.xml",
        )
    )
    report.set_row(
        ModelRow(
            "original_int8",
            "original INT8",
            "INT8",
            accuracy=97.0,
            macs=8_000_000,
            latency_ms=1.0,
            throughput_fps=1000.0,
        )
    )
    report.set_row(ModelRow("subnet_fp32", "best subnet FP32", "FP32", status="skipped", reason="no subnet chosen"))
    report.plots["search pareto"] = "search/pareto_front.png"
    report.artifacts["search result (csv)"] = "search/search_result.csv"
    return report


def test_speedups_are_ratios_of_measured_numbers_and_missing_stays_missing():
    speed = _report().speedups()
    assert speed["original_fp32"] == {"throughput": 1.0, "latency": 1.0}
    assert speed["original_int8"]["throughput"] == pytest.approx(2.5)
    assert speed["original_int8"]["latency"] == pytest.approx(2.0)
    assert speed["subnet_fp32"] == {"throughput": None, "latency": None}


def test_write_report_round_trips_and_renders_tables(tmp_path):
    report = _report()
    paths = write_report(report, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["format"] == "nncf_bootstrapnas.report/1"
    assert data["speedup_vs_original_fp32"]["original_int8"]["throughput"] == pytest.approx(2.5)
    again = read_report(paths["json"])
    assert again.row("original_int8").throughput_fps == 1000.0
    assert [s.status for s in again.stages] == ["done", "unavailable"]

    md = paths["markdown"].read_text()
    assert "| original INT8 | 97.00% | 8.00 M | 1.000 | 1000 | 2.50x | measured |" in md
    assert "| best subnet FP32 | n/a | n/a | n/a | n/a | n/a | skipped [3] |" in md
    assert "[3] best subnet FP32: no subnet chosen" in md
    assert "![search pareto](search/pareto_front.png)" in md
    assert "[search/search_result.csv](search/search_result.csv)" in md
    assert "| train | unavailable | - | training not importable |" in md
    assert md == render_markdown(again)


def test_console_table_shows_the_same_cells():
    from rich.console import Console

    report = _report()
    console = Console(record=True, width=140)
    console.print(deployment_table(report))
    text = console.export_text()
    assert "2.50x" in text and "97.50%" in text and "skipped [3]" in text
    assert deployment_footnotes(report) == ["[3] best subnet FP32: no subnet chosen"]


def test_stage_status_is_validated():
    with pytest.raises(ValueError, match="not one of"):
        StageRecord("x", "faked")


def test_report_json_is_strict_json_even_with_undefined_numbers(tmp_path):
    from nncf_bootstrapnas.report import RunReport, StageRecord, write_report

    report = RunReport(command="quality", dataset="digits")
    report.add_stage(
        StageRecord("quality", "done", details={"tau[inherited_bn_acc]": float("nan"), "n": [1.0, float("inf")]})
    )

    def reject(token: str) -> None:
        raise AssertionError(f"non-standard JSON constant {token}")

    data = json.loads(write_report(report, tmp_path)["json"].read_text(), parse_constant=reject)
    details = data["stages"][0]["details"]
    assert details == {"tau[inherited_bn_acc]": None, "n": [1.0, None]}
