"""benchmarks/training_accuracy.py: its configs load, and ``max-only`` trains the maximum subnet alone."""

from __future__ import annotations

import pytest

from nncf_bootstrapnas import load_config


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("training_accuracy")


@pytest.mark.parametrize("kind", ["default", "full", "width", "width-depth", "max-only"])
def test_benchmark_configs_load(bench, kind):
    cfg = load_config(bench.supernet_config(kind, 2, 1e-3, "softmax", [1, 1, 28, 28]))
    training = cfg.sections.training
    legacy = load_config({"bootstrapNAS": {"training": {}}}).sections.training.stages
    one_stage = kind in ("width", "width-depth", "max-only")
    expected = [2] if one_stage else [2 * s.epochs for s in legacy] + [2] * (kind == "full")
    assert [s.epochs for s in training.stages] == [s.epochs_lr for s in training.stages] == expected
    assert {s.init_lr for s in training.stages} == {1e-3}
    dims = set(training.elasticity.available_elasticity_dims)
    assert (dims == {"width"}) == (kind in ("width", "max-only"))
    assert (dims == {"width", "depth"}) == (kind == "width-depth")
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


def test_width_depth_opens_every_width_and_depth_choice_in_one_stage(bench):
    from nncf_bootstrapnas import create_supernet
    from nncf_bootstrapnas.models import build_model

    cfg = load_config(bench.supernet_config("width-depth", 1, 1e-3, "softmax", [1, 1, 28, 28], 0.25))
    (stage,) = cfg.sections.training.stages
    assert tuple(stage.train_dims) == ("width", "depth") and stage.reorg_weights
    supernet = create_supernet(build_model("resnet18", width=0.25, in_channels=1), cfg)
    supernet.set_stage(list(stage.train_dims), stage.width_indicator, stage.depth_indicator)
    assert supernet.stage_space.minimum() == supernet.search_space.minimum()  # the full space's minimum is trained
    space = supernet.search_space  # width x depth: 12x fewer MACs at the minimum (width alone: 4x)
    assert supernet.macs(space.maximum()) > 10 * supernet.macs(space.minimum())
