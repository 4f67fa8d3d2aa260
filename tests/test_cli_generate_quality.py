"""``generate`` and ``quality`` end to end through the console entry point, on a supernet checkpoint written the way
``train``/``run`` write it (small ResNet-18, untrained: these tests check the plumbing, files and invariants, not
accuracy). Slow: part of ``make test-slow``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # every test starts the CLI on a supernet: minutes on 2 shared cores

CONFIG = {
    "input_info": {"sample_size": [1, 3, 32, 32]},
    "bootstrapNAS": {
        "training": {"elasticity": {"width": {"min_width": 8, "width_multipliers": [1.0, 0.5]}}},
        "search": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 32}},
    },
    "generator": {"epochs": 2, "num_constraint_values": 4, "hidden_dim": 16},
    "quality_report": {"num_subnets": 3, "finetune_epochs": 1, "top_k": 2},
}


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    cmd = [sys.executable, "-m", "nncf_bootstrapnas.cli.main", *args, "--no-progress"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[Path, Path, float, float]:
    """(config path, supernet checkpoint, min MACs, max MACs)."""
    from nncf_bootstrapnas import create_supernet, load_config, save_supernet
    from nncf_bootstrapnas.models import resolve_model

    out = tmp_path_factory.mktemp("supernet")
    config_path = out / "config.json"
    config_path.write_text(json.dumps(CONFIG))
    model = resolve_model("resnet18", small=True)
    original = model.build()
    supernet = create_supernet(original, load_config(CONFIG))
    space = supernet.search_space
    lo, hi = supernet.macs(space.minimum()), supernet.macs(space.maximum())
    path = save_supernet(out / "supernet.pth", supernet, model=model, original=original,
                         meta={"note": "untrained test supernet"})  # fmt: skip
    return config_path, path, lo, hi


def test_generate_writes_a_valid_subnet_within_the_budget(checkpoint, tmp_path):
    config, ckpt, lo, hi = checkpoint
    budget = lo + 0.4 * (hi - lo)
    proc = cli("generate", "--config", str(config), "--checkpoint", str(ckpt), "--constraint", f"macs={budget}",
               "--strict", "--train-subset", "128", "--output-dir", str(tmp_path), "--seed", "0")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    body = json.loads((tmp_path / "generated_subnet.json").read_text())
    assert body["constraint"] == {"macs": budget}
    assert lo <= body["measured"]["macs"] <= budget  # --strict: the budget holds exactly
    assert 0.0 <= body["measured"]["accuracy"] <= 100.0
    assert set(body["config"]) >= {"width", "depth"}

    from nncf_bootstrapnas import load_supernet

    supernet = load_supernet(ckpt)
    valid = supernet.search_space.validate(body["config"])  # raises on any invalid choice
    assert supernet.macs(valid) == body["measured"]["macs"]
    report = json.loads((tmp_path / "generate_report.json").read_text())
    assert report["stages"][-1]["name"] == "generator" and report["stages"][-1]["status"] == "done"
    assert "meets macs" in proc.stdout

    # the saved generator answers another budget in one forward pass, without training again
    again = tmp_path / "again"
    smaller = lo + 0.2 * (hi - lo)
    proc = cli("generate", "--config", str(config), "--checkpoint", str(ckpt), "--constraint", f"macs={smaller}",
               "--generator", str(tmp_path / "generator.json"), "--strict", "--train-subset", "128",
               "--output-dir", str(again))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "reusing the generator" in proc.stdout
    second = json.loads((again / "generated_subnet.json").read_text())
    assert lo <= second["measured"]["macs"] <= smaller
    assert not (again / "generator.json").exists()


def test_generate_rejects_an_unconditioned_constraint_in_one_line(checkpoint, tmp_path):
    config, ckpt, _, _ = checkpoint
    proc = cli("generate", "--config", str(config), "--checkpoint", str(ckpt), "--constraint", "latency_ms=2",
               "--output-dir", str(tmp_path))  # fmt: skip
    assert proc.returncode != 0
    assert "generator.constraint" in proc.stderr and "'macs'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_quality_reports_correlations_for_every_signal(checkpoint, tmp_path):
    config, ckpt, _, _ = checkpoint
    proc = cli("quality", "--config", str(config), "--checkpoint", str(ckpt), "--train-subset", "128",
               "--output-dir", str(tmp_path), "--seed", "0")  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "quality_report.json").read_text())
    stage = next(s for s in report["stages"] if s["name"] == "quality")
    assert stage["status"] == "done" and stage["details"]["subnets"] == 3
    taus = {k: v for k, v in stage["details"].items() if k.startswith("tau[")}
    assert {"tau[macs]", "tau[params]"} <= set(taus), taus
    assert all(v is None or -1.0 <= v <= 1.0 for v in taus.values())
    files = sorted(p.name for p in (tmp_path / "quality").iterdir())
    assert any(f.endswith(".png") for f in files) and any(f.endswith(".json") for f in files), files
    assert "Kendall tau" in proc.stdout
