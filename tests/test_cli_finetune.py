"""The CLI export stage's fine-tune of the chosen subnet (``export.finetune_epochs``): off by default, in place when
asked, distilled from the original, and the note its report rows carry (end to end: test_cli_run.py)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from test_training_support import digits, one_thread, tiny_net  # noqa: F401 (autouse fixture)

from nncf_bootstrapnas.config import load_config
from nncf_bootstrapnas.evaluation import finetune, top1_accuracy


@pytest.fixture(scope="module")
def teacher_and_data():
    train, val = digits(n_train=128, n_val=64)
    teacher = finetune(tiny_net(seed=1, channels=8, dropout=0.0), train, epochs=4, lr=5e-3, seed=1)
    return teacher, train, val


def _session(export: dict) -> SimpleNamespace:
    config = load_config({"export": export})
    return SimpleNamespace(config=config, seed=0, progress=False)


def test_the_export_stage_fine_tunes_the_subnet_only_when_asked(teacher_and_data):
    from nncf_bootstrapnas.cli.steps_deploy import specialise

    teacher, train, val = teacher_and_data
    data = SimpleNamespace(train=train, train_subset=None, module=SimpleNamespace(train_indices=range(128)))
    model = tiny_net(seed=4, channels=8)
    before = copy.deepcopy(model.state_dict())
    assert specialise(_session({}), model, data, teacher) is None  # the schema's default: 0 epochs
    assert all(torch.equal(t, before[n]) for n, t in model.state_dict().items())

    acc_before = top1_accuracy(model, val)
    note = specialise(_session({"finetune_epochs": 3, "finetune_lr": 5e-3}), model, data, teacher)
    assert note == "fine-tuned 3 epoch(s) on 128 training images before export (lr 0.005, distilled from the original)"
    assert not all(torch.equal(t, before[n]) for n, t in model.state_dict().items())
    assert top1_accuracy(model, val) > acc_before
    data.train_subset = 64
    assert "on 64 training images" in specialise(_session({"finetune_epochs": 1}), model, data, None)
