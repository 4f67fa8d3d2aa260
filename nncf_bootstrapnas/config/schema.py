"""The JSON Schemas in ``schemas/``: loading, validation and a walker that applies schema annotations to data.

The schemas are the single source of defaults: the walker fills every ``default`` (also inside array items and
``if``/``then`` branches) and handles ``deprecated`` legacy keys, so no default value is repeated in Python.
"""

from __future__ import annotations

import copy
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from nncf_bootstrapnas.config.errors import ConfigError, format_path, from_validation_error

ROOT = "config.schema.json"
TRAINING = "training.schema.json#"
SEARCH = "search.schema.json#"

# visit(instance, schema_location, properties, json_path) is called for every object and every subschema with
# "properties" that applies to it.
ObjectVisitor = Callable[[dict, str, dict, list], None]


def schema_dir() -> Path:
    """``schemas/`` of a source checkout (editable install), else the copy setup.py installs under sys.prefix."""
    candidates = [
        Path(__file__).resolve().parents[2] / "schemas",
        Path(sys.prefix) / "share" / "nncf_bootstrapnas" / "schemas",
    ]
    for directory in candidates:
        if (directory / ROOT).is_file():
            return directory
    raise FileNotFoundError(f"{ROOT} not found in any of: {', '.join(map(str, candidates))}")


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


