"""The schemas are the single source of defaults and docs: check the loader against the raw schema files."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from nncf_bootstrapnas.config import load_config
from nncf_bootstrapnas.config import schema as schema_module
from nncf_bootstrapnas.config.docgen import generate
from nncf_bootstrapnas.config.schema import SchemaSet, schema_dir

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"
FILES = ["config", "training", "search", "compression", "deployment"]


def raw(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def follow(node: dict, doc: str) -> tuple[dict, str]:
    """Resolve $ref chains by hand (independently of the loader's resolver)."""
    while "$ref" in node:
        target, _, pointer = node["$ref"].partition("#")
        doc = target or doc
        node = raw(doc.removesuffix(".schema.json"))
        for part in pointer.split("/")[1:]:
            node = node[part]
    return node, doc


def declared_defaults(node: dict, doc: str, data: dict, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """(path, default) of every property declared under the objects present in ``data``."""
    node, doc = follow(node, doc)
    out = []
    for key, prop in node.get("properties", {}).items():
        if "default" in prop:
            out.append(((*path, key), prop["default"]))
        if isinstance(data.get(key), dict):
            out += declared_defaults(prop, doc, data[key], (*path, key))
    return out


def lookup(data: Any, path: tuple) -> Any:
    for key in path:
        data = data[key]
    return data


@pytest.mark.parametrize("name", FILES)
def test_schema_files_are_draft_2020_12(name):
    assert raw(name)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_declared_default_is_filled():
    config = load_config({"bootstrapNAS": {}})
    expected = declared_defaults(raw("config"), "config.schema.json", config)
    assert len(expected) > 40
    for path, default in expected:
        if path == ("bootstrapNAS", "training", "schedule", "list_stage_descriptions"):
            continue  # default items get their own defaults filled in; checked below
        if isinstance(default, dict):
            assert isinstance(lookup(config, path), dict), path  # its own keys are checked one by one
        else:
            assert lookup(config, path) == default, path


def test_defaults_fill_array_items_without_overriding_user_values():
    user = [{"train_dims": ["kernel"], "epochs": 7}, {"train_dims": ["kernel", "depth"], "reorg_weights": True}]
    config = load_config({"bootstrapNAS": {"training": {"schedule": {"list_stage_descriptions": user}}}})
    stages = config.bootstrapnas_training["schedule"]["list_stage_descriptions"]
    stage_schema = raw("training")["$defs"]["stage"]["properties"]
    for given, loaded in zip(user, stages):
        for key, prop in stage_schema.items():
            if key in given:
                assert loaded[key] == given[key]
            elif "default" in prop:
                assert loaded[key] == prop["default"]
    conditional = raw("training")["allOf"][0]["then"]["properties"]["schedule"]["properties"]
    init_lr = conditional["list_stage_descriptions"]["items"]["properties"]["init_lr"]["default"]
    assert [s["init_lr"] for s in stages] == [init_lr, init_lr]


NNCF_DEFAULT_SCHEDULE = [
    {"train_dims": ["kernel"], "epochs": 1},
    {"train_dims": ["kernel", "depth"], "epochs": 1},
    {"train_dims": ["kernel", "depth"], "epochs": 1, "depth_indicator": 2},
    {"train_dims": ["kernel", "depth", "width"], "epochs": 1},
    {
        "train_dims": ["kernel", "depth", "width"],
        "epochs": 1,
        "width_indicator": 2,
        "reorg_weights": True,
        "bn_adapt": True,
    },
]


def test_default_schedule_items_get_defaults():
    """All dimensions available: NNCF's five-stage default schedule, every stage default filled."""
    stages = load_config({"bootstrapNAS": {}}).bootstrapnas_training["schedule"]["list_stage_descriptions"]
    assert [{k: s[k] for k in d} for s, d in zip(stages, NNCF_DEFAULT_SCHEDULE)] == NNCF_DEFAULT_SCHEDULE
    assert len(stages) == len(NNCF_DEFAULT_SCHEDULE)
    assert all({"epochs", "depth_indicator", "width_indicator", "sample_rate", "init_lr"} <= set(s) for s in stages)


@pytest.mark.parametrize(
    ("dims", "expected"),
    [
        (["width", "depth"], [["depth"], ["depth"], ["depth", "width"], ["depth", "width"]]),
        (["width"], [["width"], ["width"]]),
        (["kernel"], [["kernel"]]),
    ],
)
def test_default_schedule_follows_the_available_dimensions(dims, expected):
    """Without a schedule, NNCF's stages for the dimensions present (in progressivity order) load and validate."""
    training = load_config({"bootstrapNAS": {"training": {"elasticity": {"available_elasticity_dims": dims}}}})
    stages = training.sections.training.stages
    assert [list(s.train_dims) for s in stages] == expected
    if "width" in dims:
        assert (stages[-1].width_indicator, stages[-1].reorg_weights, stages[-1].bn_adapt) == (2, True, True)
    if "depth" in dims:
        assert [s.depth_indicator for s in stages[:2]] == [1, 2]


def test_stage_init_lr_not_filled_under_global_lr_schedule():
    training = {
        "lr_schedule": {"params": {"base_lr": 0.1}},
        "schedule": {"list_stage_descriptions": [{"train_dims": ["kernel"]}]},
    }
    loaded = load_config({"bootstrapNAS": {"training": training}}).bootstrapnas_training
    assert "init_lr" not in loaded["schedule"]["list_stage_descriptions"][0]
    assert (
        loaded["lr_schedule"]["type"] == raw("training")["properties"]["lr_schedule"]["properties"]["type"]["default"]
    )


def test_compression_entry_defaults_depend_on_algorithm():
    from nncf_bootstrapnas.registry import COMPRESSION_ALGORITHMS

    COMPRESSION_ALGORITHMS.register("my_own_algo")(object)  # user-registered names pass the load-time name check
    try:
        config = load_config({"compression": [{"algorithm": "quantization"}, {"algorithm": "my_own_algo", "knob": 3}]})
    finally:
        COMPRESSION_ALGORITHMS.unregister("my_own_algo")
    quantization, custom = config.compression
    q_schema = raw("compression")["$defs"]["quantization"]["properties"]
    assert quantization["preset"] == q_schema["preset"]["default"]
    assert (
        quantization["initializer"]["range"]["num_init_samples"]
        == (q_schema["initializer"]["properties"]["range"]["properties"]["num_init_samples"]["default"])
    )
    assert custom == {"algorithm": "my_own_algo", "knob": 3}  # user-registered algorithms keep their own keys


def test_integral_floats_become_ints_where_integers_are_expected():
    training = {"schedule": {"list_stage_descriptions": [{"train_dims": ["kernel"], "epochs": 2.0}]}}
    config = load_config({"bootstrapNAS": {"training": training}, "input_info": {"sample_size": [1.0, 3]}})
    epochs = config.bootstrapnas_training["schedule"]["list_stage_descriptions"][0]["epochs"]
    assert epochs == 2 and type(epochs) is int
    assert [type(v) for v in config.input_info[0]["sample_size"]] == [int, int]


def deprecated_keys(node: Any, path: tuple = ()) -> list[tuple]:
    """Paths (within one schema file) of every property marked deprecated."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties":
                out += [(*path, k) for k, v in value.items() if isinstance(v, dict) and v.get("deprecated")]
            out += deprecated_keys(value, (*path, key) if key == "properties" else path)
    elif isinstance(node, list):
        for value in node:
            out += deprecated_keys(value, path)
    return out


T = ("bootstrapNAS", "training")
DEAD_KEYS = {  # where each deprecated key goes in a config, and the path its warning must name
    "fine_tuning": ({"bootstrapNAS": {"fine_tuning": {"epochs": 3}}}, "bootstrapNAS.fine_tuning"),
    "frozen_layers_allowed": (
        {"bootstrapNAS": {"training": {"frozen_layers_allowed": True}}},
        "bootstrapNAS.training.frozen_layers_allowed",
    ),
    "min_out_channels": (
        {"bootstrapNAS": {"training": {"elasticity": {"width": {"min_out_channels": 8}}}}},
        "bootstrapNAS.training.elasticity.width.min_out_channels",
    ),
    "add_dynamic_inputs": (
        {"bootstrapNAS": {"training": {"elasticity": {"width": {"add_dynamic_inputs": ["x"]}}}}},
        "bootstrapNAS.training.elasticity.width.add_dynamic_inputs",
    ),
    "mode": (
        {"bootstrapNAS": {"training": {"elasticity": {"depth": {"mode": "auto"}}}}},
        "bootstrapNAS.training.elasticity.depth.mode",
    ),
    "allow_nested_blocks": (
        {"bootstrapNAS": {"training": {"elasticity": {"depth": {"allow_nested_blocks": False}}}}},
        "bootstrapNAS.training.elasticity.depth.allow_nested_blocks",
    ),
    "allow_linear_combination": (
        {"bootstrapNAS": {"training": {"elasticity": {"depth": {"allow_linear_combination": False}}}}},
        "bootstrapNAS.training.elasticity.depth.allow_linear_combination",
    ),
    "search.compression": (
        {"bootstrapNAS": {"search": {"compression": {"algorithm": "knowledge_distillation"}}}},
        "bootstrapNAS.search.compression",
    ),
    "overflow_fix": (
        {"compression": [{"algorithm": "quantization", "overflow_fix": "disable"}]},
        "compression[0].overflow_fix",
    ),
    "scope_overrides": (
        {"compression": {"algorithm": "quantization", "scope_overrides": {}}},
        "compression.scope_overrides",
    ),
    "export_to_onnx_standard_ops": (
        {"compression": [{"algorithm": "quantization", "export_to_onnx_standard_ops": True}]},
        "compression[0].export_to_onnx_standard_ops",
    ),
    "compression_lr_multiplier": (
        {"compression": [{"algorithm": "quantization", "compression_lr_multiplier": 2}]},
        "compression[0].compression_lr_multiplier",
    ),
    "precision": (
        {"compression": [{"algorithm": "quantization", "initializer": {"precision": {"type": "hawq"}}}]},
        "compression[0].initializer.precision",
    ),
    "params": (
        {"compression": [{"algorithm": "quantization", "initializer": {"range": {"params": {"min_percentile": 1}}}}]},
        "compression[0].initializer.range.params",
    ),
    "logarithm_scale": (
        {"compression": [{"algorithm": "quantization", "weights": {"logarithm_scale": True}}]},
        "compression[0].weights.logarithm_scale",
    ),
}


def test_dead_key_cases_cover_every_deprecated_key():
    in_schemas = sorted(p[-1] for name in FILES for p in deprecated_keys(raw(name)))
    covered = sorted(k.rsplit(".", 1)[-1] for k in DEAD_KEYS)
    assert covered == sorted(set(in_schemas))  # logarithm_scale appears twice (weights, activations)


@pytest.mark.parametrize("name", DEAD_KEYS)
def test_dead_key_warns_with_path_and_is_dropped(name):
    config, path = DEAD_KEYS[name]
    with pytest.warns(DeprecationWarning, match=f"^{re.escape(path)}: legacy key") as record:
        loaded = load_config(config)
    assert len(record) == 1
    parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    if parts[0] == "compression" and not isinstance(parts[1], int):
        parts.insert(1, 0)  # an object-valued compression loads as a one-entry list
    assert parts[-1] not in lookup(loaded, tuple(parts[:-1]))


def test_docs_are_generated_from_the_schemas():
    committed = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert committed == generate(), (
        "docs/config.md is stale: run `python -m nncf_bootstrapnas.config.docgen > docs/config.md`"
    )


def test_every_key_of_our_sections_is_documented():
    text = generate()
    for name in FILES:
        for key, prop in walk_properties(raw(name)):
            assert prop.get("description") or "$ref" in prop or key == "algorithm", f"{name}: {key} has no description"
            assert f"{key}`" in text, f"{name}: {key} missing from docs"


def walk_properties(node: Any):
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            if isinstance(value, dict):
                yield key, value
        for key, value in node.items():
            if key not in ("allOf", "if", "then", "else"):  # conditional parts only add defaults
                yield from walk_properties(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_properties(value)


def test_schema_dir_falls_back_to_installed_copy(tmp_path, monkeypatch):
    assert schema_dir() == SCHEMAS
    installed = tmp_path / "share" / "nncf_bootstrapnas" / "schemas"
    shutil.copytree(SCHEMAS, installed)
    monkeypatch.setattr(
        schema_module, "__file__", str(tmp_path / "site" / "nncf_bootstrapnas" / "config" / "schema.py")
    )
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert schema_dir() == installed
    assert sorted(SchemaSet(installed).docs) == sorted(f"{n}.schema.json" for n in FILES)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="config.schema.json not found"):
        schema_dir()


def test_python_defaults_never_drift_from_the_schema():
    """Dataclasses that also carry defaults (for direct Python use) must agree with schemas/, the source of defaults."""
    import dataclasses

    from nncf_bootstrapnas.config.schema import SEARCH, schemas
    from nncf_bootstrapnas.subnet_search.settings import SearchSettings
    from nncf_bootstrapnas.training.scheduler import StageDescriptor

    assert SearchSettings.from_json({}).to_json() == schemas().defaults(SEARCH)  # the section holds no defaults
    assert not any(f.default is not dataclasses.MISSING for f in dataclasses.fields(SearchSettings))

    stage = dataclasses.asdict(StageDescriptor(train_dims=["width"]))
    schema_stage = schemas().defaults("training.schema.json#/$defs/stage")
    assert {k: stage[k] for k in schema_stage if k in stage} == {k: v for k, v in schema_stage.items() if k in stage}
