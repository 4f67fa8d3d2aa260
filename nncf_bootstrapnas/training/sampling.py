"""Which subnets a training step trains: legacy ``single`` random subnet, or the ``sandwich`` rule.

Sampling draws from the stage's search space with a numpy Generator seeded from ``(seed, step // sample_rate)`` only, so
it needs no state to resume and every DDP rank draws the same subnets without communicating.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nncf_bootstrapnas.config import ConfigError
from nncf_bootstrapnas.elasticity.search_space import SearchSpace, SubnetConfig

STRATEGIES = ("sandwich", "single")
_PATH = "bootstrapNAS.training.sampling"


@dataclass(frozen=True)
class SamplingSettings:
    """``sampling`` section. ``single`` is the legacy default: one random subnet per step."""

    strategy: str = "single"
    num_random: int = 2
    inplace_distillation: bool = True
    distillation_temperature: float = 1.0
    seed: int = 0
    subnet_loss_weight: float = 1.0

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None, seed: int | None) -> SamplingSettings:
        section = dict(section or {})
        allowed = ("strategy", "num_random", "inplace_distillation", "distillation_temperature", "subnet_loss_weight")
        unknown = sorted(set(section) - set(allowed))
        if unknown:
            raise ConfigError(f"{_PATH}.{unknown[0]}", f"unknown key; allowed: {', '.join(allowed)}", unknown[0])
        strategy = section.get("strategy", cls.strategy)
        if strategy not in STRATEGIES:
            reason = f"{strategy!r} is not one of {', '.join(STRATEGIES)}"
            raise ConfigError(f"{_PATH}.strategy", reason, strategy, STRATEGIES)
        num_random = section.get("num_random", cls.num_random)
        if isinstance(num_random, bool) or not isinstance(num_random, int) or num_random < 0:
            raise ConfigError(f"{_PATH}.num_random", f"{num_random!r} must be an integer >= 0", num_random)
        inplace = section.get("inplace_distillation", cls.inplace_distillation)
        if not isinstance(inplace, bool):
            raise ConfigError(f"{_PATH}.inplace_distillation", f"expected true or false, got {inplace!r}", inplace)
        temperature = section.get("distillation_temperature", cls.distillation_temperature)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature <= 0:
            reason = f"{temperature!r} must be a positive number"
            raise ConfigError(f"{_PATH}.distillation_temperature", reason, temperature)
        weight = section.get("subnet_loss_weight", cls.subnet_loss_weight)  # (0, 1]: checked by the schema at load
        seed = 0 if seed is None else seed
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError("bootstrapNAS.training.seed", f"{seed!r} must be an integer >= 0", seed)
        return cls(strategy, num_random, inplace, float(temperature), seed, subnet_loss_weight=float(weight))

    @property
    def subnets_per_step(self) -> int:
        return 1 if self.strategy == "single" else 2 + self.num_random

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "num_random": self.num_random,
            "inplace_distillation": self.inplace_distillation,
            "distillation_temperature": self.distillation_temperature,
            "seed": self.seed,
            "subnet_loss_weight": self.subnet_loss_weight,
        }


def step_rng(seed: int, key: int) -> np.random.Generator:
    """An independent, reproducible stream per (seed, key); identical on every process."""
    return np.random.default_rng([int(seed), int(key)])


def subnets_for_step(
    space: SearchSpace, settings: SamplingSettings, step: int, sample_rate: int = 1
) -> list[tuple[str, SubnetConfig]]:
    """``[(role, config), ...]`` for global step ``step``; roles are ``max``, ``min`` and ``random``.

    ``sandwich``: the maximum first (it is the in-place teacher), then the minimum, then ``num_random`` random subnets.
    A space with a single subnet (e.g. a stage whose dimensions have nothing elastic) trains just that subnet.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    rng = step_rng(settings.seed, step // max(1, sample_rate))
    if settings.strategy == "single":
        return [("random", space.sample(rng))]
    if space.size <= 1:
        return [("max", space.maximum())]
    subnets = [("max", space.maximum()), ("min", space.minimum())]
    subnets += [("random", space.sample(rng)) for _ in range(settings.num_random)]
    return subnets
