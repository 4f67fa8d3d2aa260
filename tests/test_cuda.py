"""Training, search and the CLI on a torch device (issue 12 item 5: ``--device cuda``). Every test runs on the CPU
too, so its own logic is exercised on every machine; the ``cuda`` cases run wherever a GPU is present and skip
elsewhere. Checked: the super-network, its quantizers and the teacher live on the device after ``fit``; resuming
and loading an artifact put it back there; search measures subnets there; the CLI's ``train --device`` writes an
artifact that loads on the CPU; an unusable device is one clear error before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from test_training_support import (
    ROOT,
    digits,
    one_thread,  # noqa: F401 (autouse fixture: one intra-op thread)
    tiny_net,
    training_config,
)

from nncf_bootstrapnas import load_supernet, search
from nncf_bootstrapnas.evaluation import top1_accuracy
from nncf_bootstrapnas.training import TrainingData, fit, save_supernet

HAS_CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device here"))]
STAGES = [
    {"train_dims": ["kernel", "width"], "epochs": 1, "width_indicator": 3, "reorg_weights": True, "bn_adapt": True},
    {"train_dims": ["kernel", "width", "depth"], "epochs": 1, "width_indicator": 3, "depth_indicator": 2},
]


def _config() -> dict:
    kd = {"algorithm": "knowledge_distillation", "type": "softmax", "temperature": 2.0}
    quant = {"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 16}}}
    config = training_config(STAGES, sampling={"strategy": "sandwich", "num_random": 1}, compression=[kd])
    return {**config, "compression": [quant]}


def _devices(module: torch.nn.Module) -> set[str]:
    return {t.device.type for t in [*module.parameters(), *module.buffers()]}


@pytest.mark.parametrize("device", DEVICES)
def test_fit_resume_load_and_search_stay_on_the_device(device, tmp_path):
    train, val = digits(n_train=32, n_val=16)
    data = TrainingData(train, val, bn=train)
    result = fit(tiny_net(channels=8).to(device), data, _config(), checkpoint_dir=tmp_path, progress=False)
    assert _devices(result.supernet) == {device}
    assert result.history and all(0.0 <= h["val_acc"] <= 100.0 for h in result.history if "val_acc" in h)

    again = fit(tiny_net(channels=8).to(device), data, _config(), checkpoint_dir=tmp_path, resume=True, progress=False)
    assert again.resumed_from is not None and _devices(again.supernet) == {device}

    path = save_supernet(tmp_path / "supernet.pth", result.supernet)
    on_device = load_supernet(path, tiny_net(channels=8), device=device)
    on_cpu = load_supernet(path, tiny_net(channels=8))
    assert _devices(on_device) == {device} and _devices(on_cpu) == {"cpu"}
    x = next(iter(val))[0]
    torch.testing.assert_close(on_device(x.to(device)).cpu(), on_cpu(x), rtol=1e-3, atol=1e-3)

    res = search(on_device, None, top1_accuracy, val, train, algorithm="random", num_evals=4, population=2, seed=0,
                 progress=False)  # fmt: skip
    assert len(res.rows) == 4 and all(0.0 <= r["values"]["accuracy"] <= 100.0 for r in res.rows)
    assert _devices(on_device) == {device}


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    cmd = [sys.executable, "-m", "nncf_bootstrapnas.cli.main", *args, "--no-progress"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)


TINY_TRAIN = {
    "model": "resnet18", "dataset": "digits", "num_classes": 10, "batch_size": 32, "epochs": 1,
    "input_info": {"sample_size": [1, 3, 32, 32]},
    "bootstrapNAS": {"training": {
        "schedule": {"list_stage_descriptions": [
            {"train_dims": ["kernel", "width", "depth"], "epochs": 1, "width_indicator": 2, "init_lr": 0.005}]},
        "elasticity": {"width": {"min_width": 8, "width_multipliers": [1.0, 0.5]}},
        "sampling": {"strategy": "sandwich", "num_random": 0},
        "batchnorm_adaptation": {"num_bn_adaptation_samples": 32},
        "train_steps": 2,
    }},
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_cli_train_on_the_device_writes_an_artifact_that_loads_on_the_cpu(device, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_TRAIN))
    out = tmp_path / "train"
    proc = _cli("train", "--config", str(config), "--output-dir", str(out), "--small", "--train-subset", "64",
                "--device", device)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    supernet = load_supernet(out / "checkpoints" / "supernet.pth")
    assert _devices(supernet) == {"cpu"}
    assert supernet(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.skipif(HAS_CUDA, reason="needs a machine without CUDA")
def test_cli_rejects_an_unusable_device_before_any_work(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_TRAIN))
    proc = _cli("train", "--config", str(config), "--output-dir", str(tmp_path / "out"), "--device", "cuda")
    assert proc.returncode != 0
    assert "--device cuda is not usable here" in proc.stderr + proc.stdout
    assert not (tmp_path / "out" / "checkpoints").exists()
