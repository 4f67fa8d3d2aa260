"""Plain supervised pre-training of a model on labelled batches: the "pre-trained model" BootstrapNAS starts from.

The CLI pre-trains here when it is given no weights; ``examples/pretrain.py`` is the same as a stand-alone script.
Pre-trained weights are a plain ``state_dict`` with a JSON sidecar (``model.pth`` + ``model.json``: the model's
reference name, its keyword arguments and the validation accuracy) that :func:`load_pretrained` rebuilds the model from.
The UNet trains on per-pixel targets (each stroke pixel carries the digit's label, background pixels are ignored), so
its "accuracy" is the accuracy over stroke pixels.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nncf_bootstrapnas.data import IGNORE_INDEX
from nncf_bootstrapnas.models import build_model
from nncf_bootstrapnas.utils.io import atomic_write, atomic_write_text
from nncf_bootstrapnas.utils.progress import progress as progress_bars

# Name of each reference model's width-multiplier argument (the example script's --width).
WIDTH_ARG = {
    "resnet18": "width",
    "resnet50": "width",
    "vgg11_bn": "width",
    "mobilenet_v2": "width_mult",
    "mobilenet_v3": "width_mult",
    "efficientnet_b0": "width_mult",
}
DEFAULT_LR = {"sgd": 0.05, "adamw": 2e-3}


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {name!r}")


def pretrain(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable,
    epochs: int = 5,
    lr: float | None = None,
    seed: int = 0,
    optimizer: str = "adamw",
    weight_decay: float | None = None,
    progress: bool = False,
) -> tuple[nn.Module, float]:
    """Train with cross-entropy and a per-step cosine schedule on the model's device; return the model (eval mode)
    and its validation top-1 accuracy (%).

    AdamW (lr 2e-3, weight decay 0.05) by default: on tiny budgets (one epoch of a few hundred samples) it is far more
    reliable than SGD, whose BatchNorm running statistics often lag the weights and collapse eval accuracy to chance.
    ``seed`` fixes dropout/stochastic-depth randomness; the order of batches is the loader's (seeded) business.
    """
    from nncf_bootstrapnas.evaluation import top1_accuracy

    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if optimizer not in DEFAULT_LR:
        raise ValueError(f"optimizer must be one of {sorted(DEFAULT_LR)}, got {optimizer!r}")
    torch.manual_seed(seed)
    lr = DEFAULT_LR[optimizer] if lr is None else lr
    weight_decay = (5e-4 if optimizer == "sgd" else 0.05) if weight_decay is None else weight_decay
    opt = make_optimizer(model, optimizer, float(lr), weight_decay)
    total_steps = max(1, epochs * len(train_loader))  # type: ignore[arg-type]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    )
    device = _device_of(model)
    with progress_bars(progress) as bars:
        bar = bars.add("pretrain", total=total_steps)
        for epoch in range(epochs):
            model.train()
            running, seen = 0.0, 0
            for images, targets in train_loader:
                images, targets = images.to(device), targets.to(device)
                loss = F.cross_entropy(model(images), targets, ignore_index=IGNORE_INDEX)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                scheduler.step()
                running += loss.item() * len(images)
                seen += len(images)
                bar.advance(info=f"epoch {epoch + 1}/{epochs} loss {running / seen:.3f}")
            if progress:
                acc = top1_accuracy(model, val_loader)
                bar.log(f"epoch {epoch + 1}/{epochs}: train loss {running / max(seen, 1):.4f}, val {acc:.2f}%")
    accuracy = top1_accuracy(model, val_loader)
    model.eval()
    return model, accuracy


def sidecar_path(weights: str | Path) -> Path:
    return Path(weights).with_suffix(".json")


def save_pretrained(model: nn.Module, path: str | Path, meta: Mapping[str, Any]) -> Path:
    """The ``state_dict`` at ``path`` and ``meta`` (JSON) beside it, both written atomically.

    ``meta`` must hold ``model`` (a reference-model name), ``model_kwargs`` and ``num_classes`` for
    :func:`load_pretrained`; anything else (accuracy, data, source) is kept for the record.
    """
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(path, lambda f: torch.save(state, f))
    atomic_write_text(sidecar_path(path), json.dumps(dict(meta), indent=2, default=str) + "\n")
    return path


def load_pretrained(path: str | Path) -> nn.Module:
    """Rebuild a reference model from the JSON sidecar of ``path`` and load its weights (eval mode, on the CPU)."""
    path = Path(path)
    meta = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    model = build_model(meta["model"], num_classes=meta["num_classes"], **meta["model_kwargs"])
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


__all__ = [
    "DEFAULT_LR",
    "WIDTH_ARG",
    "load_pretrained",
    "make_optimizer",
    "pretrain",
    "save_pretrained",
]
