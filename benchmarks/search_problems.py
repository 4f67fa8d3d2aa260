"""Search problems of ``benchmarks/search_efficiency.py``: (supernet, validate_fn, val_loader, bn_loader).

``AnalyticSupernet`` is a torch-free stand-in (seconds per benchmark); the digits and Fashion-MNIST problems are
trained supernets measured on a fixed validation set after BN recalibration, as the search does.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

Problem = tuple[Any, Callable[[Any, Any], float], Any, Any]  # (supernet, validate_fn, val_loader, bn_loader)


class AnalyticSupernet:
    """A deterministic stand-in supernet: 12 variables, ~5e6 subnets, accuracy with diminishing returns + interactions.

    Accuracy is a smooth function of the per-variable "capacity" with a few pairwise interactions and a mild
    oscillation, so the front is neither linear nor trivially separable; MACs are exact and cheap as in the real case.
    Options that make it look like a trained supernet measured on N validation images (the regime where LINAS
    plateaued on digits): ``conditional`` (depth index d of stage s skips its last d of blocks 2s, 2s+1, whose widths
    then do nothing, as elastic depth does), ``noise`` (points, std: a fixed per-subnet offset no smooth predictor
    can fit) and ``quantum`` (accuracy in steps of 100/N points).
    """

    def __init__(self, seed: int = 1234, noise: float = 0.0, quantum: float = 0.0, conditional: bool = False) -> None:
        from nncf_bootstrapnas.elasticity.search_space import SearchSpace, Variable

        variables = [Variable("width", f"block{i}", (64, 48, 40, 32, 16)) for i in range(6)]
        variables += [Variable("kernel", f"conv{i}", (7, 5, 3)) for i in range(3)]
        variables += [Variable("depth", f"stage{i}", (0, 1, 2)) for i in range(3)]
        self.search_space = SearchSpace(variables)
        rng = np.random.default_rng(seed)
        n = len(variables)
        self.cost = rng.uniform(0.3, 2.0, n)
        self.value = rng.uniform(0.1, 1.2, n)
        self.power = rng.uniform(0.7, 2.5, n)
        self.pairs = [
            (int(a), int(b), float(w))
            for a, b, w in zip(rng.integers(0, n, 6), rng.integers(0, n, 6), rng.uniform(0.2, 0.8, 6))
        ]
        self.active_config = self.search_space.maximum()
        self.seed, self.noise, self.quantum, self.conditional = seed, float(noise), float(quantum), bool(conditional)

    def _x(self, cfg: dict | None) -> np.ndarray:
        """The encoding, with the widths of skipped blocks at choice 0 (``conditional``): one subnet, one key."""
        x = self.search_space.encode(cfg if cfg is not None else self.active_config).astype(int)
        if self.conditional:
            for s, d in enumerate(x[9:12]):
                x[2 * s + 2 - int(d) : 2 * s + 2] = 0
        return x

    def _f(self, cfg: dict | None) -> np.ndarray:
        x = self._x(cfg)
        f = x / np.maximum(self.search_space.upper_bounds, 1)
        if self.conditional:  # a skipped block counts as fully reduced
            for s, d in enumerate(x[9:12]):
                f[2 * s + 2 - int(d) : 2 * s + 2] = 1.0
        return f

    def activate(self, cfg: dict | None) -> None:
        self.active_config = self.search_space.validate(cfg)

    def macs(self, cfg: dict | None = None) -> int:
        return int(1e6 * (3.0 + 10.0 * float(np.sum(self.cost * (1.0 - self._f(cfg)) ** 1.7))))

    def params(self, cfg: dict | None = None) -> int:
        return int(1e4 * (1.0 + float(np.sum(self.cost[::-1] * (1.0 - self._f(cfg))))))

    def accuracy(self, cfg: dict | None = None) -> float:
        f = self._f(cfg)
        loss = float(np.sum(self.value * f**self.power)) + sum(w * f[a] * f[b] for a, b, w in self.pairs)
        acc = 92.0 - 3.0 * loss + 0.4 * math.sin(2.5 * float(np.sum(f)))
        if self.noise:
            acc += self.noise * float(np.random.default_rng([self.seed, *map(int, self._x(cfg))]).standard_normal())
        return round(acc / self.quantum) * self.quantum if self.quantum else acc

    def extract(self, cfg: dict | None = None) -> dict:
        return {"config": self.search_space.validate(cfg)}

    def get_state(self) -> dict:
        return {"kind": "analytic", "seed": self.seed, "noise": self.noise, "quantum": self.quantum,
                "conditional": self.conditional}  # fmt: skip


def analytic_validate(model: AnalyticSupernet, loader: Any) -> float:
    return model.accuracy(model.active_config)


def build_fake_problem(noise: float = 0.0, quantum: float = 0.0, conditional: bool = False) -> Problem:
    return AnalyticSupernet(noise=noise, quantum=quantum, conditional=conditional), analytic_validate, [None], None


def build_digits_problem(
    model_name: str = "resnet18", weights: str | None = None, eval_subset: int | None = None
) -> Problem:
    """A trained digits supernet: by default the small reference model pre-trained and sandwich-trained by
    ``benchmarks/generator_digits.py`` (cached in ``outputs/``, shared with the generator and quality benchmarks);
    with ``weights``, the full-size ``model_name`` made elastic with default options and those trained weights.
    """
    import torch

    from nncf_bootstrapnas.data import DigitsDataModule
    from nncf_bootstrapnas.elasticity import create_supernet
    from nncf_bootstrapnas.models import build_model

    if weights:
        dm = DigitsDataModule(image_size=32, channels=3, batch_size=128)
        model = build_model(model_name, num_classes=dm.num_classes)
        supernet = create_supernet(model, None, example_input=(torch.zeros(1, *dm.input_shape),))
        supernet.model.load_state_dict(torch.load(weights, map_location="cpu"))
    else:
        sys.path.insert(0, str(ROOT))  # run as a script: make ``benchmarks`` importable
        from benchmarks.generator_digits import build_digits_supernet

        supernet, dm, info = build_digits_supernet(model_name)
        print(f"supernet: {info}", flush=True)
    val = dm.subset_loader(eval_subset, "val") if eval_subset else dm.val_loader()
    return supernet, top1_accuracy, val, dm.train_loader(shuffle=False)


def build_fashion_problem(artifact: Path, eval_subset: int = 2000, data_root: str | None = None) -> Problem:
    """A supernet artifact (``save_supernet``) trained on Fashion-MNIST: accuracy on a fixed subset of ``eval_subset``
    validation images; BN recalibration (as in the search) on training images in a fixed order."""
    import torch

    from nncf_bootstrapnas import load_supernet
    from nncf_bootstrapnas.data import FashionMNISTDataModule

    supernet = load_supernet(artifact)
    convs = [m for m in supernet.modules() if isinstance(m, torch.nn.Conv2d)]
    channels = convs[0].in_channels if convs else 1
    example = getattr(supernet, "example_input", None)
    size = int(example[0].shape[-1]) if isinstance(example, (tuple, list)) and hasattr(example[0], "shape") else 28
    dm = FashionMNISTDataModule(data_root, image_size=size, channels=channels, batch_size=256, seed=0)
    print(f"supernet: {artifact} ({supernet.search_space!r}), {dm.describe()}", flush=True)
    return supernet, top1_accuracy, dm.subset_loader(eval_subset, "val"), dm.bn_loader()


def top1_accuracy(model: Any, loader: Any) -> float:
    import torch

    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return 100.0 * correct / max(total, 1)
