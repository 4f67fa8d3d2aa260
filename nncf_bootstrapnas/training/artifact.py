"""The supernet artifact: the one file format a trained super-network is saved in and loaded from.

One ``torch.save`` of plain data (``torch.load(path, weights_only=True)`` reads it), written atomically::

    format             "nncf_bootstrapnas.supernet"      version   1
    kind               "supernet" (save_supernet) or "training_checkpoint" (fit / the legacy facade)
    model              {"factory": "pkg.module:callable", "args": {...}} to rebuild the plain model, or null
    elasticity         SuperNetwork.get_state()          search_space   its search space (to name differences)
    quantization       the quantizer layout (training.quantization.quantizer_layout) or null
    weights            the super-network's state_dict    quantizer_weights   the quantizers' tensors or null
    original_weights   the plain model's state_dict before conversion, or null
    meta               free plain-JSON notes (accuracy of the original, data, ...)
    training           training checkpoints only: the loop state (see ``training.loop``)

Search, export, generation, the quality report, the API and the CLI all load it with :func:`load_supernet` /
:func:`read_artifact`. Search state and generator state are separate files of their own stages.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.models.ref import ModelError, ModelRef
from nncf_bootstrapnas.training.checkpoint import (
    CheckpointError,
    atomic_save,
    check_search_space,
    check_state_dict,
    plain,
)
from nncf_bootstrapnas.training.contract import find_supernet, is_supernet, model_device
from nncf_bootstrapnas.training.quantization import (
    hook_storage,
    is_quantized,
    quantizer_layout,
    quantizer_state,
    restore_quantization,
)

FORMAT = "nncf_bootstrapnas.supernet"
VERSION = 1
SUPERNET, TRAINING_CHECKPOINT = "supernet", "training_checkpoint"
_RETIRED = {
    "nncf_bootstrapnas.training.checkpoint/1": "a training checkpoint of an earlier version",
    "nncf_bootstrapnas.cli.supernet/1": "a CLI supernet checkpoint of an earlier version",
}
_REQUIRED = ("kind", "elasticity", "search_space", "weights")


class NotAnArtifactError(CheckpointError):
    """A readable file that is not a supernet artifact (e.g. plain pre-trained weights)."""


def _tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def artifact_data(
    supernet: nn.Module,
    *,
    model: ModelRef | None = None,
    original: nn.Module | None = None,
    meta: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The artifact of ``supernet`` as a dict (``training``: the loop state of a training checkpoint)."""
    supernet = find_supernet(supernet)
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": SUPERNET if training is None else TRAINING_CHECKPOINT,
        "model": None if model is None else plain(model.to_json()),
        "elasticity": plain(supernet.get_state()),
        "search_space": plain(supernet.search_space.to_json()),
        "quantization": quantizer_layout(supernet),
        "weights": _tensors(supernet.state_dict()),
        "quantizer_weights": quantizer_state(supernet),
        "original_weights": None if original is None else _tensors(original.state_dict()),
        "meta": plain(dict(meta or {})),
        "training": None if training is None else dict(training),
    }


