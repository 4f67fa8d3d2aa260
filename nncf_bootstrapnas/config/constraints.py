"""The one constraint syntax: ``"macs <= 50e6"``, ``{"objective": "macs", "op": "<=", "value": 5e7}``, bounds that
are arithmetic of ``ref_acc`` / ``acc_delta`` (``"accuracy >= ref_acc - acc_delta"``), and generator budgets
(``"macs=40e6"`` or a bare number).

Parsed here once, for the config loader, ``search()`` and the generator alike; errors are ``ConstraintError`` (a
``ConfigError``) naming the JSON path.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nncf_bootstrapnas.config.errors import ConfigError

OPS = ("<=", ">=", "<", ">")
BOUND_NAMES = ("ref_acc", "acc_delta")  # names a bound may use; their values are known when the search runs
DEFAULT_PATH = "bootstrapNAS.search.constraints"
_NAME = r"[A-Za-z_][A-Za-z0-9_./\-]*"
_SPLIT = re.compile(r"^\s*(?P<objective>.*?)\s*(?P<op><=|>=|==|!=|=|<|>)\s*(?P<value>.*?)\s*$")
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


class ConstraintError(ConfigError):
    """A constraint that cannot be parsed or whose bound cannot be evaluated."""


@dataclass(frozen=True)
class Constraint:
    """``objective op value``; ``value`` is a number or an arithmetic expression of ``BOUND_NAMES``."""

    objective: str
    op: str
    value: float | str

    @property
    def metric(self) -> str:
        return self.objective

    @property
    def bound(self) -> float | str:
        return self.value

    @property
    def text(self) -> str:
        return f"{self.objective} {self.op} {self.value}"

    def to_json(self) -> dict[str, Any]:
        return {"objective": self.objective, "op": self.op, "value": self.value}

    @classmethod
    def parse(cls, spec: Any, path: str = DEFAULT_PATH, ops: tuple[str, ...] = OPS) -> Constraint:
        """From a string, an ``{objective, op, value}`` object or a ``Constraint``; ``ops`` are the allowed operators."""
        if isinstance(spec, Constraint):
            return spec
        if isinstance(spec, Mapping):
            missing = [k for k in ("objective", "op", "value") if k not in spec]
            if missing:
                raise ConstraintError(path, f"constraint {dict(spec)!r} lacks {missing}; keys: objective, op, value")
            objective, op, value = spec["objective"], spec["op"], spec["value"]
        elif isinstance(spec, str):
            match = _SPLIT.match(spec)
            if match is None or not match["value"]:
                reason = f"cannot parse constraint {spec!r}; expected '<objective> <op> <value>' with op one of {', '.join(ops)}"
                raise ConstraintError(path, reason, spec, list(ops))
            objective, op, value = match["objective"], match["op"], match["value"]
        else:
            raise ConstraintError(path, f"a constraint must be a string or an object, got {spec!r}", spec)
        if not isinstance(objective, str) or not re.fullmatch(_NAME, objective):
            reason = (
                f"objective name {objective!r} must start with a letter or '_' and contain only letters, digits, _ . -"
            )
            raise ConstraintError(path, reason, objective)
        if op not in ops:
            raise ConstraintError(path, f"operator {op!r} is not one of {', '.join(ops)}", op, list(ops))
        return cls(objective, op, _bound(value, objective, path))

    def names(self) -> set[str]:
        """Names the bound refers to (e.g. ``ref_acc``)."""
        if not isinstance(self.value, str):
            return set()
        return {n.id for n in ast.walk(_expression(self.value, DEFAULT_PATH)) if isinstance(n, ast.Name)}

    def resolve(self, env: Mapping[str, float | None]) -> float:
        """The bound's value, with the names taken from ``env``."""
        if not isinstance(self.value, str):
            return float(self.value)
        return float(_eval(_expression(self.value, DEFAULT_PATH).body, env, self.text))

    def g(self, value: float, env: Mapping[str, float | None]) -> float:
        """Unscaled violation: > 0 means infeasible."""
        bound = self.resolve(env)
        return float(value - bound) if self.op in ("<=", "<") else float(bound - value)

    def scale(self, env: Mapping[str, float | None]) -> float:
        return max(abs(self.resolve(env)), 1.0)


def parse_constraint(spec: str | Mapping[str, Any], path: str = DEFAULT_PATH) -> dict[str, Any]:
    """``"macs <= 50e6"`` or ``{"objective": "macs", "op": "<=", "value": 5e7}`` -> the loaded object form."""
    return Constraint.parse(spec, path).to_json()


def parse_budget(value: Any, expected: str, path: str = "constraint") -> float:
    """A generator budget: ``40e6``, ``"40e6"``, ``"macs=40e6"`` or ``"macs<=40e6"`` -> 40e6; the name, when given,
    must be ``expected``."""
    if isinstance(value, str) and re.search(r"[=<>]", value):
        c = Constraint.parse(value, path, ops=("=", "<="))
        if c.objective != expected:
            raise ConstraintError(path, f"{value!r}: this generator was trained for '{expected}', not '{c.objective}'")
        value = c.value
    if isinstance(value, bool) or not _is_number(value):
        raise ConstraintError(path, f"{value!r}: expected a number or '{expected}=VALUE' (e.g. '{expected}=40e6')")
    return float(value)


def _is_number(value: Any) -> bool:
    try:
        return not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _bound(value: Any, objective: str, path: str, names: tuple[str, ...] = BOUND_NAMES) -> float | str:
    """A finite number, or a checked expression string over ``names``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) and not _is_number(value):
        raise ConstraintError(path, f"bound {value!r} of constraint on {objective!r} is not a number", value)
    if not isinstance(value, str):
        number = float(value)
    else:
        try:
            number = float(value)
        except ValueError:
            used = {n.id for n in ast.walk(_expression(value, path)) if isinstance(n, ast.Name)}
            unknown = sorted(used - set(names))
            if unknown:
                allowed = ", ".join(names) or "none"
                reason = (
                    f"bound {value!r} of constraint on {objective!r}: unknown name {unknown[0]!r}; allowed: {allowed}"
                )
                raise ConstraintError(path, reason, value, list(names)) from None
            _eval(_expression(value, path).body, dict.fromkeys(names, 1.0), value)  # only numbers, names, + - * /
            return value.strip()
    if not math.isfinite(number):
        raise ConstraintError(path, f"bound {value!r} of constraint on {objective!r} is not a finite number", value)
    return number


def _expression(text: str, path: str) -> ast.Expression:
    try:
        return ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConstraintError(path, f"constraint value {text!r} is not an arithmetic expression: {exc.msg}") from None


def _eval(node: ast.AST, env: Mapping[str, float | None], where: str) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise ConstraintError(
                DEFAULT_PATH, f"constraint {where!r}: unknown name {node.id!r}; allowed: {sorted(env)}"
            )
        if env[node.id] is None:
            raise ConstraintError(
                DEFAULT_PATH, f"constraint {where!r}: {node.id} is not known (set it or measure 'accuracy')"
            )
        return float(env[node.id])  # type: ignore[arg-type]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval(node.left, env, where), _eval(node.right, env, where))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval(node.operand, env, where)
        return -value if isinstance(node.op, ast.USub) else value
    raise ConstraintError(DEFAULT_PATH, f"constraint {where!r}: only numbers, names, + - * / are allowed")


__all__ = ["BOUND_NAMES", "OPS", "Constraint", "ConstraintError", "parse_budget", "parse_constraint"]
