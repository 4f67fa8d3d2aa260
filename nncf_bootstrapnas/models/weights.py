"""Loading a user's ``state_dict`` file into a model: strict, except a classifier the user asked to replace.

Why one place: ``--weights`` / ``--checkpoint`` of the CLI and the examples load weights the same way, and a mismatch
must be one error naming the keys. Transfer learning (ImageNet weights, 10 new classes) is allowed only when the
caller says so (``num_classes``): then the classifier tensors whose class dimension differs are re-initialised.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from nncf_bootstrapnas.models.ref import ModelError, describe_mismatch

_NESTED = ("state_dict", "model_state_dict", "model")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``state_dict`` file (``torch.load(weights_only=True)``; also one nested under ``state_dict`` /
    ``model_state_dict`` / ``model``, with DDP's ``module.`` prefixes removed)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise ModelError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if isinstance(state, dict):
        state = next((state[k] for k in _NESTED if isinstance(state.get(k), dict)), state)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path} holds no state_dict (a dict of tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def classifier_keys(state: Mapping[str, torch.Tensor], model: nn.Module) -> tuple[list[str], int | None]:
    """Keys whose shapes differ only in the first (class) dimension, and the file's class count (None if unclear)."""
    own = model.state_dict()
    keys, counts = [], set()
    for key in sorted(set(state) & set(own)):
        a, b = tuple(state[key].shape), tuple(own[key].shape)
        if a != b and len(a) == len(b) >= 1 and a[1:] == b[1:]:
            keys.append(key)
            counts.add(a[0])
    return keys, counts.pop() if len(counts) == 1 else None


def _reinitialise(model: nn.Module, keys: list[str]) -> None:
    for owner in sorted({key.rpartition(".")[0] for key in keys}):
        module = model.get_submodule(owner)
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


def load_weights(model: nn.Module, path: str | Path, num_classes: int | None = None) -> list[str]:
    """Load the ``state_dict`` file at ``path`` into ``model`` strictly; return the keys left re-initialised.

    ``num_classes``: the class count the user asked for. Only then may the classifier differ (tensors whose first
    dimension is ``num_classes`` in the model and something else in the file, the rest equal): it is re-initialised
    and every other tensor loaded. Anything else that differs is one ModelError listing the keys.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    keys, file_classes = classifier_keys(state, model)
    only_classifier = bool(keys) and set(state) == set(own) and len(keys) == len(_shape_mismatches(state, own))
    if only_classifier and num_classes is not None and all(own[k].shape[0] == num_classes for k in keys):
        model.load_state_dict({k: v for k, v in state.items() if k not in keys}, strict=False)
        _reinitialise(model, keys)
        return keys
    problem = describe_mismatch(state, model, where="file")
    if problem is None:
        model.load_state_dict(state)
        return []
    hint = ""
    if only_classifier and file_classes:
        hint = (
            f"; the file's classifier has {file_classes} classes: pass --num-classes N (config num_classes) for a "
            f"new classifier of N classes, or --num-classes {file_classes} to keep it"
        )
    raise ModelError(f"incompatible checkpoint {path}: {problem}{hint}")


def _shape_mismatches(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> list[str]:
    return [k for k in set(state) & set(own) if tuple(state[k].shape) != tuple(own[k].shape)]
