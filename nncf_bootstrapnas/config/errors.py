"""ConfigError and the translation of jsonschema errors into one short message that names the JSON path.

jsonschema's own messages repeat whole sub-schemas; users need: where (``a.b[2].c``), what was found, what is allowed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from jsonschema.exceptions import ValidationError


class ConfigError(ValueError):
    """An invalid configuration: ``path`` is the JSON path (``a.b[2].c``, '' for the file/root), ``value`` what was
    found there, ``allowed`` the accepted values when they are a short list (else None)."""

    def __init__(self, path: str, reason: str, value: Any = None, allowed: Sequence[Any] | None = None) -> None:
        self.path = path
        self.reason = reason
        self.value = value
        self.allowed = list(allowed) if allowed is not None else None
        super().__init__(f"{path}: {reason}" if path else reason)


def format_path(parts: Iterable[str | int]) -> str:
    """``["a", "b", 2, "c"]`` -> ``a.b[2].c``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def join_path(path: str, part: str | int) -> str:
    return format_path([path, part]) if path else format_path([part])


def suggest(word: Any, choices: Iterable[Any]) -> str:
    """' (did you mean 'width'?)' for a near miss, else ''."""
    if not isinstance(word, str):
        return ""
    names = {str(c).lower(): str(c) for c in choices}  # letter case is the most common slip ('nsga2')
    close = difflib.get_close_matches(word.lower(), list(names), n=1, cutoff=0.6)
    return f" (did you mean {names[close[0]]!r}?)" if close else ""


def short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_JSON_TYPES = {"object": "an object", "array": "an array", "string": "a string", "integer": "an integer"}
_JSON_TYPES |= {"number": "a number", "boolean": "true or false", "null": "null"}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _plural(text: str) -> str:
    """'an object' -> 'objects', 'an array of numbers' -> 'arrays of numbers'."""
    text = text.removeprefix("an ").removeprefix("a ")
    head, sep, tail = text.partition(" of ")
    return f"{head}s{sep}{tail}" if head in ("object", "string", "number", "integer", "array") else text


def _describe(schema: Any) -> str:
    """A few words for one alternative of anyOf/oneOf."""
    if not isinstance(schema, dict):
        return "?"
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    if "$ref" in schema:
        return "an object"  # every $ref'ed alternative in our schemas is an object
    kind = schema.get("type", "value")
    if kind == "array" and isinstance(schema.get("items"), dict):
        return "an array of " + _plural(_describe(schema["items"]))
    return _JSON_TYPES.get(kind, str(kind)) if isinstance(kind, str) else " or ".join(kind)


def from_validation_error(error: ValidationError, prefix: str = "") -> ConfigError:
    """One ConfigError from a (best-matching) jsonschema error; ``prefix`` is the JSON path of the instance."""
    parts = ([prefix] if prefix else []) + list(error.absolute_path)
    path = format_path(parts)
    kind, value, expected, schema = error.validator, error.instance, error.validator_value, error.schema
    shown = short_repr(value)
    if isinstance(schema, dict) and "x-message" in schema and kind != "type":
        return ConfigError(path, f"{shown} is invalid: {schema['x-message']}", value)
    if kind == "enum":
        allowed = list(expected)
        reason = f"{shown} is not one of {', '.join(map(str, allowed))}{suggest(value, allowed)}"
        return ConfigError(path, reason, value, allowed)
    if kind == "const":
        return ConfigError(path, f"{shown} must be {expected!r}", value, [expected])
    if kind == "type":
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_JSON_TYPES.get(n, n) for n in names)
        return ConfigError(path, f"expected {wanted}, got {json_type(value)} {shown}", value, names)
    if kind == "additionalProperties":
        props = schema.get("properties", {})
        allowed = [k for k, v in props.items() if not (isinstance(v, dict) and v.get("deprecated"))]
        extra = next((k for k in value if k not in props), None) if isinstance(value, dict) else None
        if extra is not None:
            reason = f"unknown key {extra!r}{suggest(extra, allowed)}; allowed: {', '.join(allowed)}"
            return ConfigError(join_path(path, extra), reason, extra, allowed)
    if kind == "required":
        missing = [k for k in expected if isinstance(value, dict) and k not in value] or list(expected)
        return ConfigError(path, f"missing required key {missing[0]!r}", None, list(expected))
    bounds = {
        "minimum": "is less than the minimum {}",
        "maximum": "is greater than the maximum {}",
        "exclusiveMinimum": "must be greater than {}",
        "exclusiveMaximum": "must be less than {}",
    }
    if kind in bounds:
        return ConfigError(path, f"{shown} {bounds[kind].format(expected)}", value)
    if kind in ("minItems", "maxItems"):
        word = "at least" if kind == "minItems" else "at most"
        return ConfigError(path, f"expected {word} {expected} item(s), got {len(value)}", value)
    if kind == "uniqueItems":
        dups = sorted({short_repr(v) for i, v in enumerate(value) if v in value[:i]})
        return ConfigError(path, f"contains duplicates: {', '.join(dups)}", value)
    if kind == "minLength":
        return ConfigError(
            path, "must not be empty" if expected == 1 else f"needs at least {expected} characters", value
        )
    if kind in ("anyOf", "oneOf"):
        forms = " or ".join(_describe(s) for s in expected)
        return ConfigError(path, f"{shown} matches none of the accepted forms: {forms}", value)
    if kind == "not":
        return ConfigError(path, f"{shown} is not allowed here", value)
    return ConfigError(path, error.message, value)