def save_supernet(
    path: str | os.PathLike[str],
    supernet: nn.Module,
    *,
    model: ModelRef | None = None,
    original: nn.Module | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Save a (trained, possibly quantized) super-network as an artifact, atomically.

    ``model`` records how to rebuild the plain model so that :func:`load_supernet` needs nothing else; without it the
    loader must be given a fresh instance. ``original`` (the pre-trained plain model) is kept for comparisons.
    """
    return atomic_save(artifact_data(supernet, model=model, original=original, meta=meta), path)


@dataclass
class SupernetArtifact:
    """A read artifact; :meth:`build_supernet` turns it back into a super-network."""

    path: Path
    kind: str
    model: ModelRef | None
    elasticity: dict[str, Any]
    search_space: dict[str, Any]
    quantization: dict[str, Any] | None
    weights: dict[str, torch.Tensor]
    quantizer_weights: dict[str, torch.Tensor] | None = None
    original_weights: dict[str, torch.Tensor] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] | None = None

    def build_model(self) -> nn.Module:
        """A fresh plain model from the recorded factory."""
        if self.model is None:
            raise CheckpointError(
                f"{self.path} does not record how to build its model (saved without a model reference); "
                "pass a fresh instance of the model (load_supernet(path, model=...))"
            )
        try:
            return self.model.build()
        except ModelError as exc:
            raise CheckpointError(f"{self.path}: {exc}") from None

    def build_original(self) -> nn.Module | None:
        """The plain model before conversion with its saved weights (eval mode), or None if it was not saved."""
        if self.original_weights is None:
            return None
        original = self.build_model()
        check_state_dict(self.original_weights, original, where=f"original model of {self.path}")
        original.load_state_dict(self.original_weights)
        return original.eval()

    def build_supernet(self, model: nn.Module | None = None) -> nn.Module:
        """The saved super-network (weights, quantizers, stage and active subnet) on ``model``'s device.

        ``model``: a fresh plain model (default: built from the recorded factory) or a super-network made with the
        same elasticity config, loaded in place. Raises CheckpointError naming what does not fit.
        """
        model = self.build_model() if model is None else model
        supernet = model if is_supernet(model) else self._rebuild(model)
        self._load_into(supernet)
        return supernet

    def _rebuild(self, model: nn.Module) -> nn.Module:
        from nncf_bootstrapnas.elasticity import SuperNetwork

        device = model_device(model)
        saved = {k: v for k, v in self.weights.items() if "kernel_transform_" not in k}  # added by elasticity
        check_state_dict(saved, model)
        try:  # traced on the CPU (the saved example input is a CPU tensor), then moved
            supernet = SuperNetwork.from_state(copy.deepcopy(model).cpu(), self.elasticity, deep_copy=False)
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"the super-network of {self.path} does not fit this model: {exc}") from exc
        if self.quantization is not None:
            supernet = restore_quantization(supernet, self.quantization)
        return supernet.to(device)

    def _load_into(self, supernet: nn.Module) -> None:
        check_search_space(self.search_space, supernet)
        saved, current = self.quantization is not None, is_quantized(supernet)
        if saved != current:
            which = "quantized" if saved else "not quantized"
            raise CheckpointError(f"the checkpoint's super-network is {which}, this one is not; check 'compression'")
        if saved and quantizer_layout(supernet) != self.quantization:
            raise CheckpointError("the checkpoint's quantizer layout differs from this super-network's")
        check_state_dict(self.weights, supernet)
        supernet.load_state_dict(self.weights, strict=True)
        if saved:
            storage = hook_storage(supernet)
            check_state_dict(self.quantizer_weights or {}, storage, where="checkpoint's quantizers")
            storage.load_state_dict(self.quantizer_weights or {}, strict=True)
        supernet.activate(self.elasticity.get("active_config"))


def read_artifact(path: str | os.PathLike[str]) -> SupernetArtifact:
    """Read and check an artifact (either kind); one CheckpointError says what is wrong with any other file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated, not a torch file, or non-plain content
        raise CheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None
    found = data.get("format") if isinstance(data, dict) else None
    if found in _RETIRED:
        raise CheckpointError(
            f"{path} is {_RETIRED[found]} (format {found!r}); this version reads {FORMAT!r} version {VERSION}: "
            "train again to write one"
        )
    if found != FORMAT:
        what = f"a dict with keys {sorted(map(str, data))[:6]}" if isinstance(data, dict) else type(data).__name__
        raise NotAnArtifactError(
            f"{path} is not a nncf_bootstrapnas supernet artifact or training checkpoint (it holds {what}; "
            f"expected format {FORMAT!r}, written by save_supernet or training)"
        )
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: supernet artifact version {data.get('version')!r} is not supported (this version reads "
            f"{VERSION}); use the nncf_bootstrapnas version that wrote it"
        )
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}: an incomplete supernet artifact")
    try:
        ref = None if data.get("model") is None else ModelRef.from_json(data["model"])
    except ModelError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return SupernetArtifact(
        path, data["kind"], ref, data["elasticity"], data["search_space"], data.get("quantization"),
        data["weights"], data.get("quantizer_weights"), data.get("original_weights"), dict(data.get("meta") or {}),
        data.get("training"),
    )  # fmt: skip


def load_supernet(
    path: str | os.PathLike[str], model: nn.Module | None = None, device: str | torch.device | None = None
) -> nn.Module:
    """The super-network saved at ``path`` (an artifact or a training checkpoint), in eval mode.

    ``model``: a fresh plain model (needed only when the artifact does not record its factory) or a super-network to
    load into. ``device``: where to put it (default: ``model``'s device, else the CPU).
    """
    supernet = read_artifact(path).build_supernet(model)
    if device is not None:
        supernet = supernet.to(device)
    return supernet.eval()