class SchemaSet:
    """All schema files of one directory, addressed by locations ``file.schema.json#/json/pointer``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.docs: dict[str, Any] = {}
        for path in sorted(directory.glob("*.schema.json")):
            self.docs[path.name] = json.loads(path.read_text(encoding="utf-8"))
            Draft202012Validator.check_schema(self.docs[path.name])
        resources = [(n, Resource.from_contents(d, default_specification=DRAFT202012)) for n, d in self.docs.items()]
        self.registry = Registry().with_resources(resources)
        self._validators: dict[str, Draft202012Validator] = {}

    # -- addressing ---------------------------------------------------------------------------------------------
    def node(self, loc: str) -> Any:
        doc, _, pointer = loc.partition("#")
        node = self.docs[doc]
        for part in pointer.split("/")[1:]:
            node = node[int(part)] if isinstance(node, list) else node[_unescape(part)]
        return node

    @staticmethod
    def join(loc: str, ref: str) -> str:
        target = urljoin(loc.partition("#")[0], ref)
        return target if "#" in target else target + "#"

    @staticmethod
    def child(loc: str, *parts: str | int) -> str:
        return loc + "".join(f"/{_escape(str(p))}" for p in parts)

    def resolved(self, loc: str) -> dict:
        """The node at ``loc`` with its ``$ref`` chain merged in (the referring node's own keys win)."""
        node = self.node(loc)
        if not isinstance(node, dict) or "$ref" not in node:
            return node
        merged = dict(self.resolved(self.join(loc, node["$ref"])))
        merged.update({k: v for k, v in node.items() if k != "$ref"})
        return merged

    # -- validation ---------------------------------------------------------------------------------------------
    def validator(self, loc: str) -> Draft202012Validator:
        if loc not in self._validators:
            self._validators[loc] = Draft202012Validator({"$ref": loc}, registry=self.registry)
        return self._validators[loc]

    def is_valid(self, instance: Any, loc: str) -> bool:
        return self.validator(loc).is_valid(instance)

    def validate(self, instance: Any, loc: str = ROOT + "#", prefix: str = "") -> None:
        """Raise one ConfigError for the most relevant schema violation; ``prefix``: the instance's JSON path."""
        error = best_match(self.validator(loc).iter_errors(instance))
        if error is not None:
            raise from_validation_error(error, prefix)

    # -- walking ------------------------------------------------------------------------------------------------
    def applicable(self, loc: str, instance: Any) -> list[str]:
        """``loc`` plus every subschema that applies to ``instance`` through $ref, allOf, if/then/else and the
        first matching anyOf/oneOf alternative."""
        out: list[str] = []

        def visit(here: str) -> None:
            node = self.node(here)
            if not isinstance(node, dict):
                return
            out.append(here)
            if "$ref" in node:
                visit(self.join(here, node["$ref"]))
            for i in range(len(node.get("allOf", []))):
                visit(self.child(here, "allOf", i))
            if "if" in node:
                branch = "then" if self.is_valid(instance, self.child(here, "if")) else "else"
                if branch in node:
                    visit(self.child(here, branch))
            for keyword in ("anyOf", "oneOf"):
                for i in range(len(node.get(keyword, []))):
                    if self.is_valid(instance, self.child(here, keyword, i)):
                        visit(self.child(here, keyword, i))
                        break

        visit(loc)
        return out

    def walk(self, instance: Any, loc: str, visit: ObjectVisitor, path: list | None = None) -> Any:
        """Call ``visit`` on every object of ``instance`` (depth first, parents before children); returns the
        instance, with integral floats turned into ints where the schema wants an integer."""
        path = path or []
        locs = self.applicable(loc, instance)
        nodes = [(here, self.node(here)) for here in locs]
        if isinstance(instance, float) and instance.is_integer():
            if any(n.get("type") == "integer" for _, n in nodes):
                return int(instance)
        if isinstance(instance, dict):
            for here, node in nodes:
                if isinstance(node.get("properties"), dict):
                    visit(instance, here, node["properties"], path)
            for here, node in nodes:
                for key in node.get("properties", {}):
                    if key in instance:
                        sub = self.child(here, "properties", key)
                        instance[key] = self.walk(instance[key], sub, visit, [*path, key])
        elif isinstance(instance, list):
            for here, node in nodes:
                if isinstance(node.get("items"), dict):
                    for i, item in enumerate(instance):
                        instance[i] = self.walk(item, self.child(here, "items"), visit, [*path, i])
        return instance

    def fill_defaults(self, instance: Any, loc: str = ROOT + "#") -> Any:
        """Insert a copy of every schema default whose key is missing (recursively, so defaulted objects get
        their own defaults)."""

        def visit(obj: dict, _loc: str, properties: dict, _path: list) -> None:
            for key, prop in properties.items():
                if key not in obj and isinstance(prop, dict) and "default" in prop:
                    obj[key] = copy.deepcopy(prop["default"])

        return self.walk(instance, loc, visit)

    def defaults(self, loc: str) -> dict:
        """A section filled with its defaults only, e.g. ``defaults(SEARCH)``."""
        return self.fill_defaults({}, loc)

    def drop_deprecated(self, instance: Any, loc: str = ROOT + "#", prefix: str = "") -> list[str]:
        """Remove ``deprecated`` keys (moving ``x-renamed-to`` ones to their new name when that is unset) and
        return one warning message per key."""
        messages: list[str] = []

        def visit(obj: dict, _loc: str, properties: dict, path: list) -> None:
            for key in list(obj):
                prop = properties.get(key)
                if not (isinstance(prop, dict) and prop.get("deprecated")):
                    continue
                where = format_path([*([prefix] if prefix else []), *path, key])
                value = obj.pop(key)
                new = prop.get("x-renamed-to")
                if new and new not in obj:
                    obj[new] = value
                    what = f"renamed to '{new}'; using {value!r} as {new}"
                elif new:
                    what = f"renamed to '{new}'; ignored because '{new}' is also set"
                else:
                    what = "ignored"
                messages.append(f"{where}: legacy key '{key}' is deprecated and {what}. {prop.get('description', '')}")

        self.walk(instance, loc, visit)
        return messages


@functools.cache
def schemas() -> SchemaSet:
    """The process-wide SchemaSet (schemas are read once)."""
    try:
        return SchemaSet(schema_dir())
    except FileNotFoundError as exc:
        raise ConfigError("", str(exc)) from None
