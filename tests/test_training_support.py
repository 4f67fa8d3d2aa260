"""Shared helpers of the training tests (no tests here): a tiny CNN for the real super-network, a test double of the
super-network contract (a 2-layer MLP whose hidden width is really sliced), data, and a script runner for subprocesses.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nncf_bootstrapnas.elasticity.search_space import SearchSpace, Variable

ROOT = Path(__file__).resolve().parents[1]
ELASTICITY = {"width": {"min_width": 4, "width_step": 4}, "depth": {"min_block_size": 2}}


@pytest.fixture(autouse=True)
def one_thread():
    """The training tests use tiny models: one intra-op thread is faster and immune to oversubscription on a
    shared machine (import this fixture into a test module to apply it there)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- a small real model for create_supernet ------------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self, c: int, bn: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=not bn)
        self.bn1 = nn.BatchNorm2d(c) if bn else nn.Identity()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=not bn)
        self.bn2 = nn.BatchNorm2d(c) if bn else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class TinyNet(nn.Module):
    """Elastic kernel (5x5 stem), width (3 groups) and depth (a 2-block stage) on 1x8x8 digits."""

    def __init__(self, channels: int = 16, num_classes: int = 10, bn: bool = True, dropout: float = 0.1) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels, 5, padding=2, bias=not bn),
            nn.BatchNorm2d(channels) if bn else nn.Identity(),
            nn.ReLU(),
        )
        self.layer1 = nn.Sequential(Block(channels, bn), Block(channels, bn))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(torch.flatten(self.pool(self.layer1(self.stem(x))), 1)))


def tiny_net(seed: int = 0, **kwargs: Any) -> TinyNet:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return TinyNet(**kwargs)


def training_config(stages: list[dict[str, Any]] | None = None, **training: Any) -> dict[str, Any]:
    """A config for TinyNet with a short schedule (1 epoch per stage by default)."""
    stages = stages or [
        {"train_dims": ["kernel"], "epochs": 1},
        {"train_dims": ["kernel", "width"], "epochs": 1, "width_indicator": 3, "reorg_weights": True, "bn_adapt": True},
        {"train_dims": ["kernel", "width", "depth"], "epochs": 1, "width_indicator": 4, "depth_indicator": 2},
    ]
    section = {
        "elasticity": copy.deepcopy(ELASTICITY),
        "progressivity_of_elasticity": ["kernel", "width", "depth"],
        "schedule": {"list_stage_descriptions": stages},
        "lr_schedule": {"params": {"base_lr": 0.05, "warmup_epochs": 1, "warmup_lr": 0.01}},
        "batchnorm_adaptation": {"num_bn_adaptation_samples": 64},
    }
    section.update(training)
    return {"input_info": {"sample_size": [1, 1, 8, 8]}, "bootstrapNAS": {"training": section}}


def digits(n_train: int = 128, n_val: int = 64, batch: int = 16, shuffle: bool = True) -> tuple[DataLoader, DataLoader]:
    from nncf_bootstrapnas.data import DigitsDataModule

    dm = DigitsDataModule(image_size=8, channels=1, seed=0, batch_size=batch)
    return dm.subset_loader(n_train, "train", shuffle=shuffle), dm.subset_loader(n_val, "val")


