"""Example inputs as ``forward`` receives them: positional arguments that are tensors or nested tuples/lists/dicts.

``describe_inputs`` gives plain JSON (a tensor is ``{"shape": [...], "dtype": "float32"}``; containers are
``{"tuple": [...]}``, ``{"list": [...]}``, ``{"dict": {...}}``), ``build_inputs`` rebuilds zeros of the same
structure. A flat tuple of tensors keeps the older format (a list of tensor entries), so existing checkpoints load.

The matching ``input_info`` entry shape (for the config loader): an entry is either a tensor entry
(``{"sample_size": [1, 3, 32, 32], "type": "float", "filler": "random"}``, as today) or a container entry
``{"tuple": [entry, ...]}``, ``{"list": [entry, ...]}``, ``{"dict": {"name": entry, ...}}``; each top-level entry is
one positional argument (``keyword`` entries stay keyword arguments). ``example_from_input_info`` builds that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

_DTYPES = {"float": torch.float32, "long": torch.long, "int": torch.int32, "bool": torch.bool, "half": torch.float16}


def describe_inputs(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return {"shape": list(obj.shape), "dtype": str(obj.dtype).replace("torch.", "")}
    if isinstance(obj, Mapping):
        return {"dict": {str(k): describe_inputs(v) for k, v in obj.items()}}
    if isinstance(obj, (tuple, list)):
        items = [describe_inputs(v) for v in obj]
        return items if isinstance(obj, tuple) else {"list": items}
    raise TypeError(f"example input: unsupported {type(obj).__name__} (tensors, tuples, lists and dicts only)")


def build_inputs(desc: Any) -> Any:
    """Zeros with the described structure; the top level (a list) is the tuple of positional arguments."""
    if isinstance(desc, list):
        return tuple(build_inputs(d) for d in desc)
    if isinstance(desc, Mapping):
        if "shape" in desc:
            return torch.zeros(desc["shape"], dtype=getattr(torch, desc.get("dtype", "float32")))
        if "tuple" in desc:
            return tuple(build_inputs(d) for d in desc["tuple"])
        if "list" in desc:
            return [build_inputs(d) for d in desc["list"]]
        if "dict" in desc:
            return {k: build_inputs(v) for k, v in desc["dict"].items()}
        return {k: build_inputs(v) for k, v in desc.items()}  # a kwargs mapping
    raise ValueError(f"example input description: cannot read {desc!r}")


def _entry(entry: Mapping[str, Any], where: str) -> Any:
    if "tuple" in entry or "list" in entry:
        items = entry.get("tuple", entry.get("list"))
        built = [_entry(e, f"{where}.{i}") for i, e in enumerate(items)]
        return tuple(built) if "tuple" in entry else built
    if "dict" in entry:
        return {k: _entry(v, f"{where}.{k}") for k, v in entry["dict"].items()}
    if "sample_size" not in entry:
        raise ValueError(f"{where}: needs 'sample_size' (a tensor) or 'tuple'/'list'/'dict' (a container)")
    dtype = _DTYPES.get(entry.get("type", "float"), torch.float32)
    size = [int(s) for s in entry["sample_size"]]
    if entry.get("filler") == "zeros":
        return torch.zeros(size, dtype=dtype)
    if entry.get("filler") == "ones":
        return torch.ones(size, dtype=dtype)
    if dtype.is_floating_point:
        return torch.randn(size, dtype=dtype)
    return torch.zeros(size, dtype=dtype)


def example_from_input_info(info: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> tuple[tuple, dict]:
    """(positional arguments, keyword arguments) from ``input_info`` entries, containers included."""
    entries = [info] if isinstance(info, Mapping) else list(info)
    args, kwargs = [], {}
    for i, entry in enumerate(entries):
        value = _entry(entry, f"input_info[{i}]")
        if "keyword" in entry:
            kwargs[entry["keyword"]] = value
        else:
            args.append(value)
    return tuple(args), kwargs


def is_nested(entries: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None) -> bool:
    entries = [entries] if isinstance(entries, Mapping) else list(entries or [])
    return any(any(k in e for k in ("tuple", "list", "dict")) for e in entries)
