"""Typed sections of the search-side config: ``bootstrapNAS.search`` (with its LINAS and proxy-prefilter options),
``generator`` and ``quality_report``; split from ``sections.py`` to keep both modules small. ``BatchNormAdaptation``
lives here because the search section holds it; the training section (``sections.py``) imports it from here.

``sections.py`` (the root ``Sections``, ``section_of``) imports this module, never the other way round.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nncf_bootstrapnas.config.constraints import Constraint
from nncf_bootstrapnas.config.errors import ConfigError
from nncf_bootstrapnas.config.frozen import freeze
from nncf_bootstrapnas.config.section import OBJECT_PLACEHOLDER, Section

SEARCH = "search.schema.json#"
DEPLOY = "deployment.schema.json#/$defs/"


# ---- shared by bootstrapNAS.training and bootstrapNAS.search ---------------------------------------------------------
@dataclass(frozen=True)
class BatchNormAdaptation(Section):
    SCHEMA = "training.schema.json#/$defs/batchnorm_adaptation"
    num_bn_adaptation_samples: int


# ---- bootstrapNAS.search -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinasSection(Section):
    initial_evals: int
    candidates_per_round: int
    inner_population: int
    inner_generations: int
    predictors: tuple[str, ...]
    ucb_kappa: float
    exploration_share: float
    deduplicate_equivalent: bool


@dataclass(frozen=True)
class PrefilterSection(Section):
    proxy: str
    keep_ratio: float


@dataclass(frozen=True)
class SearchSection(Section):
    """``bootstrapNAS.search``. ``objectives`` holds names (from a file) or, when built in code, also
    ``{"name": ..., **options}`` objects and objective instances; ``constraints`` are parsed ``Constraint``s."""

    PATH = "bootstrapNAS.search"
    SCHEMA = SEARCH
    algorithm: str
    num_evals: int
    population: int
    seed: int
    crossover_prob: float
    crossover_eta: float
    mutation_prob: float
    mutation_eta: float
    acc_delta: float
    ref_acc: float | None
    aspiration_points: tuple[tuple[float, ...], ...] | None
    epsilon: float
    weights: float | tuple[float, ...] | None
    extreme_points_as_ref_points: bool
    num_constraints: int
    batchnorm_adaptation: BatchNormAdaptation
    objectives: tuple[Any, ...]
    constraints: tuple[Constraint, ...]
    eval_subset_size: int | None
    num_workers: int
    linas: LinasSection
    hv_margin: float
    checkpoint_every: int
    proxy_prefilter: PrefilterSection | None

    @property
    def num_bn_adaptation_samples(self) -> int:
        return self.batchnorm_adaptation.num_bn_adaptation_samples

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None = None, path: str | None = None) -> SearchSection:
        """As ``Section.from_json``; objective objects (not names) are kept as given and checked when resolved."""
        data = dict(data or {})
        objectives = list(data.get("objectives") or [])
        objects = {i: o for i, o in enumerate(objectives) if not isinstance(o, (str, Mapping))}
        if objects:  # the schema knows names only: validate the rest with placeholders, then put the objects back
            data["objectives"] = [
                OBJECT_PLACEHOLDER.format(_objective_name(o)) if i in objects else o for i, o in enumerate(objectives)
            ]
        named = [i for i, o in enumerate(objectives) if isinstance(o, Mapping)]
        if named:
            data["objectives"] = [str(o.get("name")) if i in named else o for i, o in enumerate(data["objectives"])]
        section = super().from_json(data, path)
        if not objects and not named:
            return section
        mixed = tuple(
            freeze(objectives[i]) if i in named or i in objects else o for i, o in enumerate(section.objectives)
        )
        return dataclasses.replace(section, objectives=mixed)

    def to_json(self) -> dict[str, Any]:
        """As ``Section.to_json``; objective instances are recorded by name."""
        data = super().to_json()
        data["objectives"] = [o if isinstance(o, (str, Mapping)) else _objective_name(o) for o in data["objectives"]]
        return data

    def replace(self, **changes: Any) -> SearchSection:
        return super().replace(**{"objectives": self.objectives, **changes})


def _objective_name(obj: Any) -> str:
    name = getattr(obj, "name", None) or getattr(obj, "__name__", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{SearchSection.PATH}.objectives", f"objective {obj!r} has no name", obj)
    return name


# ---- top-level sections of nncf_bootstrapnas: generator, quality_report ----------------------------------------------
@dataclass(frozen=True)
class GeneratorSection(Section):
    PATH = "generator"
    SCHEMA = DEPLOY + "generator"
    constraint: str
    num_constraint_values: int
    epochs: int
    tau: float
    tau_decay: float
    lr: float
    constraint_weight: float
    hidden_dim: int
    steps_per_epoch: int
    tolerance: float
    over_penalty: float
    centre_pull: float
    noise_dim: int
    num_rows: int
    bn_samples: int


@dataclass(frozen=True)
class QualitySection(Section):
    PATH = "quality_report"
    SCHEMA = DEPLOY + "quality_report"
    num_subnets: int
    finetune_epochs: int
    top_k: int
    bn_samples: int | None
    finetune_lr: float
    proxies: tuple[str, ...]


__all__ = [
    "BatchNormAdaptation",
    "GeneratorSection",
    "LinasSection",
    "PrefilterSection",
    "QualitySection",
    "SearchSection",
]
