"""Stand-alone fine-tuning of a chosen subnet (``evaluation.finetune``) and the CLI export stage that applies it
(``export.finetune_epochs``): distillation from a teacher pulls the student towards it, the original is never touched,
and the exported subnet rows say what was done."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from test_training_support import digits, one_thread, tiny_net  # noqa: F401 (autouse fixture)

from nncf_bootstrapnas.config import load_config
from nncf_bootstrapnas.evaluation import finetune, top1_accuracy


def _kl(student: torch.nn.Module, teacher: torch.nn.Module, loader) -> float:  # noqa: ANN001
    with torch.no_grad():
        total = 0.0
        for x, _ in loader:
            log_p, log_q = F.log_softmax(student(x), 1), F.log_softmax(teacher(x), 1)
            total += float((log_q.exp() * (log_q - log_p)).sum(1).mean())
    return total


@pytest.fixture(scope="module")
def teacher_and_data():
    train, val = digits(n_train=128, n_val=64)
    teacher = finetune(tiny_net(seed=1, channels=8, dropout=0.0), train, epochs=4, lr=5e-3, seed=1)
    return teacher, train, val


def test_distillation_pulls_the_student_towards_the_teacher(teacher_and_data):
    teacher, train, val = teacher_and_data
    before = copy.deepcopy(teacher.state_dict())
    plain = finetune(tiny_net(seed=2, channels=8, dropout=0.0), train, epochs=2, lr=5e-3, seed=0)
    kd = finetune(tiny_net(seed=2, channels=8, dropout=0.0), train, epochs=2, lr=5e-3, seed=0, teacher=teacher,
                  temperature=2.0, progress=True)  # fmt: skip
    assert not kd.training and not plain.training
    assert _kl(kd, teacher, val) < _kl(plain, teacher, val)
    for name, tensor in teacher.state_dict().items():  # the teacher is frozen: not trained, not moved
        torch.testing.assert_close(tensor, before[name])


def test_zero_epochs_leave_the_weights_and_an_unlabelled_loader_is_an_error(teacher_and_data):
    teacher, train, _ = teacher_and_data
    model = tiny_net(seed=3, channels=8)
    before = copy.deepcopy(model.state_dict())
    finetune(model, train, epochs=0, teacher=teacher)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, before[name])
    with pytest.raises(ValueError, match="labelled batches"):
        finetune(model, [torch.zeros(4, 1, 8, 8)], epochs=1)


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
