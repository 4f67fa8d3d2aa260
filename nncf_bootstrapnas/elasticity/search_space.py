"""The space of sub-networks of a super-network, as plain JSON configs and integer vectors.

A subnet config is ``{"width": {group: channels}, "depth": {group: skipped}, "kernel": {conv: size}}``. Every variable
lists its choices from the maximum (index 0) to the minimum, so the integer encoding used by the search is "how many
steps down from the maximum" and index 0 everywhere is the full model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

DIMENSIONS = ("kernel", "width", "depth")
SubnetConfig = dict[str, dict[str, int]]


class SearchSpaceError(ValueError):
    """A subnet config that does not belong to the search space."""


@dataclass(frozen=True)
class Variable:
    """One searchable choice: a width group, a block group's depth or a convolution's kernel."""

    dim: str
    key: str
    choices: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"{self.dim}/{self.key}"

    @property
    def maximum(self) -> int:
        return self.choices[0]

    @property
    def minimum(self) -> int:
        return self.choices[-1]

    def to_json(self) -> dict[str, Any]:
        return {"dim": self.dim, "key": self.key, "choices": list(self.choices)}


class SearchSpace:
    """An ordered list of variables; a disabled dimension is simply absent (it stays at its maximum)."""

    def __init__(self, variables: Iterable[Variable], fixed: Mapping[str, Mapping[str, int]] | None = None) -> None:
        self.variables: list[Variable] = [v for v in variables]
        for v in self.variables:
            if v.dim not in DIMENSIONS and not v.dim:
                raise SearchSpaceError(f"variable {v.key!r} has no dimension")
            if not v.choices:
                raise SearchSpaceError(f"variable {v.name} has no choices")
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise SearchSpaceError("duplicate variable names in search space")
        self._index = {v.name: i for i, v in enumerate(self.variables)}
        # Values of variables frozen by a stage restriction (e.g. depth before the depth stage): part of every config.
        self.fixed: dict[str, dict[str, int]] = {d: dict(vals) for d, vals in (fixed or {}).items()}

    # ---- basic properties -------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.variables)

    def __repr__(self) -> str:
        dims = {d: sum(v.dim == d for v in self.variables) for d in self.dims}
        return f"SearchSpace({dims}, size={self.size})"

    @property
    def dims(self) -> list[str]:
        return sorted({v.dim for v in self.variables}, key=lambda d: (DIMENSIONS + (d,)).index(d))

    @property
    def size(self) -> int:
        return math.prod(len(v.choices) for v in self.variables)

    @property
    def lower_bounds(self) -> np.ndarray:
        return np.zeros(len(self.variables), dtype=int)

    @property
    def upper_bounds(self) -> np.ndarray:
        return np.array([len(v.choices) - 1 for v in self.variables], dtype=int)

    def variable(self, name: str) -> Variable:
        return self.variables[self._index[name]]

    # ---- configs ----------------------------------------------------------------------------------------------------
    def _empty(self) -> SubnetConfig:
        cfg: SubnetConfig = {d: dict(vals) for d, vals in self.fixed.items()}
        for v in self.variables:
            cfg.setdefault(v.dim, {})
        return cfg

    def decode(self, vector: Iterable[int]) -> SubnetConfig:
        vec = [int(i) for i in vector]
        if len(vec) != len(self.variables):
            raise SearchSpaceError(f"encoded config has {len(vec)} entries; the search space has {len(self.variables)}")
        cfg = self._empty()
        for v, i in zip(self.variables, vec):
            if not 0 <= i < len(v.choices):
                raise SearchSpaceError(f"{v.name}: index {i} out of range 0..{len(v.choices) - 1}")
            cfg[v.dim][v.key] = v.choices[i]
        return cfg

    def encode(self, config: Mapping[str, Mapping[str, int]]) -> np.ndarray:
        cfg = self.validate(config)
        return np.array([v.choices.index(cfg[v.dim][v.key]) for v in self.variables], dtype=int)

    def maximum(self) -> SubnetConfig:
        return self.decode([0] * len(self.variables))

    def minimum(self) -> SubnetConfig:
        return self.decode(self.upper_bounds)

    def sample(self, rng: np.random.Generator) -> SubnetConfig:
        return self.decode([int(rng.integers(0, len(v.choices))) for v in self.variables])

    def validate(self, config: Mapping[str, Mapping[str, int]] | None) -> SubnetConfig:
        """Return a complete config: missing variables take their maximum; anything unknown or not allowed fails."""
        if config is None:
            return self.maximum()
        if not isinstance(config, Mapping):
            raise SearchSpaceError(f"subnet config must be a mapping of dimension -> {{name: value}}, got {config!r}")
        cfg = self.maximum()
        for dim, values in config.items():
            if not isinstance(values, Mapping):
                raise SearchSpaceError(f"subnet config['{dim}'] must be a mapping of name -> value, got {values!r}")
            for key, value in values.items():
                name = f"{dim}/{key}"
                if name not in self._index:
                    if self.fixed.get(dim, {}).get(key) == value:
                        continue
                    if dim not in DIMENSIONS and dim not in self.dims:
                        raise SearchSpaceError(
                            f"unknown dimension '{dim}' in subnet config; allowed: {', '.join(self.dims) or 'none'}"
                        )
                    if key in self.fixed.get(dim, {}):
                        raise SearchSpaceError(
                            f"{name} is fixed at {self.fixed[dim][key]} in this search space, got {value!r}"
                        )
                    known = [v.key for v in self.variables if v.dim == dim]
                    hint = f"; known {dim} variables: {', '.join(known[:8])}{'...' if len(known) > 8 else ''}"
                    raise SearchSpaceError(f"unknown variable {name} in subnet config{hint if known else ''}")
                var = self.variables[self._index[name]]
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) not in var.choices:
                    allowed = ", ".join(str(c) for c in var.choices)
                    raise SearchSpaceError(f"{name}: {value!r} is not an allowed choice; allowed: {allowed}")
                cfg[dim][key] = int(value)
        return cfg

    # ---- restriction (progressive shrinking stages) -------------------------------------------------------------------
    def restrict(
        self,
        dims: Iterable[str],
        width_indicator: int | None = None,
        depth_indicator: int | None = None,
        kernel_indicator: int | None = None,
    ) -> SearchSpace:
        """The stage's space: only ``dims`` vary; an indicator ``k`` keeps the ``k`` largest choices of that dimension.

        Legacy semantics: ``width_indicator`` is the number of largest widths available per layer and ``depth_indicator``
        the number of trailing blocks of each block group that may be skipped (legacy NNCF's
        ``len(group) - index > depth_indicator`` test): depth choices ``0 .. depth_indicator``.
        """
        enabled = set(dims)
        indicators = {"width": width_indicator, "depth": depth_indicator, "kernel": kernel_indicator}
        variables: list[Variable] = []
        fixed: dict[str, dict[str, int]] = {d: dict(vals) for d, vals in self.fixed.items()}
        for v in self.variables:
            if v.dim not in enabled:
                fixed.setdefault(v.dim, {})[v.key] = v.maximum
                continue
            k = indicators.get(v.dim)
            if k is not None and v.dim == "depth":
                k += 1  # depth choices are "blocks skipped": 0 .. depth_indicator
            choices = v.choices if k is None or k <= 0 else v.choices[:k]
            if len(choices) == 1:
                fixed.setdefault(v.dim, {})[v.key] = choices[0]
            else:
                variables.append(Variable(v.dim, v.key, tuple(choices)))
        return SearchSpace(variables, fixed)

    # ---- plain-JSON state -------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"variables": [v.to_json() for v in self.variables], "fixed": self.fixed}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchSpace:
        variables = [Variable(d["dim"], d["key"], tuple(int(c) for c in d["choices"])) for d in data["variables"]]
        return cls(variables, data.get("fixed"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_json() == other.to_json()

    def __hash__(self) -> int:  # spaces are used as cache keys only through fingerprints
        return hash(tuple(v.name for v in self.variables))
