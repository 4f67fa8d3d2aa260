"""Atomic checkpoints of a running search: ``search_state.json`` (plain JSON) plus an optional pickled blob.

Every file is written to a temporary name and moved into place with ``os.replace``, so a search killed at any moment
leaves either the previous or the new checkpoint, never a torn one. The blob's file name carries the step number and
its SHA-256 is recorded in the JSON, so a JSON file always points at the blob written with it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from nncf_bootstrapnas.utils.io import atomic_write_bytes, atomic_write_text, dumps_json

STATE_FILE = "search_state.json"
FORMAT_VERSION = 1


def save_checkpoint(directory: str | Path, state: dict[str, Any], blob: bytes | None, step: int) -> Path:
    """Write ``blob`` (if any) then the JSON state that references it; remove older blobs."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = dict(state, format_version=FORMAT_VERSION, step=step)
    blob_name = None
    if blob is not None:
        blob_name = f"algorithm_step{step:06d}.pkl"
        atomic_write_bytes(directory / blob_name, blob)
        state["blob"] = {"file": blob_name, "sha256": hashlib.sha256(blob).hexdigest()}
    else:
        state["blob"] = None
    path = directory / STATE_FILE
    atomic_write_text(path, dumps_json(state, indent=1))
    for old in directory.glob("algorithm_step*.pkl"):
        if old.name != blob_name:
            old.unlink(missing_ok=True)
    return path


def load_checkpoint(directory: str | Path) -> tuple[dict[str, Any], bytes | None] | None:
    """``(state, blob)`` of the checkpoint in ``directory``; ``None`` when there is none."""
    path = Path(directory) / STATE_FILE
    if not path.exists():
        return None
    state = json.loads(path.read_text(encoding="utf-8"))
    if state.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format {state.get('format_version')!r}; this version reads {FORMAT_VERSION}"
        )
    blob = None
    if state.get("blob"):
        blob_path = Path(directory) / state["blob"]["file"]
        if not blob_path.exists():
            raise FileNotFoundError(f"{path} refers to {blob_path.name}, which is missing")
        blob = blob_path.read_bytes()
        if hashlib.sha256(blob).hexdigest() != state["blob"]["sha256"]:
            raise ValueError(f"{blob_path} does not match the SHA-256 recorded in {path}")
    return state, blob
