"""Training checkpoints: plain data only (loadable with ``torch.load(path, weights_only=True)``), written atomically.

Contents: ``model_state`` (the super-network's state_dict, quantizers included), ``elasticity``
(``supernet.get_state()``), ``search_space`` (to detect a different elasticity config), ``quantization`` (the NNCF hook
layout, if quantized), ``controller`` (scheduler counters and stage list), ``optimizer``, ``rng`` (per rank: python,
numpy, torch, cuda), ``epoch`` (the epoch in progress or the next one), ``step_in_epoch`` (batches of ``epoch`` already
done; 0 at an epoch boundary), ``step`` (global optimizer steps), ``metrics``, ``best``, ``training_config``.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import nn

FORMAT = "nncf_bootstrapnas.training.checkpoint/1"
LAST = "supernet_last.pth"
BEST = "supernet_best.pth"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model / elasticity config it is loaded into."""


def plain(obj: Any) -> Any:
    """A JSON round trip: guarantees plain dict/list/str/number data (Config subclasses, tuples, numpy scalars)."""
    return json.loads(json.dumps(obj, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable in a checkpoint: {type(obj).__name__} {obj!r}")


# ---- RNG ----------------------------------------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    out: dict[str, Any] = {
        "python": {"version": version, "state": list(state), "gauss": gauss},
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: Mapping[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    nps = state["numpy"]
    keys = nps["keys"].numpy().astype(np.uint32)
    np.random.set_state((nps["kind"], keys, nps["pos"], nps["has_gauss"], nps["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---- writing ------------------------------------------------------------------------------------------------------------
def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> Path:
    """``write(file)`` into a temporary file in the same directory, fsync, then ``os.replace``: a reader (or a crash)
    sees either the old file or the complete new one, never a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # some filesystems / platforms cannot fsync a directory
        pass
    return path


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` through :func:`atomic_write`."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def make_checkpoint(
    supernet: nn.Module,
    controller_state: Mapping[str, Any],
    optimizer: torch.optim.Optimizer | None,
    *,
    epoch: int,
    step_in_epoch: int,
    step: int,
    rng: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, Any] | None = None,
    best: Mapping[str, Any] | None = None,
    training_config: Mapping[str, Any] | None = None,
    quantization: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "model_state": {k: v.detach().clone() for k, v in supernet.state_dict().items()},
        "elasticity": plain(supernet.get_state()),
        "search_space": plain(supernet.search_space.to_json()),
        "quantization": None if quantization is None else plain(quantization),
        "controller": plain(controller_state),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "rng": list(rng),
        "epoch": int(epoch),
        "step_in_epoch": int(step_in_epoch),
        "step": int(step),
        "metrics": plain(dict(metrics or {})),
        "best": plain(dict(best or {})),
        "training_config": plain(dict(training_config or {})),
    }


# ---- reading ------------------------------------------------------------------------------------------------------------
def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or non-plain content
        raise CheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{path} is not a nncf_bootstrapnas training checkpoint (format {found!r}, expected {FORMAT!r})"
        )
    missing = [k for k in ("model_state", "elasticity", "search_space", "controller", "epoch", "step") if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    return ckpt


def _listing(items: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def check_search_space(ckpt: Mapping[str, Any], supernet: nn.Module, where: str = "checkpoint") -> None:
    """Raise CheckpointError naming the variables whose choices differ (another elasticity config)."""
    saved = {f"{v['dim']}/{v['key']}": list(v["choices"]) for v in ckpt["search_space"]["variables"]}
    current = {v.name: list(v.choices) for v in supernet.search_space.variables}
    problems = [f"{n}: only in the {where}" for n in sorted(set(saved) - set(current))]
    problems += [f"{n}: only in the model's search space" for n in sorted(set(current) - set(saved))]
    problems += [
        f"{n}: {where} choices {saved[n]} vs model {current[n]}"
        for n in sorted(set(saved) & set(current))
        if saved[n] != current[n]
    ]
    if problems:
        raise CheckpointError(
            f"the {where} was made with a different elasticity config ({len(problems)} difference(s)): "
            + _listing(problems)
        )


def check_state_dict(state: Mapping[str, torch.Tensor], model: nn.Module, where: str = "checkpoint") -> None:
    """Raise CheckpointError listing missing / unexpected keys and shape mismatches (another model)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: {where} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {_listing(unexpected)}")
    if shapes:
        parts.append(f"shape mismatches: {_listing(shapes)}")
    if parts:
        raise CheckpointError(f"the {where} does not fit this model (another architecture?); " + "; ".join(parts))


def load_model_state(ckpt: Mapping[str, Any], supernet: nn.Module) -> None:
    check_search_space(ckpt, supernet)
    check_state_dict(ckpt["model_state"], supernet)
    supernet.load_state_dict(ckpt["model_state"], strict=True)


def load_optimizer_state(ckpt: Mapping[str, Any], optimizer: torch.optim.Optimizer | None) -> None:
    if optimizer is None or ckpt.get("optimizer") is None:
        return
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"the checkpoint's optimizer state does not fit this optimizer: {exc}") from exc


def rank_rng(ckpt: Mapping[str, Any], rank: int) -> Mapping[str, Any] | None:
    states = ckpt.get("rng") or []
    if not states:
        return None
    return states[rank] if rank < len(states) else states[0]
