"""The shipped recipes (docs/recipes.md): each example config loads, asks for what its recipe promises, and has the
budgets its documentation states, so the documented time cannot drift from the config. No model package needed: the
recipe runs end to end in the zoo tier (tests/test_cli_zoo.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from nncf_bootstrapnas import load_config

ROOT = Path(__file__).resolve().parents[1]
LITE0 = ROOT / "examples" / "configs" / "fashion_mnist_efficientnet_lite0.json"
RECIPES = ROOT / "docs" / "recipes.md"
BUDGET_ROW = re.compile(r"^\|\s*`([\w.\[\]]+)`\s*\|\s*`([^`]+)`\s*\|")


def documented_budgets(text: str) -> dict[str, Any]:
    """``| `dotted.key` | `json value` | ...`` rows of the recipe's budget table (the first table after its heading)."""
    section = text.split("### Budget", 1)[1].split("\n#", 1)[0]
    return {m[1]: json.loads(m[2]) for line in section.splitlines() if (m := BUDGET_ROW.match(line))}


def lookup(config: Any, dotted: str) -> Any:
    """``a.b[0].c`` in the loaded config."""
    value = config
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", dotted):
        value = value[int(part[1:-1])] if part.startswith("[") else value[part]
    return value


def test_lite0_recipe_config_asks_for_the_whole_recipe():
    config = load_config(LITE0)
    assert config["model"] == "efficientnet-lite0" and config["dataset"] == "fashion-mnist"
    assert config["num_classes"] == 10 and config["input_info"][0]["sample_size"] == [1, 3, 64, 64]
    training = config["bootstrapNAS"]["training"]
    assert set(training["elasticity"]["available_elasticity_dims"]) == {"width", "depth", "kernel"}
    stages = training["schedule"]["list_stage_descriptions"]
    assert set(stages[-1]["train_dims"]) == {"width", "depth", "kernel"}
    assert [stage["epochs"] for stage in stages] == [1, 1, 1, 1]  # docs/recipes.md: "four stages of one epoch"
    assert [c["algorithm"] for c in config["compression"]] == ["quantization"]
    search = config["bootstrapNAS"]["search"]
    assert search["algorithm"] in ("NSGA2", "LINAS") and search["objectives"] == ["accuracy", "macs"]
    assert search["eval_subset_size"] >= 2000
    assert config["export"]["int8"] and "openvino" in config["export"]["formats"]
    assert config["benchmark"]["time_budget_s"] > 0


def test_lite0_recipe_budgets_are_the_documented_ones():
    config, text = load_config(LITE0), RECIPES.read_text(encoding="utf-8")
    budgets = documented_budgets(text)
    assert len(budgets) >= 8, budgets
    assert {key: lookup(config, key) for key in budgets} == budgets
    assert "examples/configs/fashion_mnist_efficientnet_lite0.json" in text and "make recipe-lite0" in text


def test_resnet18_width_recipe_is_the_measured_benchmark_config(load_benchmark):
    """examples/configs/fashion_mnist_resnet18_width.json trains what benchmarks/training_accuracy.py measured
    (docs/benchmarks.md: max +0.06, min -2.48 at 3.2x): same elasticity, stage, KD and loss weight."""
    bench = load_benchmark("training_accuracy")
    shipped = load_config(ROOT / "examples" / "configs" / "fashion_mnist_resnet18_width.json")
    measured = load_config(bench.supernet_config("width", 2, 5e-4, "softmax", [1, 1, 28, 28], 0.25, (1.0, 0.775, 0.55)))
    a, b = shipped.sections.training, measured.sections.training
    assert a.elasticity == b.elasticity and a.sampling == b.sampling and a.compression == b.compression
    (stage,), (ref,) = a.stages, b.stages
    assert stage.replace(width_indicator=ref.width_indicator) == ref
    assert stage.width_indicator >= len(a.elasticity.width.width_multipliers)  # every width open, as measured
    assert shipped["model_params"] == {"width": 0.25, "in_channels": 1} and shipped["dataset"] == "fashion-mnist"
    assert shipped["benchmark"]["inference_precision"] == "f32"
    assert shipped.sections.export.finetune_epochs == 2  # the deployed subnet is fine-tuned, as measured
