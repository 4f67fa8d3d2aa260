"""Reference models: the demo's models and the test suite's architectures for the super-network generator.

Written from scratch (no torchvision) with torchvision-like structure and module names, sized for 32x32 inputs::

    model = build_model("resnet18", num_classes=10, small=True)   # small=True: fast variant for tests
    x = example_input("resnet18", batch=2)                        # (2, 3, 32, 32); "tcn" gives (2, 1, 64)
    dm = DigitsDataModule(**data_kwargs("tcn"))                   # the matching digits layout/target
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.models.densenet import densenet
from nncf_bootstrapnas.models.efficientnet import efficientnet_b0
from nncf_bootstrapnas.models.mobilenet_v2 import mobilenet_v2
from nncf_bootstrapnas.models.mobilenet_v3 import mobilenet_v3
from nncf_bootstrapnas.models.resnet import resnet18, resnet50
from nncf_bootstrapnas.models.tcn import tcn
from nncf_bootstrapnas.models.transformer import transformer
from nncf_bootstrapnas.models.unet import unet
from nncf_bootstrapnas.models.vgg import vgg11_bn

MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3": mobilenet_v3,
    "efficientnet_b0": efficientnet_b0,
    "vgg11_bn": vgg11_bn,
    "densenet": densenet,
    "unet": unet,
    "tcn": tcn,
    "transformer": transformer,
}

# Keyword arguments of the small variants (small=True): a forward of a batch of 32 takes ~5-25 ms on one CPU thread.
SMALL_KWARGS: dict[str, dict[str, Any]] = {
    "resnet18": {"width": 0.125},
    "resnet50": {"width": 0.125, "layers": (1, 2, 2, 1)},
    "mobilenet_v2": {"width_mult": 0.25, "stem_stride": 2, "last_channel": 256},
    "mobilenet_v3": {"width_mult": 0.5},
    "efficientnet_b0": {"width_mult": 0.25, "depth_mult": 0.5, "stem_stride": 2},
    "vgg11_bn": {"width": 0.125, "hidden": 64},
    "densenet": {"growth_rate": 8, "block_config": (2, 2, 2), "num_init_features": 16, "bn_size": 2},
    "unet": {"base_channels": 8},
    "tcn": {"channels": (16, 16, 16)},
    "transformer": {"dim": 64, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0},
}

_IMAGE = (3, 32, 32)
INPUT_SHAPES: dict[str, tuple[int, ...]] = {name: _IMAGE for name in MODELS}
INPUT_SHAPES["tcn"] = (1, 64)  # 8x8 digit raster-scanned into 64 steps of 1 channel

# DigitsDataModule arguments giving each model's input layout and target.
_DATA_KWARGS: dict[str, dict[str, Any]] = {
    "tcn": {"image_size": 8, "channels": 1, "layout": "sequence"},
    "unet": {"image_size": 32, "channels": 3, "target": "segmentation"},
}


def _check(name: str) -> None:
    if name not in MODELS:
        raise KeyError(f"unknown model '{name}'; available: {', '.join(sorted(MODELS))}")


def build_model(name: str, num_classes: int = 10, small: bool = False, **kwargs: Any) -> nn.Module:
    """Build a reference model; ``small`` selects the fast test variant, ``kwargs`` override either."""
    _check(name)
    merged = {**(SMALL_KWARGS[name] if small else {}), **kwargs}
    return MODELS[name](num_classes=num_classes, **merged)


def input_shape(name: str) -> tuple[int, ...]:
    """Shape of one input sample (no batch dimension)."""
    _check(name)
    return INPUT_SHAPES[name]


def example_input(name: str, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """A reproducible random input of the right shape for ``name``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *input_shape(name), generator=generator)


def data_kwargs(name: str) -> dict[str, Any]:
    """``DigitsDataModule`` keyword arguments matching the model's input layout (and target, for the UNet)."""
    _check(name)
    return dict(_DATA_KWARGS.get(name, {"image_size": 32, "channels": 3}))


from nncf_bootstrapnas.models.pretrain import load_pretrained, pretrain, save_pretrained  # noqa: E402
from nncf_bootstrapnas.models.ref import ModelError, ModelRef, resolve_model  # noqa: E402
from nncf_bootstrapnas.models.weights import load_weights  # noqa: E402

__all__ = [
    "INPUT_SHAPES",
    "MODELS",
    "SMALL_KWARGS",
    "ModelError",
    "ModelRef",
    "build_model",
    "data_kwargs",
    "example_input",
    "input_shape",
    "load_pretrained",
    "load_weights",
    "pretrain",
    "resolve_model",
    "save_pretrained",
]
