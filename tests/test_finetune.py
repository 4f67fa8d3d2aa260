"""Stand-alone fine-tuning of a chosen subnet (``evaluation.finetune``): distillation from a teacher pulls the
student towards it, the teacher stays frozen, zero epochs change nothing. The CLI export stage that applies it
(``export.finetune_epochs``) is tested in test_cli_finetune.py."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from test_training_support import digits, one_thread, tiny_net  # noqa: F401 (autouse fixture)

from nncf_bootstrapnas.evaluation import finetune


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
