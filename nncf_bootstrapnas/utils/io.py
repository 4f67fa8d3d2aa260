"""The one way to write result and checkpoint files: atomically, and JSON through one sanitiser.

``atomic_write`` writes to a temporary file in the same directory, fsyncs and ``os.replace``s it, so a reader (or a
crash) sees the old file or the complete new one, never a torn file. ``json_safe`` turns numpy scalars/arrays,
tuples, sets, paths and mapping subclasses into plain JSON data and NaN/inf into ``null``, so every JSON file we
write is valid for strict parsers (``allow_nan=False``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> Path:
    """``write(file)`` into a temporary sibling, fsync, then rename over ``path`` (parents are created)."""
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


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(obj: Any, default: Callable[[Any], Any] | None = None) -> Any:
    """A plain-JSON copy of ``obj``: NaN/inf -> None, numpy -> Python, tuples/sets -> lists, Path -> str.

    Objects of any other type go through ``default`` (e.g. ``str``); without one they raise TypeError, so nothing
    unexpected is written silently.
    """
    if obj is None or type(obj) in (bool, str, int):
        return obj
    if isinstance(obj, str):  # str subclasses (e.g. str Enums) as plain str: weights_only loads reject the class
        return str.__str__(obj)
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v, default) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, default) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [json_safe(v, default) for v in sorted(obj)]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy scalars and arrays, torch tensors
        return json_safe(obj.tolist(), default)
    if default is not None:
        return json_safe(default(obj))
    raise TypeError(f"not JSON serialisable: {type(obj).__name__} {obj!r}")


def dumps_json(obj: Any, indent: int | None = 2, default: Callable[[Any], Any] | None = None) -> str:
    """Strict JSON text of ``json_safe(obj)`` (ends with a newline)."""
    return json.dumps(json_safe(obj, default), indent=indent, allow_nan=False) + "\n"


def write_json(
    path: str | os.PathLike[str], obj: Any, indent: int | None = 2, default: Callable[[Any], Any] | None = None
) -> Path:
    """Write ``obj`` as strict JSON, atomically."""
    return atomic_write_text(path, dumps_json(obj, indent, default))


def write_csv(path: str | os.PathLike[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write rows (the first is usually the header) as CSV, atomically."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def save_figure(fig: Any, path: str | os.PathLike[str], **savefig: Any) -> Path:
    """``fig.savefig`` into memory, then an atomic write (the format follows the suffix, PNG by default)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", **savefig)
    return atomic_write_bytes(path, buffer.getvalue())


__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "dumps_json",
    "json_safe",
    "save_figure",
    "write_csv",
    "write_json",
]
