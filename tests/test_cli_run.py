"""``run`` end to end on a tiny budget (small ResNet-18, 1 epoch on a subset, a handful of evaluations, 0.2 s
benchmarks), then the per-stage subcommands on its outputs. Slow: several minutes on 2 shared cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROWS = ["original_fp32", "original_int8", "subnet_fp32", "subnet_int8"]

TINY = {
    "model": "resnet18", "dataset": "digits", "num_classes": 10, "batch_size": 64, "epochs": 1,
    "input_info": {"sample_size": [1, 3, 32, 32]},
    "bootstrapNAS": {
        "training": {
            "progressivity_of_elasticity": ["kernel", "width", "depth"],
            "batchnorm_adaptation": {"num_bn_adaptation_samples": 64},
            "schedule": {"list_stage_descriptions": [
                {"train_dims": ["kernel", "width", "depth"], "epochs": 1, "width_indicator": 2, "init_lr": 0.005},
            ]},
            "elasticity": {"width": {"min_width": 8, "width_multipliers": [1.0, 0.5]}},
            "sampling": {"strategy": "sandwich", "num_random": 0},
            "train_steps": 4,
        },
        "search": {"num_evals": 5, "population": 3, "batchnorm_adaptation": {"num_bn_adaptation_samples": 64}},
    },
    "export": {"formats": ["openvino"], "int8": True, "num_calibration_samples": 32},
    "benchmark": {"time_budget_s": 0.2, "warmup_iters": 2},
}  # fmt: skip


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    cmd = [sys.executable, "-m", "nncf_bootstrapnas.cli.main", *args, "--no-progress"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = out / "tiny.json"
    config.write_text(json.dumps(TINY))
    proc = cli("run", "--config", str(config), "--output-dir", str(out), "--small", "--train-subset", "256")
    return proc, out, config


@pytest.mark.slow
def test_run_writes_report_and_prints_the_table(tiny_run):
    proc, out, _ = tiny_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert [m["key"] for m in report["models"]] == ROWS
    stages = {s["name"]: s["status"] for s in report["stages"]}
    assert stages["pretrain"] == stages["train"] == stages["search"] == stages["export"] == "done"
    for m in report["models"]:
        if m["status"] == "done":  # measured: real numbers in range
            assert 0.0 <= m["accuracy"] <= 100.0 and m["throughput_fps"] > 0 and m["latency_ms"] > 0
            assert Path(m["path"]).is_file() and m["macs"] > 0
        else:  # not measured: no number, and a reason
            assert m["reason"] and m["throughput_fps"] is None
    fp32 = report["models"][0]
    assert fp32["status"] == "done"
    assert report["speedup_vs_original_fp32"]["original_fp32"]["throughput"] == pytest.approx(1.0)
    subnet, original = report["models"][2], report["models"][0]
    assert subnet["macs"] <= original["macs"]
    assert report["search"]["evaluations"] >= 5
    assert "digits" in report["dataset"]
    for name in ("search/search_result.csv", "search/search_result.json", "search/pareto_front.png",
                 "checkpoints/supernet.pth", "checkpoints/pretrained.pth", "config.json", "report.md"):  # fmt: skip
        assert (out / name).is_file(), name
    md = (out / "report.md").read_text()
    assert "| original FP32 |" in md and "](search/pareto_front.png)" in md
    assert "Deployed models (OpenVINO, validation split)" in proc.stdout
    assert "original INT8" in proc.stdout and "speed-up" in proc.stdout


@pytest.mark.slow
def test_stage_subcommands_on_the_run_outputs(tiny_run, tmp_path):
    proc, out, config = tiny_run
    assert proc.returncode == 0
    ckpt = str(out / "checkpoints" / "supernet.pth")
    bench = cli("benchmark", "--config", str(config), "--output-dir", str(out), "--time-budget", "0.2",
                "--inference-precision", "f32")  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    report = json.loads((out / "benchmark_report.json").read_text())
    rows = report["models"]
    assert len(rows) == 4 and all(r["throughput_fps"] > 0 for r in rows)
    assert report["benchmark_settings"]["inference precision"] == "f32"
    assert len(json.loads((out / "report.json").read_text())["models"]) == 4  # the run's report is kept

    exp = cli("export", "--config", str(config), "--checkpoint", ckpt, "--subnet", "min", "--no-original",
              "--output-dir", str(tmp_path / "export"))  # fmt: skip
    assert exp.returncode == 0, exp.stderr
    rows = json.loads((tmp_path / "export" / "export_report.json").read_text())["models"]
    assert [r["key"] for r in rows] == ["subnet_fp32", "subnet_int8"]
    assert rows[0]["accuracy"] is not None

    tuned = tmp_path / "tuned.json"  # export.finetune_epochs: the subnet is fine-tuned first, the original is not
    tuned.write_text(json.dumps({**TINY, "export": {**TINY["export"], "finetune_epochs": 1}}))
    exp = cli("export", "--config", str(tuned), "--checkpoint", ckpt, "--subnet", "min", "--train-subset", "64",
              "--output-dir", str(tmp_path / "tuned"))  # fmt: skip
    assert exp.returncode == 0, exp.stderr
    notes = {
        r["key"]: " ".join(r["notes"])
        for r in json.loads((tmp_path / "tuned" / "export_report.json").read_text())["models"]
    }
    assert "fine-tuned 1 epoch(s) on 64 training images" in notes["subnet_fp32"] and "distilled" in notes["subnet_int8"]
    assert "fine-tuned" not in notes["original_fp32"] + notes["original_int8"]
    exp = cli("export", "--config", str(tuned), "--checkpoint", ckpt, "--subnet", "min", "--train-subset", "64",
              "--no-original", "--output-dir", str(tmp_path / "tuned_alone"))  # fmt: skip
    assert exp.returncode == 0, exp.stderr
    rows = json.loads((tmp_path / "tuned_alone" / "export_report.json").read_text())["models"]
    assert [r["key"] for r in rows] == ["subnet_fp32", "subnet_int8"]
    assert "distilled from the original" in " ".join(rows[0]["notes"])  # the stored original teaches, unexported

    srch = cli("search", "--config", str(config), "--checkpoint", ckpt, "--num-evals", "3",
               "--output-dir", str(tmp_path / "search"))  # fmt: skip
    assert srch.returncode == 0, srch.stderr
    result = json.loads((tmp_path / "search" / "search" / "search_result.json").read_text())
    assert len(result["rows"]) == 3


@pytest.mark.slow
def test_train_writes_a_supernet_artifact_that_loads_alone_and_resumes(tmp_path):
    from nncf_bootstrapnas import load_supernet
    from nncf_bootstrapnas.training import read_artifact

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    out = tmp_path / "train"
    proc = cli("train", "--config", str(config), "--output-dir", str(out), "--small", "--train-subset", "128")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    artifact = read_artifact(out / "checkpoints" / "supernet.pth")
    assert artifact.kind == "supernet" and artifact.model.reference_name == "resnet18" and artifact.model.args["small"]
    assert 0.0 <= artifact.meta["original_fp32_accuracy"] <= 100.0 and artifact.build_original() is not None
    supernet = load_supernet(out / "checkpoints" / "supernet.pth")  # the file alone: model, elasticity, weights
    assert supernet.search_space.to_json() == artifact.search_space
    stages = {s["name"]: s for s in json.loads((out / "train_report.json").read_text())["stages"]}
    assert stages["pretrain"]["status"] == stages["train"]["status"] == "done"
    report = json.loads((out / "generation_report.json").read_text())  # why the model got its search space
    assert report["variables"]["width"] > 0 and "generation: " in proc.stdout
    assert "(generation_report.md)" in (out / "train_report.md").read_text()

    again = cli("train", "--config", str(config), "--output-dir", str(out), "--small", "--train-subset", "128",
                "--checkpoint", str(out / "checkpoints" / "pretrained.pth"), "--resume")  # fmt: skip
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    stages = {s["name"]: s for s in json.loads((out / "train_report.json").read_text())["stages"]}
    assert stages["pretrain"]["status"] == "skipped"
    assert stages["train"]["details"]["resumed_from"].endswith("supernet_last.pth")
