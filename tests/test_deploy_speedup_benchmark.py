"""benchmarks/deploy_speedup.py from a supernet artifact saved by the API (``--artifact``): no ``train`` stage, the
CLI search measures the original stored in the artifact, and every benchmarked IR gets its test-split accuracy.
A tiny untrained ResNet on random Fashion-MNIST IDX files: plumbing and report invariants, not accuracy."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")

N_TEST = 40


@pytest.mark.slow
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


class _Exported:
    """An export report stand-in: the original at 90 %, the subnet's INT8 accuracy a step function of its MACs."""

    def __init__(self, macs: int, threshold: int) -> None:
        from nncf_bootstrapnas.report import ModelRow

        self.rows = {
            "original_fp32": ModelRow("original_fp32", "original FP32", "FP32", accuracy=90.0, path="o.xml"),
            "original_int8": ModelRow("original_int8", "original INT8", "INT8", accuracy=89.9, path="o8.xml"),
            "subnet_int8": ModelRow(
                "subnet_int8", "s", "INT8", accuracy=89.5 if macs >= threshold else 88.0, macs=macs, path=f"s{macs}.xml"
            ),  # fmt: skip
        }

    def row(self, key: str):
        return self.rows[key]


@pytest.mark.parametrize("threshold", [1, 7, 13, 31, 99])
def test_bisection_finds_the_smallest_qualifying_candidate(load_benchmark, threshold):
    bench = load_benchmark("deploy_speedup")
    pool = [{"index": i, "config": {}, "values": {"macs": m}} for i, m in enumerate(range(1, 33))]  # 32 candidates
    calls = []

    def export(i, row, original):
        calls.append((i, row["values"]["macs"], original))
        return _Exported(row["values"]["macs"], threshold)

    base, base_int8, chosen = bench.bisect_candidates(pool, export, budget=6, delta=1.0)
    assert base.key == "original_fp32" and base_int8.key == "original_int8"
    assert [c[2] for c in calls] == [True] + [False] * (len(calls) - 1)  # the original exported once
    assert len(calls) <= 6
    if threshold > 32:
        assert chosen is None
    else:
        assert chosen.macs == threshold and chosen.label == f"subnet #{threshold - 1} INT8"


def test_candidates_are_the_searched_front_when_the_exports_are_fine_tuned(load_benchmark):
    from types import SimpleNamespace

    bench = load_benchmark("deploy_speedup")

    def row(i: int, acc: float, macs: int, feasible: bool = True) -> dict:
        return {"index": i, "config": {"w": i}, "values": {"accuracy": acc, "macs": macs}, "feasible": feasible}

    rows = [row(0, 90.0, 30), row(1, 89.5, 20), row(2, 85.0, 10), row(3, 84.0, 25), row(4, 80.0, 5, False)]
    front = [rows[2], rows[1], rows[0]]  # non-dominated, fewest MACs first; 3 is dominated, 4 infeasible
    result = SimpleNamespace(rows=rows, front=front)
    assert [r["index"] for r in bench.candidates(result, 90.0, 1.0)] == [1, 0]  # inherited accuracy within 1 point
    assert [r["index"] for r in bench.candidates(result, 90.0, 1.0, finetuned=True)] == [2, 1, 0]
    args = bench._parser().parse_args(["--finetune-epochs", "2", "--finetune-lr", "1e-4"])
    export = bench.build_config(args)["export"]
    assert export["finetune_epochs"] == 2 and export["finetune_lr"] == 1e-4
    assert "finetune_lr" not in bench.build_config(bench._parser().parse_args([]))["export"]  # the schema's default
