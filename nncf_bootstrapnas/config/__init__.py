"""Configuration: legacy NNCF JSON configs with a ``bootstrapNAS`` section, validated once against ``schemas/``.

    cfg = load_config("config.json")      # or a dict; every check (schema, rules, registry names) happens here
    cfg.sections.search.num_evals         # typed, frozen sections: what each stage takes
    cfg.sections.training.stages[0].train_dims
    cfg.bootstrapnas_training["schedule"]  # the same data as plain JSON (Config is a dict)
    inputs = cfg.example_inputs()

Every default lives in the JSON Schemas (``schemas/*.schema.json``); docs/config.md is generated from them by
``python -m nncf_bootstrapnas.config.docgen``.
"""

from nncf_bootstrapnas.config.constraints import Constraint, ConstraintError, parse_budget, parse_constraint
from nncf_bootstrapnas.config.errors import ConfigError
from nncf_bootstrapnas.config.frozen import FrozenDict
from nncf_bootstrapnas.config.loader import Config, LegacyKeyWarning, load_config, read_json
from nncf_bootstrapnas.config.schema import SchemaSet, schema_dir, schemas
from nncf_bootstrapnas.config.search_sections import GeneratorSection, QualitySection, SearchSection
from nncf_bootstrapnas.config.sections import (
    BenchmarkSection,
    CompressionSection,
    DistillationSection,
    ElasticitySection,
    ExportSection,
    Section,
    Sections,
    StageSection,
    TrainingSection,
    section_of,
)
from nncf_bootstrapnas.config.semantics import default_schedule, validate_stage_schedule

__all__ = [
    "BenchmarkSection",
    "CompressionSection",
    "Config",
    "ConfigError",
    "Constraint",
    "ConstraintError",
    "DistillationSection",
    "ElasticitySection",
    "ExportSection",
    "FrozenDict",
    "GeneratorSection",
    "LegacyKeyWarning",
    "QualitySection",
    "SchemaSet",
    "SearchSection",
    "Section",
    "Sections",
    "StageSection",
    "TrainingSection",
    "default_schedule",
    "load_config",
    "parse_budget",
    "parse_constraint",
    "read_json",
    "schema_dir",
    "schemas",
    "section_of",
    "validate_stage_schedule",
]
