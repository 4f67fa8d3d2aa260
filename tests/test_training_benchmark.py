"""benchmarks/training_accuracy.py: its configs load, and ``max-only`` trains the maximum subnet alone."""

from __future__ import annotations

import pytest

from nncf_bootstrapnas import load_config


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("training_accuracy")


@pytest.mark.parametrize("kind", ["default", "full", "width", "max-only"])
def test_benchmark_configs_load(bench, kind):
    cfg = load_config(bench.supernet_config(kind, 2, 1e-3, "softmax", [1, 1, 28, 28]))
    training = cfg.sections.training
    legacy = load_config({"bootstrapNAS": {"training": {}}}).sections.training.stages
    expected = [2] if kind in ("width", "max-only") else [2 * s.epochs for s in legacy] + [2] * (kind == "full")
    assert [s.epochs for s in training.stages] == [s.epochs_lr for s in training.stages] == expected
    assert {s.init_lr for s in training.stages} == {1e-3}
    dims = set(training.elasticity.available_elasticity_dims)
    assert (dims == {"width"}) == (kind in ("width", "max-only"))
    assert [(c.algorithm, c.type) for c in training.compression] == [("knowledge_distillation", "softmax")]


def test_max_only_trains_the_maximum_alone(bench):
    cfg = load_config(bench.supernet_config("max-only", 1, 1e-3, "none", [1, 1, 28, 28]))
    (stage,) = cfg.sections.training.stages
    assert stage.width_indicator == 1 and tuple(stage.train_dims) == ("width",)
    assert cfg.sections.training.sampling.strategy == "single"
    assert not cfg.sections.training.compression
    weighted = load_config(bench.supernet_config("width", 1, 1e-3, "none", [1, 1, 28, 28], subnet_loss_weight=0.25))
    assert weighted.sections.training.sampling.subnet_loss_weight == 0.25
    width = bench.supernet_config("width", 1, 1e-3, "none", [1, 1, 28, 28])["bootstrapNAS"]["training"]
    assert width["schedule"]["list_stage_descriptions"][0]["width_indicator"] > 3  # every width open
