"""The "torch" export format and ``load_exported``.

Layout of ``<out_dir>/torch/`` (why three files: weights must load with ``torch.load(weights_only=True)``, and the
forward logic of custom modules cannot be described as data):

- ``state_dict.pt``      plain tensors, loadable with ``weights_only=True``.
- ``architecture.json``  the module tree: type and constructor arguments recovered from attributes for standard
                         ``torch.nn`` modules. ``reconstructable`` is true when every module (root included) is a
                         standard one, and then ``load_exported`` rebuilds an ordinary nn.Module tree + state_dict.
- ``model.pt2``          a ``torch.export`` program (batch dimension dynamic when the model allows it), loadable without
                         our code or the user's: ``torch.export.load(path).module()``. Used for custom modules (residual
                         blocks, torch.cat ...). If torch.export fails: ``model_ts.pt`` (TorchScript trace, deprecated
                         in torch 2.13 but robust); if that fails too: ``model_pickled.pt`` (needs the user's classes
                         importable and ``allow_pickle=True``), noted in export.json.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nncf_bootstrapnas.deployment._utils import Inputs, quiet_tracing
from nncf_bootstrapnas.utils.io import atomic_write, write_json

ARCHITECTURE_FORMAT = "nncf_bootstrapnas.architecture/1"
# torch.nn.modules.<file> families whose constructor arguments are all stored as same-named attributes.
_STANDARD_FILES = {
    "activation", "batchnorm", "channelshuffle", "container", "conv", "dropout", "flatten", "instancenorm",
    "linear", "normalization", "padding", "pixelshuffle", "pooling", "sparse", "upsampling",
}  # fmt: skip
_NOT_STANDARD = {"MultiheadAttention", "ParameterList", "ParameterDict"}
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_SCALARS = (bool, int, float, str, type(None))


def _standard_name(cls: type) -> str | None:
    """``Conv2d`` for torch.nn.modules.conv.Conv2d when it is a standard, reconstructable class; else None."""
    parts = cls.__module__.split(".")
    if parts[:3] != ["torch", "nn", "modules"] or len(parts) != 4 or parts[3] not in _STANDARD_FILES:
        return None
    name = cls.__qualname__
    if name in _NOT_STANDARD or name.startswith("Lazy") or getattr(nn, name, None) is not cls:
        return None
    return name


def _json_value(value: Any) -> tuple[bool, Any]:
    if isinstance(value, _SCALARS):
        return True, value
    if isinstance(value, (tuple, list)) and all(isinstance(v, _SCALARS) for v in value):
        return True, list(value)
    return False, None


def _constructor_args(module: nn.Module) -> tuple[dict[str, Any] | None, str]:
    """Constructor kwargs recovered from attributes, or (None, reason)."""
    args: dict[str, Any] = {}
    for p in inspect.signature(type(module).__init__).parameters.values():
        if p.name in ("self", "device", "dtype") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        has_default = p.default is not inspect.Parameter.empty
        if not hasattr(module, p.name):
            if has_default:
                continue
            return None, f"required argument '{p.name}' is not stored as an attribute"
        value = getattr(module, p.name)
        if isinstance(p.default, bool) and (value is None or isinstance(value, torch.Tensor)):
            args[p.name] = value is not None  # bias=True/False stored as a Parameter or None
            continue
        ok, value = _json_value(value)
        if ok:
            args[p.name] = value
        elif not has_default:
            return None, f"argument '{p.name}' is not JSON data"
    return args, ""


def describe_module(module: nn.Module) -> dict[str, Any]:
    """JSON tree of the module; see the module docstring."""
    reasons: list[str] = []

    def node(m: nn.Module, path: str) -> dict[str, Any]:
        name = _standard_name(type(m))
        entry: dict[str, Any] = {"type": f"{type(m).__module__}.{type(m).__qualname__}"}
        if name is None:
            reasons.append(f"{path or '<root>'}: {entry['type']} is not a standard torch.nn module")
        else:
            args, why = _constructor_args(m)
            entry["args"] = args
            if args is None:
                reasons.append(f"{path or '<root>'}: {why}")
            if m._modules and not isinstance(m, _CONTAINERS):
                reasons.append(f"{path or '<root>'}: non-container {name} with children")
        children = {k: node(c, f"{path}.{k}" if path else k) for k, c in m._modules.items() if c is not None}
        if children:
            entry["children"] = children
        return entry

    root = node(module, "")
    return {"format": ARCHITECTURE_FORMAT, "reconstructable": not reasons, "not_reconstructable": reasons, "root": root}


def build_module(description: dict[str, Any]) -> nn.Module:
    """Rebuild a reconstructable architecture (weights uninitialised: load the state_dict next)."""
    if description.get("format") != ARCHITECTURE_FORMAT or not description.get("reconstructable"):
        raise ValueError(f"architecture is not a reconstructable {ARCHITECTURE_FORMAT} description")

    def make(entry: dict[str, Any], path: str) -> nn.Module:
        qualified = entry["type"]
        cls = getattr(nn, qualified.rsplit(".", 1)[-1], None)
        if cls is None or not qualified.startswith("torch.nn.modules.") or _standard_name(cls) is None:
            raise ValueError(f"{path or '<root>'}: {qualified} is not an allowed standard torch.nn module")
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in (entry.get("args") or {}).items()}
        module = cls(**args)
        for name, child in entry.get("children", {}).items():
            module.add_module(name, make(child, f"{path}.{name}" if path else name))
        return module

    return make(description["root"], "")


def _batch_two(x: torch.Tensor) -> torch.Tensor:
    return x.expand(2, *x.shape[1:]).clone() if x.dim() and x.shape[0] == 1 else x


def save_torch(model: nn.Module, example: Inputs, folder: Path) -> dict[str, Any]:
    """Write state_dict, architecture and an executable program; returns paths, program kind and notes."""
    folder.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {"paths": {}, "notes": []}
    atomic_write(folder / "state_dict.pt", lambda f: torch.save(model.state_dict(), f))
    description = describe_module(model)
    write_json(folder / "architecture.json", description, indent=1)
    info["paths"].update(
        torch_state_dict=str(folder / "state_dict.pt"), torch_architecture=str(folder / "architecture.json")
    )
    info["reconstructable"] = description["reconstructable"]

    errors = []
    with quiet_tracing():
        for dynamic in (True, False):
            try:
                args = tuple(_batch_two(x) for x in example) if dynamic else example
                shapes = tuple({0: torch.export.Dim.DYNAMIC} if x.dim() else None for x in args) if dynamic else None
                program = torch.export.export(model, args, dynamic_shapes=shapes)
                atomic_write(folder / "model.pt2", lambda f: torch.export.save(program, f))  # noqa: B023
                info.update(program="torch.export", dynamic_batch=dynamic)
                info["paths"]["torch_program"] = str(folder / "model.pt2")
                return info
            except Exception as e:  # noqa: BLE001 - torch.export raises many types; try the next option
                errors.append(f"torch.export ({'dynamic' if dynamic else 'static'} batch): {str(e).splitlines()[0]}")
        try:
            traced = torch.jit.trace(model, example, check_trace=False)
            atomic_write(folder / "model_ts.pt", lambda f: torch.jit.save(traced, f))
            info.update(program="torchscript", dynamic_batch=True)
            info["paths"]["torch_program"] = str(folder / "model_ts.pt")
            info["notes"].append("torch.export failed, saved a TorchScript trace instead: " + "; ".join(errors))
            return info
        except Exception as e:  # noqa: BLE001
            errors.append(f"torch.jit.trace: {str(e).splitlines()[0]}")
    atomic_write(folder / "model_pickled.pt", lambda f: torch.save(model, f))
    info.update(program="pickle", dynamic_batch=True)
    info["paths"]["torch_program"] = str(folder / "model_pickled.pt")
    info["notes"].append(
        "torch.export and TorchScript failed; model_pickled.pt is a pickled module: loading it needs the model's "
        "classes importable and load_exported(..., allow_pickle=True). Causes: " + "; ".join(errors)
    )
    return info


def load_program(path: str | Path, allow_pickle: bool = False) -> nn.Module:
    """Load the executable program written by ``save_torch`` (.pt2, TorchScript or, if allowed, a pickle)."""
    path = Path(path)
    if path.suffix == ".pt2":
        return torch.export.load(str(path)).module()  # traced in eval mode; exported modules refuse .eval()
    if path.name == "model_ts.pt":
        return torch.jit.load(str(path)).eval()
    if path.name == "model_pickled.pt":
        if not allow_pickle:
            raise ValueError(f"{path} is a pickled module; pass allow_pickle=True if you trust its source")
        return torch.load(path, weights_only=False).eval()
    raise ValueError(f"unknown torch program file {path}; expected model.pt2, model_ts.pt or model_pickled.pt")


def load_exported(out_dir: str | Path, prefer: str = "module", allow_pickle: bool = False) -> nn.Module:
    """Load the "torch" format of an export directory as an nn.Module in eval mode.

    ``prefer="module"``: rebuild the standard nn.Module tree + state_dict when the architecture allows it, otherwise the
    program; ``prefer="program"``: always the program (model.pt2 / model_ts.pt / model_pickled.pt).
    """
    if prefer not in ("module", "program"):
        raise ValueError(f"prefer={prefer!r}; allowed: 'module', 'program'")
    folder = Path(out_dir) / "torch" if (Path(out_dir) / "torch").is_dir() else Path(out_dir)
    arch = folder / "architecture.json"
    if prefer == "module" and arch.is_file():
        description = json.loads(arch.read_text())
        if description.get("reconstructable"):
            model = build_module(description)
            model.load_state_dict(torch.load(folder / "state_dict.pt", weights_only=True))
            return model.eval()
    for name in ("model.pt2", "model_ts.pt", "model_pickled.pt"):
        if (folder / name).is_file():
            return load_program(folder / name, allow_pickle=allow_pickle)
    raise FileNotFoundError(
        f"no loadable torch export in {folder}: expected architecture.json (reconstructable) + state_dict.pt, "
        "or model.pt2 / model_ts.pt / model_pickled.pt"
    )
