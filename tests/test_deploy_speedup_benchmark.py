"""benchmarks/deploy_speedup.py from a supernet artifact saved by the API (``--artifact``): no ``train`` stage, the
CLI search measures the original stored in the artifact, and every benchmarked IR gets its test-split accuracy.
A tiny untrained ResNet on random Fashion-MNIST IDX files: plumbing and report invariants, not accuracy."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

N_TEST = 40


def test_artifact_run_skips_training_and_reports_test_accuracy(load_benchmark, tiny_fmnist_artifact, tmp_path):
    from test_cli_data import write_random_fashion

    from nncf_bootstrapnas.report import read_report

    bench = load_benchmark("deploy_speedup")
    data = write_random_fashion(tmp_path / "fmnist", 240, N_TEST)
    out = tmp_path / "run"
    argv = ["--dataset", "fashion-mnist", "--data", str(data), "--model", "resnet18",
            "--model-params", json.dumps({"in_channels": 1}), "--artifact", str(tiny_fmnist_artifact), "--no-qat",
            "--num-evals", "4", "--population", "2", "--eval-subset", "20", "--bn-samples", "16",
            "--max-candidates", "1", "--acc-delta", "100", "--time-budget", "0.2", "--no-progress",
            "--output-dir", str(out)]  # fmt: skip
    assert bench.main(argv) == 0
    assert not (out / "train_report.json").exists()  # the artifact was searched, not re-trained
    search = json.loads((out / "search" / "search_result.json").read_text())
    assert search["ref_acc_source"] == "bootstrapNAS.search.ref_acc"  # the stored original, measured by `search`
    report = read_report(out / "deploy_speedup_report.json")
    assert [row.key for row in report.models] == ["original_fp32", "original_int8", "subnet_int8"]
    for row in report.models:
        (note,) = [n for n in row.notes if n.startswith("test split:")]
        assert f"({N_TEST} images, OpenVINO CPU)" in note
        assert row.throughput_fps and row.throughput_fps > 0
