"""load_config: legacy NNCF JSON -> validated Config with every schema default filled in."""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nncf_bootstrapnas.config.errors import ConfigError
from nncf_bootstrapnas.config.schema import SEARCH, TRAINING, schemas
from nncf_bootstrapnas.config.semantics import SEARCH_PATH, check_config, parse_constraint

if TYPE_CHECKING:
    import torch


class LegacyKeyWarning(DeprecationWarning):
    """A legacy key that is accepted but deprecated. Shown by default (plain DeprecationWarnings are hidden outside
    __main__, but users migrating NNCF configs need to see these)."""


warnings.filterwarnings("default", category=LegacyKeyWarning)


class Config(dict):
    """A loaded configuration: plain JSON data (json.dumps works), schema defaults filled, plus helpers.

    ``source`` is the file it was read from (None for dicts), for resolving relative paths.
    """

    source: Path | None = None

    @property
    def has_bootstrapnas(self) -> bool:
        return "bootstrapNAS" in self

    @property
    def bootstrapnas_training(self) -> dict[str, Any]:
        """``bootstrapNAS.training``; without a bootstrapNAS section, a fresh dict of the defaults."""
        if "bootstrapNAS" in self:
            return self["bootstrapNAS"]["training"]
        return schemas().defaults(TRAINING)

    @property
    def bootstrapnas_search(self) -> dict[str, Any]:
        """``bootstrapNAS.search``; without a bootstrapNAS section, a fresh dict of the defaults."""
        if "bootstrapNAS" in self:
            return self["bootstrapNAS"]["search"]
        return schemas().defaults(SEARCH)

    @property
    def compression(self) -> list[dict[str, Any]]:
        """Top-level compression entries, always a list (empty when absent)."""
        return self.get("compression", [])

    @property
    def input_info(self) -> list[dict[str, Any]]:
        """``input_info`` entries, always a list with type and filler filled (empty when absent)."""
        return self.get("input_info", [])

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Positional example inputs built from input_info (entries without 'keyword'), batch dimension first."""
        return tuple(_make_tensor(e, i) for i, e in enumerate(self._require_input_info()) if "keyword" not in e)

    def example_kwargs(self) -> dict[str, torch.Tensor]:
        """Keyword example inputs: input_info entries that have a 'keyword'."""
        entries = enumerate(self._require_input_info())
        return {e["keyword"]: _make_tensor(e, i) for i, e in entries if "keyword" in e}

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self, indent=indent)

    def _require_input_info(self) -> list[dict[str, Any]]:
        if not self.input_info:
            raise ConfigError("input_info", "missing; it is needed to build example inputs (e.g. sample_size)")
        return self.input_info


_DTYPES = {
    "float": "float32",
    "half": "float16",
    "double": "float64",
    "long": "int64",
    "int": "int32",
    "short": "int16",
}


def _make_tensor(entry: Mapping[str, Any], index: int) -> torch.Tensor:
    import torch

    dtype = getattr(torch, _DTYPES.get(entry["type"], entry["type"]))
    shape = tuple(entry["sample_size"])
    if entry["filler"] == "zeros":
        return torch.zeros(shape, dtype=dtype)
    if entry["filler"] == "ones":
        return torch.ones(shape, dtype=dtype)
    generator = torch.Generator().manual_seed(index)  # reproducible example inputs
    if dtype.is_floating_point:
        return torch.rand(shape, generator=generator).to(dtype)
    return torch.randint(0, 2, shape, generator=generator).to(dtype)


def _blank(text: list[str], start: int, end: int) -> None:
    for k in range(start, end):
        if text[k] not in "\r\n":
            text[k] = " "


def strip_json_extensions(text: str) -> str:
    """Remove // and /* */ comments and trailing commas (NNCF read configs with jstyleson), keeping every other
    character in place so that JSON error positions stay right."""
    out = list(text)
    i, n, in_string = 0, len(text), False
    while i < n:  # comments
        c = text[i]
        if in_string:
            i, in_string = (i + 2, True) if c == "\\" else (i + 1, c != '"')
            continue
        if c == '"':
            in_string = True
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            _blank(out, i, end)
            i = end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                line = text.count("\n", 0, i) + 1
                raise ConfigError("", f"unterminated /* comment starting at line {line}")
            _blank(out, i, end + 2)
            i = end + 2
            continue
        i += 1
    stripped = "".join(out)
    i, in_string = 0, False
    while i < n:  # trailing commas
        c = stripped[i]
        if in_string:
            i, in_string = (i + 2, True) if c == "\\" else (i + 1, c != '"')
            continue
        if c == '"':
            in_string = True
        elif c == ",":
            k = i + 1
            while k < n and stripped[k].isspace():
                k += 1
            if k < n and stripped[k] in "]}":
                out[i] = " "
        i += 1
    return "".join(out)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON config file; errors name the file, line and column."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("", f"config file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read config file {file}: {exc}") from None
    try:
        return json.loads(strip_json_extensions(text))
    except json.JSONDecodeError as exc:
        raise ConfigError("", f"invalid JSON in {file} at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def _normalize(data: dict[str, Any]) -> None:
    """Give object-or-array and string-or-object values their one loaded form."""
    for key in ("input_info", "compression"):
        if isinstance(data.get(key), dict):
            data[key] = [data[key]]
    bnas = data.get("bootstrapNAS", {})
    training, search = bnas.get("training", {}), bnas.get("search", {})
    if isinstance(training.get("compression"), dict):
        training["compression"] = [training["compression"]]
    if "constraints" in search:
        path = f"{SEARCH_PATH}.constraints"
        search["constraints"] = [parse_constraint(c, f"{path}[{i}]") for i, c in enumerate(search["constraints"])]
    points = search.get("aspiration_points")
    if points and not isinstance(points[0], list):
        search["aspiration_points"] = [points]


def load_config(path_or_dict: str | os.PathLike[str] | Mapping[str, Any]) -> Config:
    """Read, validate and complete a configuration.

    Accepts a path to a JSON file (comments and trailing commas allowed) or a mapping (copied, never modified).
    Raises ConfigError naming the JSON path of the first problem; warns (LegacyKeyWarning, a DeprecationWarning)
    once per deprecated legacy key, which is then dropped or renamed.
    """
    source = None
    if isinstance(path_or_dict, Mapping):
        data = copy.deepcopy(dict(path_or_dict))
    elif isinstance(path_or_dict, (str, os.PathLike)):
        source = Path(path_or_dict)
        data = read_json(source)
    else:
        raise TypeError(f"load_config expects a path or a mapping, got {type(path_or_dict).__name__}")
    schema = schemas()
    schema.validate(data)
    for message in schema.drop_deprecated(data):
        warnings.warn(message, LegacyKeyWarning, stacklevel=2)
    _normalize(data)
    training = data.get("bootstrapNAS", {}).get("training", {})
    schedule_defaulted = "list_stage_descriptions" not in training.get("schedule", {})
    schema.fill_defaults(data)
    schema.validate(data)  # defaults and normalised forms must satisfy the schema too
    check_config(data, schedule_defaulted)
    config = Config(data)
    config.source = source
    return config
