"""benchmarks/peer_nncf218.py: the parent's pure parts (configs, data subsets, fronts and hypervolume, the table, venv
detection) without any venv or worker; the slow test runs ``--quick`` when both venvs exist."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("peer_nncf218")


@pytest.fixture(scope="module")
def report(bench):
    return sys.modules["peer.report"]


@pytest.fixture(scope="module")
def envs(bench):
    return sys.modules["peer.envs"]


# ---- arguments and configs --------------------------------------------------------------------------------------------
def test_quick_budget_and_overrides(bench):
    args = bench.parse_args(["--quick", "--search-evals", "24", "--models", "resnet18,vgg11_bn"])
    assert args.budget["search_evals"] == 24
    assert args.budget["models"] == ("resnet18", "vgg11_bn")
    assert args.budget["train_images"] == bench.QUICK["train_images"]
    assert bench.parse_args([]).budget["val_images"] >= 2000  # the full budget measures on >= 2000 images


def test_relative_paths_are_made_absolute_for_the_workers(bench, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = bench.parse_args(["--out", "runs/peer", "--peer-venv", "v", "--weights", "w.pth", "--data-root", "d"])
    assert args.out == tmp_path / "runs" / "peer" and args.peer_venv == tmp_path / "v"
    assert args.weights == tmp_path / "w.pth" and args.data_root == str(tmp_path / "d")
    assert args.ours_venv.is_absolute()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--parts", "coverage,plots"], "--parts: ['plots']"),
        (["--search-evals", "10", "--population", "20"], "--population 20"),
    ],
)
def test_bad_arguments_fail_before_any_work(bench, argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        bench.parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_training_config_is_one_nncf_style_file_our_loader_accepts(bench, tmp_path):
    from nncf_bootstrapnas import load_config

    budget = dict(bench.QUICK, epochs=3, search_evals=40, population=10)
    data = bench.training_config(budget, lr=0.02, acc_delta=0.5, seed=1, ref_acc=91.23456)
    path = bench.write_json(tmp_path / "config.json", data)
    cfg = load_config(path)
    stages = cfg["bootstrapNAS"]["training"]["schedule"]["list_stage_descriptions"]
    assert [s["epochs"] for s in stages] == [3, 3, 3, 3]
    assert {s["init_lr"] for s in stages} == {0.02}
    assert stages[-1]["train_dims"] == ["depth", "width"] and stages[-1]["width_indicator"] == 3
    search = cfg["bootstrapNAS"]["search"]
    assert (search["algorithm"], search["num_evals"], search["population"]) == ("NSGA2", 40, 10)
    assert search["ref_acc"] == pytest.approx(91.2346) and search["acc_delta"] == 0.5
    assert json.loads(path.read_text()) == data  # plain JSON: NNCF's NNCFConfig.from_json reads the same file
    assert load_config(bench.coverage_config(48)).input_info[0]["sample_size"] == [1, 3, 48, 48]
    assert (
        "sampling" not in cfg["bootstrapNAS"]["training"]
        or cfg["bootstrapNAS"]["training"]["sampling"].get("strategy", "sandwich") == "sandwich"
    )  # default: each library's own sampling
    single = load_config(bench.training_config(budget, 0.02, 0.5, 1, None, sampling="single"))
    assert single["bootstrapNAS"]["training"]["sampling"]["strategy"] == "single"
    assert "ref_acc" not in single["bootstrapNAS"]["search"] or single["bootstrapNAS"]["search"]["ref_acc"] is None


def test_prepare_data_writes_fixed_stratified_subsets(bench, tmp_path):
    from nncf_bootstrapnas.data import write_idx

    rng = np.random.default_rng(0)
    labels = {
        "train": np.repeat(np.arange(10, dtype=np.uint8), 10),
        "t10k": np.repeat(np.arange(10, dtype=np.uint8), 5),
    }
    for split, y in labels.items():
        write_idx(tmp_path / f"{split}-images-idx3-ubyte", rng.integers(0, 255, (len(y), 28, 28), dtype=np.uint8))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", y)
    path, meta = bench.prepare_data(tmp_path / "out", n_train=40, n_val=1000, seed=3, root=tmp_path)
    data = np.load(path)
    assert np.bincount(data["train_y"]).tolist() == [4] * 10  # stratified
    assert len(data["val_y"]) == 50 and meta["val_images"] == 50  # more than the split holds: all of it
    again, meta2 = bench.prepare_data(tmp_path / "out2", n_train=40, n_val=1000, seed=3, root=tmp_path)
    assert meta2["sha256"] == meta["sha256"]  # same seed, same tensors
    with pytest.raises(SystemExit, match="Fashion-MNIST not found"):
        bench.prepare_data(tmp_path / "out3", 10, 10, 0, root=tmp_path / "missing")


# ---- fronts and hypervolume ---------------------------------------------------------------------------------------------
def test_hypervolume_on_given_fronts(report):
    reference = np.array([1.0, -80.0])  # (relative MACs, -accuracy)
    one = np.array([[0.5, 90.0]])
    assert report.hypervolume(one, reference) == pytest.approx(0.5 * 10)
    two = np.array([[0.5, 90.0], [0.25, 85.0], [0.6, 84.0]])  # the third is dominated by the first
    assert report.hypervolume(two, reference) == pytest.approx(0.5 * 10 + 0.25 * 5)
    assert report.hypervolume(np.array([[1.2, 95.0]]), reference) == 0.0  # outside the reference box
    assert report.hypervolume(np.zeros((0, 2)), reference) == 0.0


def test_front_reference_and_best(report):
    pts = report.relative_points([{"mmacs": 10, "accuracy": 90}, {"mmacs": 5, "accuracy": 88},
                                  {"mmacs": 6, "accuracy": 80}, {"mmacs": 2, "accuracy": 70}], max_mmacs=10)  # fmt: skip
    assert report.pareto_front(pts).tolist() == [[0.2, 70.0], [0.5, 88.0], [1.0, 90.0]]
    other = np.array([[0.4, 60.0]])
    assert report.shared_reference([pts, other]).tolist() == [1.05, -59.0]
    assert report.best_within(pts, ref_acc=90, acc_delta=2) == (0.5, 88.0)
    assert report.best_within(pts, ref_acc=99, acc_delta=1) is None


# ---- rows and outputs ------------------------------------------------------------------------------------------------
def test_judge_directions_and_ties(report):
    assert report.judge(2.0, 4.0, higher_is_better=False) == ("0.50x", "ours")
    assert report.judge(2.0, 4.0, higher_is_better=True) == ("0.50x", report.PEER)
    assert report.judge(1.0, 1.01, higher_is_better=False)[1] == "tie"
    assert report.judge(90.0, 91.0, True, "points") == ("-1.00 pts", report.PEER)
    assert report.judge(None, 1.0, True) == ("n/a", "")


def _coverage(converts: bool, diff: float = 0.0) -> dict:
    if not converts:
        return {"converts": False, "error": "KeyError: 'x'", "generation_s": 0.1}
    return {"converts": True, "max_abs_diff": diff, "width": 3, "kernel": 1, "depth": 2, "macs_max": 100.0,
            "macs_min": 20.0, "generation_s": 1.0}  # fmt: skip


def test_coverage_rows_record_failures_and_totals(report):
    ours = {"a": _coverage(True), "b": _coverage(True)}
    nncf = {
        "a": {**_coverage(True, diff=0.5), "depth_error": "depth_indicator 3: ValueError: x",
              "min_error": "AssertionError: " + "m" * 300, "macs_min": None},
        "b": {**_coverage(False), "where": "side.py:_build -> lib.py:f"},
    }  # fmt: skip
    rows = report.coverage_rows(ours, nncf)
    by_metric = {r["metric"]: r for r in rows}
    converts = by_metric["b: converts"]
    assert converts["nncf"] == "no: KeyError: 'x' (in side.py:_build -> lib.py:f)" and converts["ahead"] == "ours"
    minimum = by_metric["a: minimum subnet activates"]
    assert minimum["ours"] == "ok" and minimum["nncf"].startswith("fails: AssertionError: mmm")
    assert len(minimum["nncf"]) < 130 and minimum["ahead"] == "ours"  # cut for the table
    assert by_metric["a: min-subnet MACs / max-subnet MACs"]["nncf"] == "n/a"
    assert by_metric["a: max subnet == original (max abs diff; rtol 1e-5)"]["nncf"].startswith("no")
    assert by_metric["models converted"]["ours"] == "2/2" and by_metric["models converted"]["nncf"] == "1/2"
    assert by_metric["models exact at the maximum subnet"]["nncf"] == "0/2"
    depth = by_metric["a: full depth search space (every block of a group skippable)"]
    assert (depth["ours"], depth["nncf"], depth["ahead"]) == ("ok", "fails: depth_indicator 3: ValueError: x", "ours")
    assert "b: generation time (s)" in by_metric and by_metric["b: generation time (s)"]["nncf"] == "n/a"


def test_markdown_says_where_nncf_is_ahead(report, tmp_path):
    rows = [report.numeric_row("wall time (s)", "training", 20.0, 10.0, ".1f", False),
            report.numeric_row("search", "hypervolume", 5.0, 4.0, ".3f", True)]  # fmt: skip
    text = report.markdown(rows, {"threads": 2})
    assert "| wall time (s) | training | 20.0 | 10.0 | 2.00x | NNCF 2.18 |" in text
    assert "- wall time (s): training (20.0 vs 10.0)" in text
    assert "nowhere" in report.markdown(rows[1:], {})
    paths = report.write_outputs(tmp_path, rows, {"threads": 2}, {"raw": 1}, ["a note"])
    assert paths["csv"].read_text().splitlines()[0] == ",".join(report.COLUMNS)
    data = json.loads(paths["json"].read_text())
    assert data["ahead_nncf"] == ["wall time (s): training (20.0 vs 10.0)"] and data["notes"] == ["a note"]


# ---- venv detection ------------------------------------------------------------------------------------------------------
def _fake_venv(root: Path, versions: dict) -> Path:
    python = root / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\necho '{json.dumps(versions)}'\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return root


def test_venv_detection(envs, tmp_path):
    good = {"torch": "2.8.0", "torchvision": "0.23.0", "nncf": "2.18.0", "tensorboard": "2.21.0"}
    assert envs.peer_problem(envs.probe(_fake_venv(tmp_path / "good", good))) is None
    assert "2.17" in envs.peer_problem({**good, "nncf": "2.17.0"})
    assert "tensorboard" in envs.peer_problem({**good, "tensorboard": None})
    assert "torch is 2.13.0" in envs.peer_problem({**good, "torch": "2.13.0"})
    assert "no Python" in envs.peer_problem(envs.probe(tmp_path / "absent"))
    assert "nncf_bootstrapnas" in envs.ours_problem({**good, "nncf_bootstrapnas": None})
    assert envs.ours_problem({**good, "nncf_bootstrapnas": "0.1.0"}) is None


def test_existing_foreign_venv_is_never_rebuilt(envs, tmp_path):
    venv = _fake_venv(tmp_path / "mine", {"torch": "2.8.0", "torchvision": "0.23.0", "nncf": "3.4.0"})
    with pytest.raises(SystemExit, match="nncf is 3.4.0, need 2.18.0"):
        envs.ensure_peer_venv(venv, tmp_path / "install.log")
    assert not (tmp_path / "install.log").exists()  # nothing was installed into someone else's venv
    with pytest.raises(SystemExit, match="--no-install"):
        envs.ensure_peer_venv(tmp_path / "absent", tmp_path / "install.log", create=False)
    commands = envs.install_commands(tmp_path / "v")
    assert commands[0][-2:] == ["torch==2.8.0", "torchvision==0.23.0"]  # torch first, then NNCF with the same pins
    assert {"nncf==2.18.0", "torch==2.8.0", "tensorboard"} <= set(commands[1])


# ---- the whole benchmark, when both venvs are there ----------------------------------------------------------------------
def _peer_venv() -> Path | None:
    for candidate in (os.environ.get("PEER_NNCF218_VENV"), ROOT / ".venv-nncf218", "/tmp/venv-nncf218"):
        if candidate and (Path(candidate) / "bin" / "python").exists():
            return Path(candidate)
    return None


@pytest.mark.slow
@pytest.mark.skipif(_peer_venv() is None or not (ROOT / ".venv-zoo" / "bin" / "python").exists(),
                    reason="needs the NNCF 2.18 venv (.venv-nncf218) and .venv-zoo")  # fmt: skip
def test_quick_run_end_to_end(bench, tmp_path, capsys):
    done = bench.main(["--quick", "--peer-venv", str(_peer_venv()), "--threads", "1", "--no-progress",
                       "--out", str(tmp_path)])  # fmt: skip
    rows = done["rows"]
    assert "| section | metric | ours | NNCF 2.18 |" in capsys.readouterr().out
    assert not [r for r in rows if r["ours"].startswith("failed") or r["nncf"].startswith("failed")]
    sections = {r["section"] for r in rows}
    assert {"generation coverage", "accuracy after the same training", "wall time (s)"} <= sections
    assert all(r["ours"] and r["nncf"] for r in rows)
    assert all(p.is_file() for p in done["paths"].values())
