"""Typed, frozen views of the config sections: what each stage takes instead of a dict.

``load_config(...)`` validates everything once (schema, cross-key rules, registry names) and builds these; a stage
reads ``cfg.sections.search`` (etc.). Field names are the JSON keys of the section, nested objects are nested sections,
arrays are tuples and free-form objects ``FrozenDict``s; a field whose key the schema gives no default is ``None``
when absent. ``to_json()`` gives back exactly the loaded (default-filled) JSON of the section.

Code that builds options without a file uses ``SearchSection.from_json({"num_evals": 40})`` (schema defaults filled,
everything validated, errors name ``bootstrapNAS.search.num_evals``) or ``section.replace(num_evals=40)``.

The search, generator and quality-report sections live in ``search_sections.py``; this module holds the rest and the
root ``Sections``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from nncf_bootstrapnas.config.frozen import FrozenDict, freeze, thaw
from nncf_bootstrapnas.config.search_sections import (
    DEPLOY,
    BatchNormAdaptation,
    GeneratorSection,
    QualitySection,
    SearchSection,
)
from nncf_bootstrapnas.config.section import S, Section, field_types

# ---- bootstrapNAS.training ------------------------------------------------------------------------------------------
TRAINING = "training.schema.json#"


@dataclass(frozen=True)
class StageSection(Section):
    """One progressive-shrinking stage (``schedule.list_stage_descriptions[i]``)."""

    SCHEMA = "training.schema.json#/$defs/stage"
    train_dims: tuple[str, ...]
    epochs: int
    depth_indicator: int
    width_indicator: int
    reorg_weights: bool
    bn_adapt: bool
    init_lr: float | None
    epochs_lr: int | None
    sample_rate: int


@dataclass(frozen=True)
class ScheduleSection(Section):
    list_stage_descriptions: tuple[StageSection, ...]


@dataclass(frozen=True)
class WidthSection(Section):
    SCHEMA = "training.schema.json#/$defs/width"
    min_width: int
    max_num_widths: int
    width_step: int
    width_multipliers: tuple[float, ...] | None
    filter_importance: str
    external_importance_path: str | None
    overwrite_groups: tuple[tuple[str, ...], ...] | None
    overwrite_groups_widths: tuple[tuple[int, ...], ...] | None


@dataclass(frozen=True)
class DepthSection(Section):
    SCHEMA = "training.schema.json#/$defs/depth"
    skipped_blocks: tuple[Any, ...] | None  # module names or (start, end) node-name pairs
    min_block_size: int
    max_block_size: int
    hw_fused_ops: bool
    sequential_blocks: bool


@dataclass(frozen=True)
class KernelSection(Section):
    SCHEMA = "training.schema.json#/$defs/kernel"
    max_num_kernels: int


@dataclass(frozen=True)
class ElasticitySection(Section):
    """``bootstrapNAS.training.elasticity``: which dimensions the supernet has and how their choices are made."""

    PATH = "bootstrapNAS.training.elasticity"
    SCHEMA = "training.schema.json#/$defs/elasticity"
    available_elasticity_dims: tuple[str, ...]
    ignored_scopes: str | tuple[str, ...] | None
    target_scopes: str | tuple[str, ...] | None
    width: WidthSection
    depth: DepthSection
    kernel: KernelSection


@dataclass(frozen=True)
class LRParams(Section):
    base_lr: float
    num_epochs: int | None
    warmup_epochs: int
    warmup_lr: float
    milestones: tuple[int, ...] | None
    gamma: float


@dataclass(frozen=True)
class LRScheduleSection(Section):
    type: str
    params: LRParams


@dataclass(frozen=True)
class DistillationSection(Section):
    """A knowledge-distillation entry (``bootstrapNAS.training.compression[i]``)."""

    SCHEMA = "compression.schema.json#/$defs/knowledge_distillation"
    algorithm: str
    type: str
    scale: float
    temperature: float


@dataclass(frozen=True)
class SamplingSection(Section):
    strategy: str
    num_random: int
    inplace_distillation: bool
    distillation_temperature: float
    subnet_loss_weight: float


@dataclass(frozen=True)
class TrainingSection(Section):
    """``bootstrapNAS.training``; ``schedule.list_stage_descriptions`` is always filled (derived from the available
    dimensions when the config has none)."""

    PATH = "bootstrapNAS.training"
    SCHEMA = TRAINING
    algorithm: str
    progressivity_of_elasticity: tuple[str, ...]
    batchnorm_adaptation: BatchNormAdaptation
    schedule: ScheduleSection
    elasticity: ElasticitySection
    lr_schedule: LRScheduleSection | None
    compression: tuple[DistillationSection, ...] | None
    train_steps: int | None
    epochs: int | None
    checkpoint_every_steps: int | None
    seed: int
    sampling: SamplingSection
    checkpoint_every_epochs: int

    @property
    def stages(self) -> tuple[StageSection, ...]:
        return self.schedule.list_stage_descriptions

    @property
    def distillation(self) -> DistillationSection | None:
        """The (last) knowledge-distillation entry, None without one."""
        return self.compression[-1] if self.compression else None


# ---- compression[] ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CompressionSection(Section):
    """One ``compression[i]`` entry: the registered ``algorithm`` and its other keys, as given (defaults filled)."""

    PATH = "compression[]"
    SCHEMA = "compression.schema.json#/$defs/entry"
    algorithm: str
    options: FrozenDict

    @classmethod
    def build(cls, data: Mapping[str, Any], path: str | None = None) -> CompressionSection:
        return cls(data["algorithm"], freeze({k: v for k, v in data.items() if k != "algorithm"}))

    def to_json(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, **thaw(self.options)}


# ---- top-level sections of nncf_bootstrapnas -----------------------------------------------------------------------
@dataclass(frozen=True)
class ExportSection(Section):
    PATH = "export"
    SCHEMA = DEPLOY + "export"
    formats: tuple[str, ...]
    int8: bool
    atol: float
    num_calibration_samples: int
    finetune_epochs: int
    finetune_lr: float


@dataclass(frozen=True)
class BenchmarkSection(Section):
    PATH = "benchmark"
    SCHEMA = DEPLOY + "benchmark"
    device: str
    time_budget_s: float
    warmup_iters: int
    num_threads: int | None
    batch_size: int
    inference_precision: str | None


@dataclass(frozen=True)
class Sections:
    """Every section of one loaded config (``cfg.sections``); training and search hold the defaults when the config
    has no ``bootstrapNAS`` section."""

    training: TrainingSection
    search: SearchSection
    compression: tuple[CompressionSection, ...]
    export: ExportSection
    benchmark: BenchmarkSection
    generator: GeneratorSection
    quality: QualitySection

    @property
    def elasticity(self) -> ElasticitySection:
        return self.training.elasticity

    @classmethod
    def build(cls, config: Mapping[str, Any]) -> Sections:
        """From a loaded (validated, default-filled) config."""
        bnas = config.get("bootstrapNAS")
        training = TrainingSection.build(bnas["training"]) if bnas else TrainingSection.from_json({})
        search = SearchSection.build(bnas["search"]) if bnas else SearchSection.from_json({})
        entries = config.get("compression", [])
        return cls(
            training=training,
            search=search,
            compression=tuple(CompressionSection.build(e, f"compression[{i}]") for i, e in enumerate(entries)),
            export=ExportSection.build(config["export"]),
            benchmark=BenchmarkSection.build(config["benchmark"]),
            generator=GeneratorSection.build(config["generator"]),
            quality=QualitySection.build(config["quality_report"]),
        )


def section_of(options: Any, cls: type[S], key: str | None = None) -> S:
    """The ``cls`` section of whatever a stage was given: the section itself, a loaded ``Config``, a full config
    dict (``bootstrapNAS.*`` or top-level ``key`` picked out), a bare section dict, or None (the defaults)."""
    if isinstance(options, cls):
        return options
    if options is None:
        return cls.from_json({})
    sections = getattr(options, "sections", None)
    if isinstance(sections, Sections):
        if cls is ElasticitySection:
            return sections.elasticity  # type: ignore[return-value]
        for f in fields(Sections):
            if field_types(Sections)[f.name] is cls:
                return getattr(sections, f.name)
        raise TypeError(f"a Config has no {cls.__name__} of its own; take it from the section that holds it")
    if not isinstance(options, Mapping):
        raise TypeError(f"expected a {cls.__name__}, a Config, a dict or None, got {type(options).__name__}")
    if cls.PATH.startswith("bootstrapNAS."):
        if "bootstrapNAS" not in options:
            return cls.from_json(options)
        return cls.from_json((options.get("bootstrapNAS") or {}).get(cls.PATH.split(".")[1]) or {})
    key = key or (cls.PATH if cls.PATH.isidentifier() else None)  # top-level sections: export, generator, ...
    if key is not None and _is_whole_config(options, cls, key):
        return cls.from_json(options.get(key) or {})
    return cls.from_json(options)


def _is_whole_config(options: Mapping[str, Any], cls: type, key: str) -> bool:
    """A dict holding ``key``, or only top-level config keys that are not keys of the section, is a whole config."""
    from nncf_bootstrapnas.config.schema import ROOT, schemas

    if key in options:
        return True
    top, own = set(schemas().docs[ROOT]["properties"]), {f.name for f in fields(cls)}
    return bool(options) and all(k in top and k not in own for k in options)


__all__ = [
    "BenchmarkSection",
    "CompressionSection",
    "DepthSection",
    "DistillationSection",
    "ElasticitySection",
    "ExportSection",
    "KernelSection",
    "LRParams",
    "LRScheduleSection",
    "SamplingSection",
    "ScheduleSection",
    "Section",
    "Sections",
    "StageSection",
    "TrainingSection",
    "WidthSection",
    "section_of",
]
