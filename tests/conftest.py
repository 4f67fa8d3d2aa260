"""Shared fixtures. Keep this file small: fixtures used by one test module belong in that module."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `examples` is a top-level package of the repository, not installed
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module (small models: thread start-up costs more than it saves)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def digits_module():
    """The default digits data module (32x32, 3 channels, seed 0), built once per session (~1 s)."""
    from nncf_bootstrapnas.data import DigitsDataModule

    return DigitsDataModule(image_size=32, channels=3, seed=0, batch_size=32)


@pytest.fixture(scope="session")
def digits_loaders(digits_module):
    """Small, fast ``(train, val)`` loaders: fixed subsets of 320 training and 160 validation samples, batch 32.

    The training loader shuffles (reproducibly); the validation loader does not.
    """
    return (
        digits_module.subset_loader(320, split="train", shuffle=True),
        digits_module.subset_loader(160, split="val"),
    )


@pytest.fixture
def reference_model() -> Callable[..., nn.Module]:
    """Factory ``reference_model(name, small=True, num_classes=10, seed=0, **kwargs) -> nn.Module``.

    Weights are initialised under ``torch.manual_seed(seed)`` so they are identical across calls; the model is
    returned in eval mode. Pair it with ``examples.models.example_input(name, batch)``.
    """
    from examples.models import build_model

    def make(name: str, small: bool = True, num_classes: int = 10, seed: int = 0, **kwargs) -> nn.Module:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = build_model(name, num_classes=num_classes, small=small, **kwargs)
        return model.eval()

    return make
