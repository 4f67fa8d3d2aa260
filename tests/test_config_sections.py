"""Typed config sections: built once at load, frozen, equal to the loaded JSON, the same for every way of passing them."""

from __future__ import annotations

import dataclasses
import json
import pickle
import warnings
from pathlib import Path

import pytest

from nncf_bootstrapnas.config import (
    CompressionSection,
    ConfigError,
    Constraint,
    ExportSection,
    FrozenDict,
    GeneratorSection,
    QualitySection,
    SearchSection,
    Sections,
    TrainingSection,
    load_config,
    section_of,
)
from nncf_bootstrapnas.registry import OBJECTIVES, SEARCH_ALGORITHMS

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = sorted((ROOT / "examples" / "configs").glob("*_bootstrapnas.json")) + sorted(
    (Path(__file__).parent / "configs" / "legacy").glob("*.json")
)
SHIPPED = sorted((ROOT / "examples" / "configs").glob("*.json")) + PUBLISHED[-1:]


def quiet_load(source):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return load_config(source)


def test_five_published_style_legacy_configs():
    assert len(PUBLISHED) >= 5


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_sections_are_the_loaded_json(path):
    config = quiet_load(path)
    s = config.sections
    assert isinstance(s, Sections)
    assert s.training.to_json() == config.bootstrapnas_training
    assert s.search.to_json() == config.bootstrapnas_search
    assert [c.to_json() for c in s.compression] == config.compression
    for section, key in ((s.export, "export"), (s.benchmark, "benchmark"), (s.generator, "generator")):
        assert section.to_json() == config[key]
    assert s.quality.to_json() == config["quality_report"]
    assert s.elasticity is s.training.elasticity
    assert pickle.loads(pickle.dumps(s)) == s  # sections travel to worker processes
    assert hash(s.search) == hash(SearchSection.from_json(config.bootstrapnas_search))


def test_sections_are_frozen_and_typed():
    config = load_config({"compression": {"algorithm": "quantization"}, "bootstrapNAS": {"search": {
        "constraints": ["macs <= 5e7", "accuracy >= ref_acc - 0.5"]}}})  # fmt: skip
    s = config.sections
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.search.num_evals = 1  # type: ignore[misc]
    assert isinstance(s.training, TrainingSection) and isinstance(s.training.stages, tuple)
    assert s.training.stages[0].train_dims == ("kernel",) and s.training.lr_schedule is None
    assert s.search.constraints == (Constraint("macs", "<=", 5e7), Constraint("accuracy", ">=", "ref_acc - 0.5"))
    assert s.search.constraints[1].resolve({"ref_acc": 90.0, "acc_delta": 1.0}) == 89.5
    quant = s.compression[0]
    assert isinstance(quant, CompressionSection) and quant.algorithm == "quantization"
    assert isinstance(quant.options, FrozenDict) and quant.options["preset"] == "performance"
    with pytest.raises(TypeError):
        quant.options["preset"] = "mixed"  # type: ignore[index]


def test_an_edited_config_is_validated_again():
    config = load_config({"bootstrapNAS": {"search": {"seed": 1}}})
    assert config.sections.search.seed == 1
    config["bootstrapNAS"]["search"]["seed"] = 7  # what the CLI's --seed does
    assert config.sections.search.seed == 7
    config["bootstrapNAS"]["search"]["algorithm"] = "NSGA3x"
    with pytest.raises(ConfigError, match=r"^bootstrapNAS.search.algorithm: 'NSGA3x' .*did you mean 'NSGA2'"):
        config.sections  # noqa: B018


