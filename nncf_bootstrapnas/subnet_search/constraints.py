"""Inequality constraints such as ``"macs <= 50e6"`` or ``"accuracy >= ref_acc - acc_delta"``.

They reach pymoo as ``G <= 0`` (so the algorithms steer away from infeasible subnets instead of discarding them after
the fact). Each ``g`` is divided by ``max(|bound|, 1)`` so that MACs (1e6) and accuracy (1) constraints weigh alike in
pymoo's summed constraint violation; rows keep the unscaled ``metric - bound`` (or ``bound - metric``).
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

OPS = ("<=", ">=", "<", ">")
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_PATTERN = re.compile(r"^\s*([A-Za-z_][\w./-]*)\s*(<=|>=|<|>)\s*(.+?)\s*$")


class ConstraintError(ValueError):
    """A constraint that cannot be parsed or evaluated."""


@dataclass(frozen=True)
class Constraint:
    """``metric op bound`` where ``bound`` is a number or an arithmetic expression of search variables."""

    metric: str
    op: str
    bound: float | str

    @property
    def text(self) -> str:
        return f"{self.metric} {self.op} {self.bound}"

    @classmethod
    def parse(cls, spec: Any) -> Constraint:
        """From ``"latency_ms <= 2"``, ``{"objective": ..., "op": ..., "value": ...}`` or a ``Constraint``."""
        if isinstance(spec, Constraint):
            return spec
        if isinstance(spec, str):
            m = _PATTERN.match(spec)
            if not m:
                raise ConstraintError(
                    f"cannot parse constraint {spec!r}; expected '<objective> <op> <value>' with op in {OPS}"
                )
            metric, op, bound = m.groups()
        elif isinstance(spec, Mapping):
            missing = {"objective", "op", "value"} - set(spec)
            if missing:
                raise ConstraintError(f"constraint {dict(spec)!r} lacks {sorted(missing)}; keys: objective, op, value")
            metric, op, bound = str(spec["objective"]), str(spec["op"]), spec["value"]
        else:
            raise ConstraintError(f"a constraint must be a string or a dict, got {spec!r}")
        if op not in OPS:
            raise ConstraintError(f"constraint {spec!r}: operator {op!r} not allowed; allowed: {OPS}")
        if isinstance(bound, str):
            try:
                bound = float(bound)
            except ValueError:
                _expression(bound)  # syntax check now, values later
        elif isinstance(bound, bool) or not isinstance(bound, (int, float)):
            raise ConstraintError(f"constraint {spec!r}: value must be a number or an expression, got {bound!r}")
        return cls(metric, op, float(bound) if not isinstance(bound, str) else bound)

    def names(self) -> set[str]:
        """Variables the bound refers to (e.g. ``ref_acc``)."""
        if not isinstance(self.bound, str):
            return set()
        return {n.id for n in ast.walk(_expression(self.bound)) if isinstance(n, ast.Name)}

    def resolve(self, env: Mapping[str, float | None]) -> float:
        if not isinstance(self.bound, str):
            return float(self.bound)
        return float(_eval(_expression(self.bound).body, env, self.text))

    def g(self, value: float, env: Mapping[str, float | None]) -> float:
        """Unscaled violation: > 0 means infeasible."""
        bound = self.resolve(env)
        return float(value - bound) if self.op in ("<=", "<") else float(bound - value)

    def scale(self, env: Mapping[str, float | None]) -> float:
        return max(abs(self.resolve(env)), 1.0)


class ConstraintSet:
    """All constraints of a search with the environment their bounds are evaluated in."""

    def __init__(self, specs: Sequence[Any] = ()) -> None:
        self.constraints = [Constraint.parse(s) for s in specs]
        self.env: dict[str, float | None] = {}

    def __len__(self) -> int:
        return len(self.constraints)

    def __iter__(self):
        return iter(self.constraints)

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(c.metric for c in self.constraints))

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.constraints]

    def evaluate(self, values: Mapping[str, float]) -> tuple[list[float], list[float], bool]:
        """(unscaled g, scaled g for pymoo, feasible) of one measured row."""
        raw = [c.g(values[c.metric], self.env) for c in self.constraints]
        scaled = [g / c.scale(self.env) for g, c in zip(raw, self.constraints)]
        return raw, scaled, all(g <= 0 for g in raw)


def _expression(text: str) -> ast.Expression:
    try:
        return ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ConstraintError(f"constraint value {text!r} is not an arithmetic expression: {exc.msg}") from None


def _eval(node: ast.AST, env: Mapping[str, float | None], where: str) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise ConstraintError(f"constraint {where!r}: unknown name {node.id!r}; allowed: {sorted(env)}")
        if env[node.id] is None:
            raise ConstraintError(f"constraint {where!r}: {node.id} is not known (set it or measure 'accuracy')")
        return float(env[node.id])  # type: ignore[arg-type]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval(node.left, env, where), _eval(node.right, env, where))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval(node.operand, env, where)
        return -value if isinstance(node.op, ast.USub) else value
    raise ConstraintError(f"constraint {where!r}: only numbers, names, + - * / are allowed")
