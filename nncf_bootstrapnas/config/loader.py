"""load_config: legacy NNCF JSON -> validated Config with every schema default filled in."""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nncf_bootstrapnas.config.constraints import parse_constraint
from nncf_bootstrapnas.config.errors import ConfigError
from nncf_bootstrapnas.config.names import (
    check_compression_names,
    check_names,
    check_quality_names,
    check_search_names,
    check_training_names,
)
from nncf_bootstrapnas.config.schema import ROOT, SEARCH, TRAINING, schemas
from nncf_bootstrapnas.config.sections import Sections
from nncf_bootstrapnas.config.semantics import (
    SEARCH_PATH,
    TRAINING_PATH,
    check_config,
    check_search,
    check_training,
    default_schedule,
)

if TYPE_CHECKING:
    import torch


class LegacyKeyWarning(DeprecationWarning):
    """A legacy key that is accepted but deprecated. Shown by default (plain DeprecationWarnings are hidden outside
    __main__, but users migrating NNCF configs need to see these)."""


warnings.filterwarnings("default", category=LegacyKeyWarning)

QUALITY = "deployment.schema.json#/$defs/quality_report"
COMPRESSION_ENTRY = "compression.schema.json#/$defs/entry"
STAGE_LIST = "training.schema.json#/properties/schedule/properties/list_stage_descriptions"


class Config(dict):
    """A loaded configuration: plain JSON data (json.dumps works), schema defaults filled, plus helpers.

    ``sections`` holds the typed, frozen sections every stage takes (``config.sections.search``, ...). It is a dict
    for legacy callers; a config edited after loading is validated again when its sections are next read.
    ``source`` is the file it was read from (None for dicts), for resolving relative paths.
    """

    source: Path | None = None

    @property
    def sections(self) -> Sections:
        """Typed sections of the current contents (re-validated, on a copy, if the dict was edited)."""
        key = _fingerprint(self)
        if self.__dict__.get("_sections_key") != key:
            data = copy.deepcopy(dict(self))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LegacyKeyWarning)
                complete(data)
            self._set_sections(Sections.build(data), key)
        return self.__dict__["_sections"]

    def _set_sections(self, sections: Sections, key: str | None = None) -> None:
        self.__dict__["_sections"] = sections
        self.__dict__["_sections_key"] = key if key is not None else _fingerprint(self)

    @property
    def has_bootstrapnas(self) -> bool:
        return "bootstrapNAS" in self

    @property
    def bootstrapnas_training(self) -> dict[str, Any]:
        """``bootstrapNAS.training``; without a bootstrapNAS section, a fresh dict of the defaults."""
        if "bootstrapNAS" in self:
            return self["bootstrapNAS"]["training"]
        return self.sections.training.to_json()

    @property
    def bootstrapnas_search(self) -> dict[str, Any]:
        """``bootstrapNAS.search``; without a bootstrapNAS section, a fresh dict of the defaults."""
        if "bootstrapNAS" in self:
            return self["bootstrapNAS"]["search"]
        return self.sections.search.to_json()

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


def _fingerprint(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, default=repr)


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
    _normalize_training(bnas.get("training", {}))
    _normalize_search(bnas.get("search", {}))


def _normalize_training(training: dict[str, Any], path: str = TRAINING_PATH) -> None:
    if isinstance(training.get("compression"), dict):
        training["compression"] = [training["compression"]]


def _normalize_search(search: dict[str, Any], path: str = SEARCH_PATH) -> None:
    if "constraints" in search:
        where = f"{path}.constraints"
        search["constraints"] = [parse_constraint(c, f"{where}[{i}]") for i, c in enumerate(search["constraints"])]
    points = search.get("aspiration_points")
    if points and not isinstance(points[0], list):
        search["aspiration_points"] = [points]


