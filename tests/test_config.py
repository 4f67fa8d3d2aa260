"""load_config: legacy shapes load, errors name the JSON path, helpers build the right tensors."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from nncf_bootstrapnas.config import Config, ConfigError, load_config, parse_constraint, validate_stage_schedule
from nncf_bootstrapnas.config.loader import strip_json_extensions

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples" / "configs").glob("*.json"))
LEGACY = sorted((Path(__file__).parent / "configs" / "legacy").glob("*.json"))
INVALID = sorted((Path(__file__).parent / "configs" / "invalid").glob("*.json"))
STAGES = "bootstrapNAS.training.schedule.list_stage_descriptions"


def quiet_load(source):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return load_config(source)


def test_corpora_are_present():
    assert len(EXAMPLES) >= 6 and LEGACY and len(INVALID) >= 30


@pytest.mark.parametrize("path", EXAMPLES + LEGACY, ids=lambda p: p.name)
def test_every_shipped_config_loads_and_reloads_unchanged(path):
    config = quiet_load(path)
    assert isinstance(config, Config) and config.source == path
    assert isinstance(config.compression, list) and isinstance(config.input_info, list)
    dumped = json.loads(config.to_json())
    assert dumped == config
    assert load_config(dumped) == config  # the loaded form is valid and complete: loading is idempotent


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_config_names_the_path(path):
    case = json.loads(path.read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ConfigError) as info:
            load_config(case["config"])
    error = info.value
    assert error.path == case["expect_path"], str(error)
    assert str(error).startswith(case["expect_path"] + ": ")
    assert case["expect_in_message"] in str(error)
    assert "\n" not in str(error)


def test_error_carries_value_and_allowed():
    config = {"bootstrapNAS": {"training": {"schedule": {"list_stage_descriptions": [{"train_dims": ["widht"]}]}}}}
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert info.value.path == f"{STAGES}[0].train_dims[0]"
    assert info.value.value == "widht"
    assert sorted(info.value.allowed) == ["depth", "kernel", "width"]
    assert isinstance(info.value, ValueError)


def test_unknown_key_lists_allowed_keys_without_deprecated_ones():
    with pytest.raises(ConfigError) as info:
        load_config({"bootstrapNAS": {"training": {"elasticity": {"depth": {"min_blocksize": 3}}}}})
    assert "min_block_size" in info.value.allowed and "mode" not in info.value.allowed
    assert "allowed: skipped_blocks, min_block_size" in str(info.value)


def test_legacy_jstyle_file_with_comments_trailing_commas_and_dead_keys():
    path = Path(__file__).parent / "configs" / "legacy" / "nncf_jstyle_resnet50_cifar10.json"
    with pytest.warns(DeprecationWarning) as record:
        config = load_config(path)
    messages = [str(w.message) for w in record]
    assert any(m.startswith("bootstrapNAS.training.elasticity.depth.mode:") for m in messages)
    assert any(m.startswith("bootstrapNAS.training.elasticity.width.min_out_channels:") for m in messages)
    width = config.bootstrapnas_training["elasticity"]["width"]
    assert width["min_width"] == 24 and "min_out_channels" not in width
    assert "mode" not in config.bootstrapnas_training["elasticity"]["depth"]
    assert len(config.bootstrapnas_training["schedule"]["list_stage_descriptions"]) == 4
    assert config["optimizer"]["no_decay_keys"] == "bn#bias"


def test_renamed_key_does_not_override_the_new_one():
    config = {"bootstrapNAS": {"training": {"elasticity": {"width": {"min_out_channels": 8, "min_width": 16}}}}}
    with pytest.warns(DeprecationWarning, match="ignored because 'min_width' is also set"):
        loaded = load_config(config)
    assert loaded.bootstrapnas_training["elasticity"]["width"]["min_width"] == 16


def test_input_is_not_modified():
    config = {"input_info": {"sample_size": [1, 2]}, "bootstrapNAS": {"search": {"constraints": ["macs <= 1e6"]}}}
    original = copy.deepcopy(config)
    quiet_load(config)
    assert config == original


def test_object_or_array_values_load_as_arrays():
    config = load_config(
        {
            "input_info": {"sample_size": [1, 3, 8, 8]},
            "compression": {"algorithm": "quantization"},
            "bootstrapNAS": {"training": {"compression": {"algorithm": "knowledge_distillation", "type": "mse"}}},
        }
    )
    assert [e["sample_size"] for e in config.input_info] == [[1, 3, 8, 8]]
    assert [e["algorithm"] for e in config.compression] == ["quantization"]
    assert [e["type"] for e in config.bootstrapnas_training["compression"]] == ["mse"]


def test_constraints_and_aspiration_points_load_in_object_form():
    search = load_config(
        {
            "bootstrapNAS": {
                "search": {
                    "algorithm": "RNSGA2",
                    "aspiration_points": [75.0, 2e6],
                    "constraints": [
                        "macs <= 50e6",
                        {"objective": "accuracy", "op": ">", "value": 90},
                        " params<1_000 ",
                    ],
                }
            }
        }
    ).bootstrapnas_search
    assert search["aspiration_points"] == [[75.0, 2e6]]
    assert search["constraints"] == [
        {"objective": "macs", "op": "<=", "value": 50e6},
        {"objective": "accuracy", "op": ">", "value": 90.0},
        {"objective": "params", "op": "<", "value": 1000.0},
    ]


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("latency_ms<=12.5", ("latency_ms", "<=", 12.5)),
        ("top1 >= 0.75", ("top1", ">=", 0.75)),
        ({"objective": "macs", "op": "<", "value": 3}, ("macs", "<", 3.0)),
    ],
)
def test_parse_constraint(spec, expected):
    parsed = parse_constraint(spec)
    assert (parsed["objective"], parsed["op"], parsed["value"]) == expected


@pytest.mark.parametrize("spec", ["macs = 3", "macs <= three", "<= 3", "macs <= nan", {"objective": "m", "op": "!="}])
def test_parse_constraint_rejects(spec):
    with pytest.raises(ConfigError, match="constraints"):
        parse_constraint(spec)


def test_example_inputs_follow_input_info():
    config = load_config(
        {
            "input_info": [
                {"sample_size": [2, 3, 4, 4]},
                {"sample_size": [2, 5], "type": "long", "filler": "random"},
                {"sample_size": [2, 5], "type": "long", "filler": "zeros", "keyword": "attention_mask"},
                {"sample_size": [1, 7], "type": "half", "filler": "random"},
            ]
        }
    )
    images, ids, noise = config.example_inputs()
    assert images.shape == (2, 3, 4, 4) and images.dtype == torch.float32 and bool((images == 1).all())
    assert ids.shape == (2, 5) and ids.dtype == torch.int64 and set(ids.unique().tolist()) <= {0, 1}
    assert noise.dtype == torch.float16 and bool(((noise >= 0) & (noise < 1)).all()) and noise.unique().numel() > 1
    assert torch.equal(config.example_inputs()[2], noise)  # seeded: reproducible
    kwargs = config.example_kwargs()
    assert list(kwargs) == ["attention_mask"] and not kwargs["attention_mask"].any()


def test_example_inputs_need_input_info():
    with pytest.raises(ConfigError, match="^input_info: missing"):
        load_config({}).example_inputs()


def test_sections_are_available_without_bootstrapnas():
    config = load_config({"compression": [{"algorithm": "quantization"}]})
    assert not config.has_bootstrapnas and "bootstrapNAS" not in config
    full = load_config({"bootstrapNAS": {}})
    assert config.bootstrapnas_search == full.bootstrapnas_search
    assert config.bootstrapnas_training == full.bootstrapnas_training
    assert config.input_info == [] and full.compression == []


def test_missing_file_and_invalid_json(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.json"):
        load_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "model": "resnet18",\n  "epochs": 3 3\n}\n')
    with pytest.raises(ConfigError, match=r"invalid JSON in .*bad.json at line 3, column 15"):
        load_config(str(bad))
    unterminated = tmp_path / "comment.json"
    unterminated.write_text('{\n"model": "x" /* never closed\n}')
    with pytest.raises(ConfigError, match="unterminated /\\* comment starting at line 2"):
        load_config(unterminated)
    with pytest.raises(TypeError):
        load_config(["not", "a", "config"])


def test_json_extensions_keep_strings_and_positions():
    text = '{"a": "x // y, /* z */", "b": [1, 2,], // c\n "c": {"d": "],",},}'
    stripped = strip_json_extensions(text)
    assert len(stripped) == len(text)
    assert json.loads(stripped) == {"a": "x // y, /* z */", "b": [1, 2], "c": {"d": "],"}}


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.sampled_from('ab,/*]}{"\\ \n')),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


@given(_json)
def test_json_extensions_never_change_plain_json(value):
    for text in (json.dumps(value), json.dumps(value, indent=2)):
        assert json.loads(strip_json_extensions(text)) == value


# NNCF's own scheduler test cases (tests/torch/nas/test_scheduler.py): stages, progressivity, available, valid?
KDW = ["kernel", "depth", "width"]
NNCF_SCHEDULE_CASES = {
    "default": ([["kernel"], ["kernel", "depth"], KDW], KDW, KDW, True),
    "wrong order in progressivity": ([["kernel"], ["kernel", "width"], ["kernel", "width", "depth"]], KDW, KDW, False),
    "limited enabled dims": ([["kernel"], ["kernel", "width"]], KDW, ["kernel"], False),
    "limited list stages": ([["kernel"]], KDW, KDW, True),
    "order within stage doesn't matter": (
        [["kernel"], ["depth", "kernel"], ["depth", "width", "kernel"]],
        KDW,
        KDW,
        True,
    ),
    "new single dim on each stage": ([["kernel"], ["depth"], ["width"]], KDW, KDW, False),
    "intermediate dim is not enabled": (
        [["kernel"], ["depth", "kernel"]],
        ["kernel", "width", "depth"],
        ["kernel", "depth"],
        True,
    ),
    "started from intermediate": ([["depth"], ["depth", "width"]], KDW, KDW, True),
    "stage removes a dim": ([["kernel", "depth"], ["depth"]], KDW, KDW, False),
}


@pytest.mark.parametrize("name", NNCF_SCHEDULE_CASES)
def test_validate_stage_schedule_matches_nncf(name):
    dims, progressivity, available, valid = NNCF_SCHEDULE_CASES[name]
    stages = [{"train_dims": d, "epochs": 1} for d in dims]
    if valid:
        validate_stage_schedule(stages, progressivity, available)
        config = {"bootstrapNAS": {"training": {"progressivity_of_elasticity": progressivity}}}
        config["bootstrapNAS"]["training"]["schedule"] = {"list_stage_descriptions": stages}
        config["bootstrapNAS"]["training"]["elasticity"] = {"available_elasticity_dims": available}
        load_config(config)
    else:
        with pytest.raises(ConfigError, match=r"^bootstrapNAS\.training\.schedule\.list_stage_descriptions\[\d\]"):
            validate_stage_schedule(stages, progressivity, available)


def test_validate_stage_schedule_checks_programmatic_stages():
    with pytest.raises(ConfigError, match=r"^stages\[1\]\.epochs: 0 must be a positive integer"):
        validate_stage_schedule([{"train_dims": ["width"]}, {"train_dims": ["width"], "epochs": 0}], KDW, KDW, "stages")
    with pytest.raises(ConfigError, match=r"^stages\[0\]\.train_dims: at least one"):
        validate_stage_schedule([{"train_dims": []}], KDW, KDW, "stages")
