"""``search`` on an artifact saved by the API: the original's accuracy is read from the artifact's meta when ``train``
recorded it, else measured on the stored original (the reference of ``acc_delta``), else left to the search."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from nncf_bootstrapnas.cli.commands.search import original_accuracy
from nncf_bootstrapnas.cli.inputs import LoadedSupernet


class _Console:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def print(self, text: str) -> None:
        self.lines.append(text)


def _labelled_batches() -> list[list[torch.Tensor]]:
    x = torch.eye(4)
    return [[x, torch.tensor([0, 1, 2, 3])], [x, torch.tensor([0, 1, 0, 0])]]  # identity model: 6 of 8 right


def test_recorded_accuracy_wins_and_missing_original_leaves_it_to_the_search():
    session = SimpleNamespace(console=_Console())
    data = SimpleNamespace(val=_labelled_batches())
    recorded = LoadedSupernet(None, torch.nn.Identity(), {"original_fp32_accuracy": 91.5})
    assert original_accuracy(session, recorded, data) == 91.5
    assert original_accuracy(session, LoadedSupernet(None, None, {}), data) is None
    assert session.console.lines == []  # nothing was measured


def test_stored_original_is_measured_on_the_validation_split():
    session = SimpleNamespace(console=_Console())
    data = SimpleNamespace(val=_labelled_batches())
    assert original_accuracy(session, LoadedSupernet(None, torch.nn.Identity(), {}), data) == 75.0
    (line,) = session.console.lines
    assert "75.00%" in line and "measured now" in line
