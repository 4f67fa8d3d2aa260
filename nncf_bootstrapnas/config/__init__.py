"""Configuration: legacy NNCF JSON configs with a ``bootstrapNAS`` section, validated against ``schemas/``.

    cfg = load_config("config.json")      # or a dict
    cfg.bootstrapnas_training["schedule"]["list_stage_descriptions"][0]["epochs"]
    inputs = cfg.example_inputs()

Every default lives in the JSON Schemas (``schemas/*.schema.json``); docs/config.md is generated from them by
``python -m nncf_bootstrapnas.config.docgen``.
"""

from nncf_bootstrapnas.config.errors import ConfigError
from nncf_bootstrapnas.config.loader import Config, LegacyKeyWarning, load_config, read_json
from nncf_bootstrapnas.config.schema import SchemaSet, schema_dir, schemas
from nncf_bootstrapnas.config.semantics import parse_constraint, validate_stage_schedule

__all__ = [
    "Config",
    "ConfigError",
    "LegacyKeyWarning",
    "SchemaSet",
    "load_config",
    "parse_constraint",
    "read_json",
    "schema_dir",
    "schemas",
    "validate_stage_schedule",
]