def _fill(schema: Any, data: dict[str, Any], loc: str, training: dict[str, Any] | None) -> bool:
    """Fill every schema default; a missing stage list is derived from the available dimensions. Returns whether
    the schedule was derived."""
    derived = training is not None and "list_stage_descriptions" not in (training.get("schedule") or {})
    schema.fill_defaults(data, loc)
    if derived:
        assert training is not None
        templates = schema.node(STAGE_LIST)["x-default-stages"]
        available = training["elasticity"]["available_elasticity_dims"]
        stages = default_schedule(available, training["progressivity_of_elasticity"], templates)
        training["schedule"]["list_stage_descriptions"] = stages
        schema.fill_defaults(data, loc)  # the stages' own defaults
    return derived


def complete(data: dict[str, Any]) -> list[str]:
    """Validate and complete a whole config in place; returns the legacy-key warnings to show.

    Order: schema, legacy keys, loaded forms, registry names, defaults (+ derived schedule), schema again (defaults
    and loaded forms must satisfy it too), rules that span several keys.
    """
    schema = schemas()
    schema.validate(data)
    messages = schema.drop_deprecated(data)
    _normalize(data)
    check_names(data)
    training = data["bootstrapNAS"].setdefault("training", {}) if isinstance(data.get("bootstrapNAS"), dict) else None
    derived = _fill(schema, data, ROOT + "#", training)
    schema.validate(data)
    check_config(data, derived)
    return messages


# Per-section hooks of complete_section: (normalise, names, cross-key rules)
def _section_hooks() -> dict[str, tuple[Any, Any, Any]]:
    return {
        TRAINING: (_normalize_training, check_training_names, lambda d, derived: check_training(d, derived)),
        SEARCH: (_normalize_search, check_search_names, lambda d, derived: check_search(d)),
        QUALITY: (None, check_quality_names, None),
        COMPRESSION_ENTRY: (None, lambda d, p: check_compression_names([d], p.removesuffix("[]")), None),
    }


def complete_section(loc: str, data: dict[str, Any], path: str) -> dict[str, Any]:
    """Validate and complete one bare section (e.g. ``bootstrapNAS.search`` given as a dict in code) in place."""
    schema = schemas()
    schema.validate(data, loc, prefix=path)
    for message in schema.drop_deprecated(data, loc, prefix=path):
        warnings.warn(message, LegacyKeyWarning, stacklevel=4)
    normalize, names, rules = _section_hooks().get(loc, (None, None, None))
    if normalize is not None:
        normalize(data, path)
    if names is not None:
        names(data, path)
    derived = _fill(schema, data, loc, data if loc == TRAINING else None)
    schema.validate(data, loc, prefix=path)
    if rules is not None:
        rules(data, derived)
    return data


def _read(path_or_dict: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[dict[str, Any], Path | None]:
    if isinstance(path_or_dict, Mapping):
        return copy.deepcopy(dict(path_or_dict)), None
    if isinstance(path_or_dict, (str, os.PathLike)):
        return read_json(path_or_dict), Path(path_or_dict)
    raise TypeError(f"load_config expects a path or a mapping, got {type(path_or_dict).__name__}")


def load_config(path_or_dict: str | os.PathLike[str] | Mapping[str, Any]) -> Config:
    """Read, validate and complete a configuration, and build its typed sections (``config.sections``).

    Accepts a path to a JSON file (comments and trailing commas allowed) or a mapping (copied, never modified).
    Everything is checked here, before any model is touched: the schema, rules across keys, and every registry name
    (training/compression/search algorithms, objectives, proxies). Raises ConfigError naming the JSON path of the
    first problem; warns (LegacyKeyWarning, a DeprecationWarning) once per deprecated legacy key, which is then
    dropped or renamed.
    """
    data, source = _read(path_or_dict)
    for message in complete(data):
        warnings.warn(message, LegacyKeyWarning, stacklevel=2)
    config = Config(data)
    config.source = source
    config._set_sections(Sections.build(config))
    return config
