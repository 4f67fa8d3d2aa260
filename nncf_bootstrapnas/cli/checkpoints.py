"""Checkpoints the CLI reads and writes: pre-trained weights (state_dict + JSON sidecar) and self-describing
super-network checkpoints that let ``search``/``export``/``generate``/``quality`` rebuild the supernet alone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nncf_bootstrapnas.cli.errors import CLIError, UsageError
from nncf_bootstrapnas.cli.models import ModelSpec

FORMAT = "nncf_bootstrapnas.cli.supernet/1"
TRAINING_FORMAT_KEYS = ("model_state", "elasticity", "search_space")


@dataclass
class LoadedSupernet:
    supernet: Any
    original: Any
    spec: ModelSpec
    meta: dict[str, Any]


def read(path: Path) -> Any:
    import torch

    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise CLIError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None


def kind_of(ckpt: Any) -> str:
    """``supernet`` (ours), ``training`` (a fit() checkpoint) or ``weights`` (a plain state_dict)."""
    if isinstance(ckpt, dict) and ckpt.get("format") == FORMAT:
        return "supernet"
    if isinstance(ckpt, dict) and all(k in ckpt for k in TRAINING_FORMAT_KEYS):
        return "training"
    return "weights"


def _state_dict_of(ckpt: Any, path: Path) -> dict[str, Any]:
    import torch

    if isinstance(ckpt, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(ckpt.get(key), dict):
                ckpt = ckpt[key]
                break
    if not isinstance(ckpt, dict) or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise CLIError(f"{path} holds no state_dict (a dict of tensors)")
    return {k.removeprefix("module."): v for k, v in ckpt.items()}


def load_weights(model: Any, path: Path, spec: ModelSpec) -> None:
    """Load pre-trained weights; a mismatch is one line naming the first differing keys."""
    state = _state_dict_of(read(path), path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in sorted(set(own) & set(state)) if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {missing[:3]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:3]}")
        if shapes:
            k = shapes[0]
            parts.append(f"shape of {k}: {tuple(state[k].shape)} in file vs {tuple(own[k].shape)} in model")
        raise CLIError(f"incompatible checkpoint {path} for model {spec.describe()}: " + "; ".join(parts))
    model.load_state_dict(state)


def save_pretrained(model: Any, spec: ModelSpec, accuracy: float, path: Path, extra: dict[str, Any]) -> Path:
    """state_dict + sidecar in the format of ``examples.pretrain`` (``load_pretrained`` reads it back)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    params = dict(spec.params)
    if spec.small and not spec.is_import_path:
        from examples.models import SMALL_KWARGS

        params = {**SMALL_KWARGS[spec.name], **params}
    meta = {"model": spec.name, "model_kwargs": params, "num_classes": spec.num_classes, "val_accuracy": accuracy}
    path.with_suffix(".json").write_text(json.dumps({**meta, **extra}, indent=2, default=str) + "\n")
    return path


def save_supernet(path: Path, supernet: Any, original: Any, spec: ModelSpec, meta: dict[str, Any]) -> Path:
    """Everything to rebuild: model spec, elasticity state, quantizer layout, all weights (quantizer scales too)."""
    import torch
    from torch import nn

    from nncf_bootstrapnas.training.checkpoint import plain

    layout = None
    if _is_quantized(supernet):
        from nncf.torch.function_hook.serialization import get_config

        layout = plain(get_config(supernet))
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": FORMAT,
        "spec": spec.to_json(),
        "elasticity": plain(supernet.get_state()),
        "quantization": layout,
        "state": {k: v.detach().cpu() for k, v in nn.Module.state_dict(supernet).items()},
        "original_state": {k: v.detach().cpu() for k, v in original.state_dict().items()},
        "meta": plain(meta),
    }
    torch.save(data, path)
    return path


def _is_quantized(model: Any) -> bool:
    from nncf_bootstrapnas.deployment.quantize import is_quantized

    return is_quantized(model)


def load_supernet(path: Path, spec: ModelSpec | None = None, config: Any = None) -> LoadedSupernet:
    """Rebuild a supernet from our checkpoint (or from a fit() training checkpoint, given the model ``spec``)."""
    from torch import nn

    from nncf_bootstrapnas.elasticity import SuperNetwork

    ckpt = read(path)
    kind = kind_of(ckpt)
    if kind == "weights":
        raise UsageError(f"{path} holds plain weights, not a super-network checkpoint (run `train` first)")
    if kind == "supernet":
        spec = ModelSpec.from_json(ckpt["spec"])
        elasticity, layout, state = ckpt["elasticity"], ckpt.get("quantization"), ckpt["state"]
        original_state, meta = ckpt.get("original_state"), dict(ckpt.get("meta") or {})
    else:
        if spec is None:
            raise UsageError(f"{path} is a training checkpoint: pass --model (or set the config's 'model')")
        original_state, meta = None, {"source": f"fit() checkpoint {path}", "epoch": ckpt.get("epoch")}
    base = spec.build()
    original = spec.build()
    try:
        if kind == "supernet":
            supernet = SuperNetwork.from_state(base, elasticity, deep_copy=False)
            if layout:
                from nncf_bootstrapnas.training.quantization import restore_quantization

                supernet = restore_quantization(supernet, layout)
            nn.Module.load_state_dict(supernet, state, strict=True)
            if original_state is not None:
                original.load_state_dict(original_state)
        else:
            from nncf_bootstrapnas.training.session import resume_session

            supernet = resume_session(base, ckpt, config).supernet
            # fit() checkpoints do not keep the original: its maximum subnet is the closest (function-preserving
            # before training, trained since), so the original rows are skipped instead of guessed.
            original = None
            meta["original_note"] = "fit() checkpoint: the original model is not stored; original rows skipped"
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise CLIError(f"incompatible checkpoint {path} for model {spec.describe()}: {exc}") from None
    return LoadedSupernet(supernet.eval(), original.eval() if original is not None else None, spec, meta)
