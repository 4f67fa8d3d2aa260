"""Torch test doubles for the search tests: a tiny real supernet on digits, a real validate_fn, BN adaptation.

``TinySupernet`` follows the SuperNetwork contract of docs/design.md; the analytic, torch-free ``FakeSupernet`` lives
in ``test_search_fakes.py``.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import torch
from torch import nn

from nncf_bootstrapnas.elasticity.search_space import SearchSpace, Variable

# ---- a tiny real supernet -------------------------------------------------------------------------------------------
WIDTHS = (32, 24, 16, 8)


class TinySupernet(nn.Module):
    """MLP 64 -> h1 -> h2 -> 10 with BatchNorm; widths are prefixes of the hidden layers (OFA style)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(64, WIDTHS[0]), nn.BatchNorm1d(WIDTHS[0])
        self.fc2, self.bn2 = nn.Linear(WIDTHS[0], WIDTHS[0]), nn.BatchNorm1d(WIDTHS[0])
        self.head = nn.Linear(WIDTHS[0], 10)
        self.search_space = SearchSpace([Variable("width", "fc1", WIDTHS), Variable("width", "fc2", WIDTHS)])
        self.active_config = self.search_space.maximum()
        self.example_input = (torch.zeros(1, 1, 8, 8),)

    def activate(self, cfg: dict | None) -> None:
        self.active_config = self.search_space.validate(cfg)

    def _widths(self, cfg: dict | None) -> tuple[int, int]:
        w = (cfg or self.active_config)["width"]
        return w["fc1"], w["fc2"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w1, w2 = self._widths(None)
        h = x.flatten(1)
        h = torch.relu(self._bn(self.bn1, nn.functional.linear(h, self.fc1.weight[:w1], self.fc1.bias[:w1]), w1))
        h = torch.relu(self._bn(self.bn2, nn.functional.linear(h, self.fc2.weight[:w2, :w1], self.fc2.bias[:w2]), w2))
        return nn.functional.linear(h, self.head.weight[:, :w2], self.head.bias)

    @staticmethod
    def _bn(bn: nn.BatchNorm1d, h: torch.Tensor, w: int) -> torch.Tensor:
        mean, var = bn.running_mean[:w], bn.running_var[:w]
        use_batch = bn.training
        if use_batch:
            with torch.no_grad():  # like nn.BatchNorm1d, restricted to the active prefix
                bn.num_batches_tracked += 1
                m = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
                bn.running_mean[:w] = (1 - m) * mean + m * h.mean(0)
                bn.running_var[:w] = (1 - m) * var + m * h.var(0)
        mu, sigma2 = (h.mean(0), h.var(0, unbiased=False)) if use_batch else (mean, var)
        return (h - mu) / torch.sqrt(sigma2 + bn.eps) * bn.weight[:w] + bn.bias[:w]

    def macs(self, cfg: dict | None = None) -> int:
        w1, w2 = self._widths(cfg)
        return 64 * w1 + w1 * w2 + w2 * 10

    def params(self, cfg: dict | None = None) -> int:
        w1, w2 = self._widths(cfg)
        return (64 + 1) * w1 + 2 * w1 + (w1 + 1) * w2 + 2 * w2 + (w2 + 1) * 10

    def extract(self, cfg: dict | None = None) -> nn.Module:
        w1, w2 = self._widths(cfg)
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, w1), nn.BatchNorm1d(w1), nn.ReLU(), nn.Linear(w1, w2),
                            nn.BatchNorm1d(w2), nn.ReLU(), nn.Linear(w2, 10))  # fmt: skip
        with torch.no_grad():
            for dst, src, rows, cols in (
                (net[1], self.fc1, w1, 64),
                (net[4], self.fc2, w2, w1),
                (net[7], self.head, 10, w2),
            ):
                dst.weight.copy_(src.weight[:rows, :cols])
                dst.bias.copy_(src.bias[:rows])
            for dst, src, w in ((net[2], self.bn1, w1), (net[5], self.bn2, w2)):
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(dst, name).copy_(getattr(src, name)[:w])
        return net.eval()

    def get_state(self) -> dict:
        return {"kind": "tiny", "space": self.search_space.to_json()}


def digits_data():
    from nncf_bootstrapnas.data import DigitsDataModule

    return DigitsDataModule(image_size=8, channels=1, batch_size=128, seed=0)


def train_tiny(model: TinySupernet, loader, epochs: int = 6) -> TinySupernet:
    """Sandwich-rule training (max, min, one random width per step) so that every subnet is usable."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    space, rng = model.search_space, np.random.default_rng(0)
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            for cfg in (space.maximum(), space.minimum(), space.sample(rng)):
                model.activate(cfg)
                nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    model.activate(None)
    torch.set_num_threads(threads)
    return model.eval()


def top1(model: nn.Module, loader) -> float:
    """A real validate_fn: top-1 accuracy in percent."""
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return 100.0 * correct / total


def reset_and_adapt_bn(model: nn.Module, loader, num_samples: int) -> None:
    """BN adaptation double: forward ``num_samples`` training samples in train mode with fresh statistics."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
    model.train()
    seen = 0
    with torch.no_grad():
        for x, _ in loader:
            model(x)
            seen += len(x)
            if seen >= num_samples:
                break
    model.eval()


@pytest.fixture
def one_torch_thread():
    """The CI box is shared and small: one intra-op thread avoids oversubscription stalls in tiny models."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.lru_cache(maxsize=1)
def _trained_tiny() -> tuple[TinySupernet, object]:
    dm = digits_data()
    return train_tiny(TinySupernet(), dm.train_loader(batch_size=128), epochs=3), dm


@pytest.fixture
def tiny_supernet_and_data():
    """The trained tiny supernet (built once per process, shared by every module that imports this fixture)."""
    model, dm = _trained_tiny()
    state = copy.deepcopy(model.state_dict())
    yield model, dm
    model.load_state_dict(state)  # a test that changes weights or BN statistics cannot leak into the next
    model.activate(None)


# ---- sanity of the double itself -------------------------------------------------------------------------------------
def test_tiny_supernet_extract_matches_supernet(tiny_supernet_and_data):
    model, dm = tiny_supernet_and_data
    x, _ = dm.tensors("val")
    cfg = {"width": {"fc1": 16, "fc2": 8}}
    model.activate(cfg)
    expected = model(x[:32])
    model.activate(None)
    sub = copy.deepcopy(model).extract(cfg)
    torch.testing.assert_close(sub(x[:32]), expected)
    assert top1(model, dm.val_loader()) > 80.0