# ---- a test double of the super-network contract -------------------------------------------------------------------
class FakeSupernet(nn.Module):
    """MLP ``in -> hidden -> [blocks] -> classes`` with elastic hidden width and skippable trailing blocks.

    Implements the SuperNetwork contract the training package relies on (activate, active_config, search_space,
    set_stage, stage_space, reorganize_weights, macs, params, extract, get_state, example_input). Calls of set_stage and
    reorganize_weights are recorded in ``calls``.
    """

    def __init__(
        self, n_in: int = 8, hidden: int = 16, n_out: int = 4, blocks: int = 2, bn: bool = True, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc1 = nn.Linear(n_in, hidden)
        self.bn = nn.BatchNorm1d(hidden) if bn else None
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(blocks))
        self.fc2 = nn.Linear(hidden, n_out)
        widths = (hidden, hidden * 3 // 4, hidden // 2, hidden // 4)
        self.search_space = SearchSpace(
            [Variable("width", "hidden", widths), Variable("depth", "blocks", tuple(range(blocks + 1)))]
        )
        self.stage_space = self.search_space
        self.example_input = (torch.zeros(1, n_in),)
        self.calls: list[tuple[Any, ...]] = []
        self._active = self.search_space.maximum()

    def activate(self, cfg: dict[str, Any] | None) -> None:
        self._active = self.search_space.validate(cfg)

    @property
    def active_config(self) -> dict[str, Any]:
        return copy.deepcopy(self._active)

    def set_stage(self, dims: list[str], width_indicator: int | None, depth_indicator: int | None) -> None:
        self.calls.append(("set_stage", list(dims), width_indicator, depth_indicator))
        self.stage_space = self.search_space.restrict(dims, width_indicator, depth_indicator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self._active["width"]["hidden"]
        h = F.linear(x, self.fc1.weight[:w], self.fc1.bias[:w])
        if self.bn is not None:
            bn, factor = self.bn, self.bn.momentum
            if bn.training:  # like nn.BatchNorm: momentum None = cumulative average
                bn.num_batches_tracked.add_(1)
                factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
            h = F.batch_norm(h, bn.running_mean[:w], bn.running_var[:w], bn.weight[:w], bn.bias[:w],
                             bn.training, factor or 0.0)  # fmt: skip
        h = self.drop(torch.relu(h))
        for block in self.blocks[: len(self.blocks) - self._active["depth"]["blocks"]]:
            h = torch.relu(h + F.linear(h, block.weight[:w, :w], block.bias[:w]))
        return F.linear(h, self.fc2.weight[:, :w], self.fc2.bias)

    @torch.no_grad()
    def reorganize_weights(self, importance: str = "L1") -> None:
        self.calls.append(("reorganize_weights", importance))
        order = torch.argsort(self.fc1.weight.abs().sum(1), descending=True)
        self.fc1.weight.copy_(self.fc1.weight[order])
        self.fc1.bias.copy_(self.fc1.bias[order])
        if self.bn is not None:
            for t in (self.bn.weight, self.bn.bias, self.bn.running_mean, self.bn.running_var):
                t.copy_(t[order])
        for block in self.blocks:
            block.weight.copy_(block.weight[order][:, order])
            block.bias.copy_(block.bias[order])
        self.fc2.weight.copy_(self.fc2.weight[:, order])

    def macs(self, cfg: dict[str, Any] | None = None) -> int:
        cfg = self.search_space.validate(cfg if cfg is not None else self._active)
        w, skipped = cfg["width"]["hidden"], cfg["depth"]["blocks"]
        return self.fc1.in_features * w + (len(self.blocks) - skipped) * w * w + w * self.fc2.out_features

    def params(self, cfg: dict[str, Any] | None = None) -> int:
        cfg = self.search_space.validate(cfg if cfg is not None else self._active)
        w, skipped = cfg["width"]["hidden"], cfg["depth"]["blocks"]
        return (
            (self.fc1.in_features + 1) * w
            + (len(self.blocks) - skipped) * (w + 1) * w
            + (w + 1) * self.fc2.out_features
        )

    def get_state(self) -> dict[str, Any]:
        return {"search_space": self.search_space.to_json(), "active_config": self.active_config}


def fake_loaders(
    n: int = 64, batch: int = 8, n_in: int = 8, n_out: int = 4, seed: int = 0
) -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=g)
    y = (x[:, :n_out].argmax(1) + (x[:, -1] > 1).long()) % n_out
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(seed)), DataLoader(
        data, batch_size=batch
    )


def fake_config(**training: Any) -> dict[str, Any]:
    section = {
        "elasticity": {"available_elasticity_dims": ["width", "depth"]},
        "progressivity_of_elasticity": ["width", "depth"],
        "schedule": {
            "list_stage_descriptions": [
                {"train_dims": ["width"], "epochs": 1, "width_indicator": 4},
                {"train_dims": ["width", "depth"], "epochs": 1, "width_indicator": 4, "depth_indicator": 3},
            ]
        },
        "lr_schedule": {"params": {"base_lr": 0.1}},
        "batchnorm_adaptation": {"num_bn_adaptation_samples": 32},
    }
    section.update(training)
    return {"bootstrapNAS": {"training": section}}


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_states_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if a[k].is_floating_point():
            assert torch.allclose(a[k], b[k], atol=atol, rtol=0), f"{k}: max diff {(a[k] - b[k]).abs().max()}"
        else:
            assert torch.equal(a[k], b[k]), k


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def run_script(code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.Popen:
    """Start ``python -c code args`` with the repository and tests on the path."""
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]), OMP_NUM_THREADS="1")
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


# ---- legacy callbacks (NNCF 2.x signatures) --------------------------------------------------------------------------
def legacy_train_epoch(loader: Any, model: nn.Module, compression_ctrl: Any, epoch: int, optimizer: Any) -> None:
    """A legacy ``train_epoch_fn``: one subnet per step, chosen by ``scheduler.step()``."""
    model.train()
    for x, y in loader:
        compression_ctrl.scheduler.step()
        loss = F.cross_entropy(model(x), y) + compression_ctrl.loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def top1(model: nn.Module, loader: Any) -> tuple[float, float, float]:
    """A legacy ``val_fn``: (top-1 %, top-5 %, loss); only top-1 is computed."""
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return 100.0 * correct / total, 100.0, 0.0