def test_section_of_accepts_every_form():
    config = load_config({"bootstrapNAS": {"search": {"num_evals": 9}}, "generator": {"epochs": 2}})
    search = config.sections.search
    assert section_of(config, SearchSection) is search
    assert section_of(search, SearchSection) is search
    assert section_of(dict(config), SearchSection) == search  # a full config dict
    assert section_of({"num_evals": 9}, SearchSection) == search  # a bare section
    assert section_of(None, SearchSection) == SearchSection.from_json({})
    assert section_of({"generator": {"epochs": 2}}, GeneratorSection) == config.sections.generator
    assert section_of({"epochs": 2}, GeneratorSection) == config.sections.generator
    assert section_of({"input_info": {"sample_size": [1, 3]}}, QualitySection) == QualitySection.from_json({})
    with pytest.raises(TypeError, match="expected a SearchSection"):
        section_of(3, SearchSection)


def test_replace_validates_like_a_file():
    export = ExportSection.from_json({})
    assert export.replace(atol=1e-4).atol == 1e-4 and export.atol == 0.001
    with pytest.raises(ConfigError, match=r"^export.atl: unknown key 'atl' \(did you mean 'atol'\?\)"):
        export.replace(atl=1e-4)
    with pytest.raises(ConfigError, match=r"^export.atol: -1 must be greater than 0"):
        export.replace(atol=-1)
    with pytest.raises(ConfigError, match=r"^bootstrapNAS.search.algorithm: 'nsga' is not a registered"):
        SearchSection.from_json({}).replace(algorithm="nsga")
    assert SearchSection.from_json({"algorithm": "nsga2"}).algorithm == "NSGA2"  # legacy spelling, registered name


def test_user_registered_names_pass_the_load_time_check():
    @SEARCH_ALGORITHMS.register("test_user_search")
    class UserSearch:
        pass

    @OBJECTIVES.register("test_energy")
    def energy(ctx):
        return 1.0

    try:
        search = load_config({"bootstrapNAS": {"search": {
            "algorithm": "test_user_search", "objectives": ["accuracy", "test_energy"],
            "constraints": ["test_energy <= 3"]}}}).sections.search  # fmt: skip
        assert search.algorithm == "test_user_search" and search.objectives == ("accuracy", "test_energy")
    finally:
        SEARCH_ALGORITHMS.unregister("test_user_search")
        OBJECTIVES.unregister("test_energy")
    with pytest.raises(ConfigError, match="'test_user_search' is not a registered search algorithm"):
        load_config({"bootstrapNAS": {"search": {"algorithm": "test_user_search"}}})


def test_objective_instances_are_kept_in_a_section_built_in_code():
    class Energy:
        name, direction = "energy", "min"

        def __call__(self, ctx):
            return 1.0

    meter = Energy()
    search = SearchSection.from_json({"objectives": ["accuracy", meter, {"name": "latency_ms", "device": "CPU"}]})
    assert search.objectives[0] == "accuracy" and search.objectives[1] is meter
    assert search.objectives[2] == {"name": "latency_ms", "device": "CPU"}
    assert search.to_json()["objectives"] == ["accuracy", "energy", {"name": "latency_ms", "device": "CPU"}]
    assert search.replace(num_evals=5).objectives[1] is meter
    with pytest.raises(ConfigError, match=r"objectives\[2\]: 'latncy_ms' is not a registered objective"):
        SearchSection.from_json({"objectives": ["accuracy", meter, {"name": "latncy_ms"}]})


def test_a_bad_name_fails_the_cli_before_any_work(tmp_path, capsys):
    """`run` with a misspelt search algorithm exits with a config error: nothing pre-trained, trained or written."""
    from nncf_bootstrapnas.cli.main import main

    bad = tmp_path / "bad.json"
    config = json.loads((ROOT / "examples" / "configs" / "digits_resnet18.json").read_text())
    config["bootstrapNAS"]["search"]["algorithm"] = "NSGA3x"
    bad.write_text(json.dumps(config))
    out = tmp_path / "out"
    assert main(["run", "--config", str(bad), "--output-dir", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "bootstrapNAS.search.algorithm: 'NSGA3x' is not a registered search algorithm" in err
    assert not (out / "checkpoints").exists() and not any(out.glob("**/*.pth"))
