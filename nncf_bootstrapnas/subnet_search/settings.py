"""Search settings: the ``bootstrapNAS.search`` config section with defaults, legacy keys and explicit overrides.

Kept as one plain-JSON dataclass so that a checkpoint can record exactly what produced it and a resume can refuse an
incompatible continuation.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

SECTION = "bootstrapNAS.search"


@dataclass
class LinasSettings:
    """LINAS: real evaluations guided by predictors that are refitted every round."""

    initial_evals: int = 20
    candidates_per_round: int = 10
    inner_population: int = 50
    inner_generations: int = 30
    # Regressors compared by cross-validation for every predicted objective (see search/algorithms/predictors.py).
    predictors: list[str] = field(default_factory=lambda: ["ridge", "extra_trees", "gradient_boosting", "svr"])


@dataclass
class SearchSettings:
    """Every knob of a search; defaults as in schemas/search.schema.json (legacy ones, except the algorithm)."""

    algorithm: str = "LINAS"
    num_evals: int = 3000
    population: int = 40
    seed: int = 0
    crossover_prob: float = 0.9
    crossover_eta: float = 10.0
    mutation_prob: float = 0.02
    mutation_eta: float = 3.0
    acc_delta: float = 1.0
    ref_acc: float | None = None
    aspiration_points: list[list[float]] | None = None
    epsilon: float = 0.001
    weights: list[float] | None = None
    extreme_points_as_ref_points: bool = False
    num_constraints: int = 0  # legacy; the constraints list decides
    num_bn_adaptation_samples: int = 2000
    objectives: list[Any] = field(default_factory=lambda: ["accuracy", "macs"])
    constraints: list[Any] = field(default_factory=list)
    eval_subset_size: int | None = None
    num_workers: int = 1
    linas: LinasSettings = field(default_factory=LinasSettings)
    checkpoint_every: int = 1
    proxy_prefilter: dict[str, Any] | None = None
    hv_margin: float = 0.1  # reference point = nadir + margin in normalised objective space

    # ---- construction -----------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None = None, **overrides: Any) -> SearchSettings:
        """Settings from a loaded ``Config``, a full config dict, a bare search-section dict or nothing.

        ``overrides`` whose value is ``None`` are ignored, so ``search(..., num_evals=None)`` keeps the config value.
        """
        from nncf_bootstrapnas.config.schema import SEARCH, schemas

        section = {**schemas().defaults(SEARCH), **_search_section(config)}  # the schema is the source of defaults
        settings = cls()
        known = {f.name for f in dataclasses.fields(cls)} | {"batchnorm_adaptation"}
        for key, value in section.items():
            if key not in known:
                logger.warning("%s.%s is not a search setting and is ignored; known: %s", SECTION, key, sorted(known))
                continue
            settings._set(key, value, f"{SECTION}.{key}")
        for key, value in overrides.items():
            if value is None:
                continue
            if key not in known:
                raise TypeError(f"search() got an unknown setting {key!r}; allowed: {', '.join(sorted(known))}")
            settings._set(key, value, key)
        settings.validate()
        return settings

    def _set(self, key: str, value: Any, where: str) -> None:
        if key == "batchnorm_adaptation":
            if not isinstance(value, Mapping):
                raise ValueError(f"{where} must be an object like {{'num_bn_adaptation_samples': 2000}}, got {value!r}")
            if value.get("num_bn_adaptation_samples") is not None:
                self.num_bn_adaptation_samples = int(value["num_bn_adaptation_samples"])
            return
        if key == "linas":
            self.linas = _linas(value, where)
            return
        if key == "ref_acc" and value is not None and float(value) < 0:
            value = None  # legacy default -1 meant "not set"
        setattr(self, key, copy.deepcopy(value) if isinstance(value, (list, dict)) else value)

    def validate(self) -> None:
        """Reject values that would only fail deep inside pymoo, naming the setting and what is allowed."""
        checks = [
            ("num_evals", self.num_evals >= 1, "an integer >= 1"),
            ("population", self.population >= 1, "an integer >= 1"),
            ("num_workers", self.num_workers >= 1, "an integer >= 1"),
            ("checkpoint_every", self.checkpoint_every >= 1, "an integer >= 1"),
            ("crossover_prob", 0.0 <= self.crossover_prob <= 1.0, "a probability in [0, 1]"),
            ("mutation_prob", 0.0 <= self.mutation_prob <= 1.0, "a probability in [0, 1]"),
            ("acc_delta", self.acc_delta >= 0, "a number >= 0"),
            ("hv_margin", self.hv_margin > 0, "a number > 0"),
            ("num_bn_adaptation_samples", self.num_bn_adaptation_samples >= 0, "an integer >= 0"),
            (
                "eval_subset_size",
                self.eval_subset_size is None or self.eval_subset_size >= 1,
                "null or an integer >= 1",
            ),
            ("linas.initial_evals", self.linas.initial_evals >= 1, "an integer >= 1"),
            ("linas.candidates_per_round", self.linas.candidates_per_round >= 1, "an integer >= 1"),
            ("linas.inner_population", self.linas.inner_population >= 2, "an integer >= 2"),
            ("linas.inner_generations", self.linas.inner_generations >= 1, "an integer >= 1"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                value = getattr(self.linas, name[6:]) if name.startswith("linas.") else getattr(self, name)
                raise ValueError(f"{SECTION}.{name} = {value!r} is not allowed; expected {allowed}")
        pf = self.proxy_prefilter
        if pf is not None:
            if not isinstance(pf, Mapping) or not isinstance(pf.get("proxy"), str) or set(pf) - {"proxy", "keep_ratio"}:
                raise ValueError(
                    f"{SECTION}.proxy_prefilter must be {{'proxy': <name in registry.ZERO_COST_PROXIES>, "
                    f"'keep_ratio': (0, 1]}}, got {pf!r}"
                )
            ratio = float(pf.get("keep_ratio", 0.5))
            if not 0.0 < ratio <= 1.0:
                raise ValueError(f"{SECTION}.proxy_prefilter.keep_ratio = {ratio!r} is not allowed; expected (0, 1]")
            self.proxy_prefilter = {"proxy": pf["proxy"], "keep_ratio": ratio}
        if not isinstance(self.objectives, list) or not self.objectives:
            raise ValueError(f"{SECTION}.objectives must be a non-empty list, got {self.objectives!r}")
        if not isinstance(self.constraints, list):
            raise ValueError(f"{SECTION}.constraints must be a list, got {self.constraints!r}")
        for attr in ("num_evals", "population", "seed", "num_workers", "checkpoint_every"):
            setattr(self, attr, int(getattr(self, attr)))

    # ---- plain JSON ---------------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["objectives"] = [o if isinstance(o, (str, dict)) else getattr(o, "name", repr(o)) for o in self.objectives]
        data["constraints"] = [c if isinstance(c, (str, dict)) else str(c) for c in self.constraints]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchSettings:
        data = dict(data)
        linas = _linas(data.pop("linas", {}), f"{SECTION}.linas")
        return cls(**data, linas=linas)


def _linas(value: Any, where: str) -> LinasSettings:
    if isinstance(value, LinasSettings):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be an object with keys initial_evals, candidates_per_round, ...; got {value!r}")
    allowed = {f.name for f in dataclasses.fields(LinasSettings)}
    unknown = set(value) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return LinasSettings(**{**dataclasses.asdict(LinasSettings()), **dict(value)})


def _search_section(config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The search section of whatever the caller passed (a Config exposes it as a property)."""
    if config is None:
        return {}
    section = getattr(config, "bootstrapnas_search", None)
    if section is not None:
        return section
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a Config, a dict or None, got {type(config).__name__}")
    if "bootstrapNAS" in config:
        return config["bootstrapNAS"].get("search", {}) or {}
    return config
