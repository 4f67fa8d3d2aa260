"""``Section``: the base of the typed config sections (see ``sections.py``): build from loaded JSON, validate a bare
dict, give back the JSON, make validated copies."""

from __future__ import annotations

import copy
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, ClassVar, TypeVar

from nncf_bootstrapnas.config.constraints import Constraint
from nncf_bootstrapnas.config.errors import ConfigError, join_path, suggest
from nncf_bootstrapnas.config.frozen import freeze, thaw

S = TypeVar("S", bound="Section")
OBJECT_PLACEHOLDER = "<objective instance {}>"  # stands for an objective object while its section is validated


class Section:
    """Base of every section: ``PATH`` is its JSON path in a config, ``SCHEMA`` its schema location."""

    PATH: ClassVar[str] = ""
    SCHEMA: ClassVar[str] = ""

    @classmethod
    def build(cls: type[S], data: Mapping[str, Any], path: str | None = None) -> S:
        """From validated, default-filled JSON (what ``load_config`` holds); no checks."""
        path = cls.PATH if path is None else path
        hints = field_types(cls)
        return cls(**{f.name: _convert(hints[f.name], data.get(f.name), join_path(path, f.name)) for f in fields(cls)})

    @classmethod
    def from_json(cls: type[S], data: Mapping[str, Any] | None = None, path: str | None = None) -> S:
        """Validate a bare section (schema, defaults, cross-key rules, registry names), then build it."""
        from nncf_bootstrapnas.config.loader import complete_section

        path = cls.PATH if path is None else path
        return cls.build(complete_section(cls.SCHEMA, copy.deepcopy(dict(data or {})), path), path)

    def to_json(self) -> dict[str, Any]:
        """The section's JSON (absent optional keys stay absent)."""
        return {f.name: thaw(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None}

    def replace(self: S, **changes: Any) -> S:
        """A validated copy with some keys changed (JSON keys; nested sections as dicts or sections)."""
        known = [f.name for f in fields(self)]
        for key in changes:
            if key not in known:
                reason = f"unknown key {key!r}{suggest(key, known)}; allowed: {', '.join(known)}"
                raise ConfigError(join_path(self.PATH, key), reason, key, known)
        data = {**self.to_json(), **{k: thaw(v) for k, v in changes.items()}}
        return type(self).from_json({k: v for k, v in data.items() if v is not None}, self.PATH)


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(hint: Any, value: Any, path: str) -> Any:
    if value is None:
        return None
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return _convert(args[0], value, path)
    if isinstance(hint, type) and issubclass(hint, Section):
        return value if isinstance(value, hint) else hint.build(value, path)
    if typing.get_origin(hint) is tuple and args and isinstance(args[0], type):
        item = args[0]
        if issubclass(item, Section):
            return tuple(v if isinstance(v, item) else item.build(v, f"{path}[{i}]") for i, v in enumerate(value))
        if item is Constraint:
            return tuple(Constraint.parse(v, f"{path}[{i}]") for i, v in enumerate(value))
    return freeze(value)
