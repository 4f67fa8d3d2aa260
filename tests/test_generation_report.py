"""The generation report: every channel group, layer, block and kernel with its status and the precise reason."""

from __future__ import annotations

import json
import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nncf_bootstrapnas.elasticity import create_supernet

pytestmark = pytest.mark.usefixtures("one_thread")
OPTS = {"width": {"min_width": 1, "width_multipliers": [1.0, 0.5]}, "kernel": {}}


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 5, padding=2)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn(self.conv(x))


class Mixed(nn.Module):
    """One elastic group, one frozen by a channel shuffle, one residual block, one 5x5 kernel."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = Block()
        self.mix = nn.Conv2d(8, 8, 1)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mix(self.block(self.stem(x)))
        y = y.view(y.shape[0], 2, 4, *y.shape[2:]).transpose(1, 2).flatten(1, 2)  # shuffle: mix's group frozen
        return self.head(F.relu(y).mean((2, 3)))


class OneLayer(nn.Module):
    """Nothing to shrink: the only layer's output is the model's output."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_report_lists_groups_layers_blocks_and_kernels_with_reasons(tmp_path) -> None:
    sn = create_supernet(Mixed(), {**OPTS, "depth": {"min_block_size": 1}}, torch.randn(1, 3, 8, 8))
    report = sn.generation_report()
    groups = {g["name"]: g for g in report.groups}
    assert groups["stem"]["status"] == "elastic" and groups["stem"]["choices"] == [8, 4]
    assert set(groups["stem"]["producers"]) == {"stem", "block.conv"}
    mix = groups["mix"]
    assert (mix["status"], mix["reason"], mix["where"], mix["op"]) == (
        "frozen", "channels split by a reshape", "model", "flatten"
    )  # fmt: skip
    assert groups["head"]["reason"] == "reaches a model output"
    layers = {layer["name"]: layer for layer in report.layers}
    assert layers["block.bn"]["class"] == "BatchNorm2d" and layers["block.bn"]["kind"] == "norm"
    assert layers["mix"]["status"].startswith("frozen: ")
    assert {b["name"]: b["status"] for b in report.blocks}["block"] == "elastic"
    assert report.kernels == [{"name": "block.conv", "status": "elastic [5, 3] (padding)"}]
    assert report.variables == {"width": 1, "depth": 1, "kernel": 1}
    assert report.macs["max"] == sn.macs(sn.search_space.maximum()) > report.macs["min"]
    data = report.to_json()
    assert json.loads(json.dumps(data)) == data  # plain JSON
    assert data["top_frozen_reasons"][0]["groups"] >= 1
    text = report.to_markdown()
    assert "## Channel groups" in text and "| mix | 8 | frozen |" in text and "## Kernels" in text
    summary = report.summary()
    assert summary.splitlines()[0].startswith("generation: Mixed: variables kernel 1, width 1, depth 1")
    paths = report.save(tmp_path / "out")
    assert json.loads(paths["json"].read_text()) == data and paths["markdown"].read_text() == text
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"generation_report.json", "generation_report.md"}


def test_a_requested_dimension_without_variables_is_a_warning_with_reasons(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="nncf_bootstrapnas"):
        sn = create_supernet(OneLayer(), OPTS, torch.randn(1, 8, 4, 4))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    texts = [r.getMessage() for r in warnings]
    assert any("elastic width requested but no variable was found: reaches a model output" in t for t in texts)
    assert any(
        "elastic kernel requested but no variable was found: no convolution has a kernel >= 5" in t for t in texts
    )
    assert any("elastic depth requested but no variable was found: no residual block found" in t for t in texts)
    report = sn.generation_report()
    assert report.variables == {"width": 0, "depth": 0, "kernel": 0} and len(report.warnings) == 3
    assert "WARNING: elastic width requested" in report.summary()


def test_dimensions_not_requested_are_reported_as_such() -> None:
    options = {**OPTS, "available_elasticity_dims": ["depth"]}
    report = create_supernet(Mixed(), options, torch.randn(1, 3, 8, 8)).generation_report()
    assert {g["status"] for g in report.groups} == {"not requested"}
    assert report.kernels == [] and report.dims == ["depth"]
