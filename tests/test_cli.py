"""CLI contract: --help on every subcommand, and every user error is one ``error:`` line with exit code 2 or 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration  # each test starts the CLI in a child process
COMMANDS = ["run", "train", "search", "export", "benchmark", "generate", "quality"]
DEMO_CONFIG = ROOT / "examples" / "configs" / "digits_resnet18.json"


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "nncf_bootstrapnas.cli.main", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=240,
    )  # fmt: skip


def error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one stderr line, got:\n{proc.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_top_level_help_lists_every_subcommand():
    proc = cli("--help")
    assert proc.returncode == 0, proc.stderr
    for command in COMMANDS:
        assert command in proc.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_subcommand_help(command):
    proc = cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: nncf-bootstrapnas {command}")
    assert "--output-dir" in proc.stdout and "--debug" in proc.stdout


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.json"
    proc = cli("run", "--config", str(missing), "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert str(missing) in error_line(proc)


def test_invalid_config_names_the_json_path(tmp_path):
    config = json.loads(DEMO_CONFIG.read_text())
    config["bootstrapNAS"]["training"]["schedule"]["list_stage_descriptions"][1]["train_dims"][1] = "widht"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(config))
    proc = cli("run", "--config", str(path), "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 2
    line = error_line(proc)
    assert "bootstrapNAS.training.schedule.list_stage_descriptions[1].train_dims[1]" in line
    assert "width" in line  # the suggestion


def test_invalid_json_names_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"model": "resnet18",\n "bootstrapNAS": {]}\n')
    proc = cli("train", "--config", str(path), "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "line 2" in error_line(proc)


def test_unknown_model_name(tmp_path):
    proc = cli("run", "--config", str(DEMO_CONFIG), "--model", "resnet19", "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 2
    line = error_line(proc)
    assert "unknown model 'resnet19'" in line and "resnet18" in line


def test_bad_model_import_path(tmp_path):
    proc = cli(
        "train", "--config", str(DEMO_CONFIG), "--model", "no_such_pkg.models:build", "--output-dir", str(tmp_path)
    )
    assert proc.returncode == 2
    assert "no_such_pkg" in error_line(proc)


def test_unknown_flag_is_one_line():
    proc = cli("run", "--config", str(DEMO_CONFIG), "--epochz", "3")
    assert proc.returncode == 2
    assert "--epochz" in error_line(proc)


def test_bad_constraint_syntax(tmp_path):
    proc = cli("generate", "--config", str(DEMO_CONFIG), "--checkpoint", "x.pth", "--constraint", "macs<40e6")
    assert proc.returncode == 2
    assert "NAME=VALUE" in error_line(proc)


def test_missing_checkpoint_file(tmp_path):
    missing = tmp_path / "supernet.pth"
    proc = cli(
        "search", "--config", str(DEMO_CONFIG), "--checkpoint", str(missing), "--output-dir", str(tmp_path / "o")
    )
    assert proc.returncode == 2
    assert f"checkpoint not found: {missing}" in error_line(proc)


def test_incompatible_checkpoint_is_a_runtime_error(tmp_path):
    import torch

    weights = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), weights)
    proc = cli("train", "--config", str(DEMO_CONFIG), "--small", "--checkpoint", str(weights),
               "--output-dir", str(tmp_path / "out"), "--no-progress")  # fmt: skip
    assert proc.returncode == 1
    line = error_line(proc)
    assert f"incompatible checkpoint {weights}" in line and "resnet18" in line


def test_benchmark_without_models(tmp_path):
    proc = cli("benchmark", "--output-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "no model.xml" in error_line(proc)


def test_model_import_path_builds_with_num_classes(tmp_path, monkeypatch):
    from nncf_bootstrapnas.models import ModelError, resolve_model

    (tmp_path / "my_models_for_cli.py").write_text(
        "import torch\n\ndef build(num_classes, hidden=4):\n    return torch.nn.Linear(hidden, num_classes)\n"
    )
    monkeypatch.chdir(tmp_path)  # found in the working directory, as `python -m` would, without editing sys.path
    path = list(sys.path)
    model = resolve_model("my_models_for_cli:build", {"hidden": 5}, num_classes=3).build()
    assert tuple(model.weight.shape) == (3, 5) and sys.path == path
    with pytest.raises(ModelError, match="has no callable 'missing'"):
        resolve_model("my_models_for_cli:missing")
