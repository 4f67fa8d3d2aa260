"""Stage descriptors, the legacy schedule rules, learning-rate schedules and subnet sampling."""

from __future__ import annotations

import math

import pytest
import torch
from test_training_support import (
    FakeSupernet,
    fake_config,
    one_thread,  # noqa: F401 (autouse fixture: one intra-op thread)
)

from nncf_bootstrapnas.config import ConfigError
from nncf_bootstrapnas.training.algorithm import ProgressiveShrinkingBuilder
from nncf_bootstrapnas.training.lr_schedule import GlobalLRSchedule, parse_lr_schedule
from nncf_bootstrapnas.training.sampling import SamplingSettings, subnets_for_step
from nncf_bootstrapnas.training.scheduler import StageDescriptor, validate_progressivity
from nncf_bootstrapnas.training.settings import parse_training_settings


def controller_for(config: dict, supernet: FakeSupernet | None = None):
    supernet = supernet or FakeSupernet()
    builder = ProgressiveShrinkingBuilder(config)
    return builder.build_controller(builder.apply_to(supernet)), supernet


def test_default_schedule_is_legacy_five_stages():
    stages = parse_training_settings({"bootstrapNAS": {"training": {}}}, FakeSupernet()).stages
    assert [s.train_dims for s in stages] == [
        ["kernel"],
        ["kernel", "depth"],
        ["kernel", "depth"],
        ["kernel", "depth", "width"],
        ["kernel", "depth", "width"],
    ]
    assert stages[2].depth_indicator == 2 and stages[4].width_indicator == 2
    assert stages[4].reorg_weights and stages[4].bn_adapt and not stages[3].reorg_weights


def test_stage_change_enables_dims_and_indicators_reorganises_and_adapts_bn():
    stages = [
        {"train_dims": ["width"], "epochs": 2, "width_indicator": 2},
        {
            "train_dims": ["width", "depth"],
            "epochs": 1,
            "width_indicator": 3,
            "depth_indicator": 2,
            "reorg_weights": True,
            "bn_adapt": True,
        },
    ]
    ctrl, sn = controller_for(fake_config(schedule={"list_stage_descriptions": stages}))
    x = torch.randn(32, 8)
    ctrl.set_bn_adaptation_data([(x, None)])
    ctrl.scheduler.epoch_step()
    assert sn.calls == [("set_stage", ["width"], 2, 1)]
    assert sn.stage_space.variable("width/hidden").choices == (16, 12)
    assert "depth/blocks" not in [v.name for v in sn.stage_space.variables]
    ctrl.scheduler.epoch_step()  # epoch 1: same stage, nothing re-applied
    assert len(sn.calls) == 1
    sn.bn.running_mean.fill_(5.0)
    ctrl.scheduler.epoch_step()
    assert sn.calls[1:] == [("set_stage", ["width", "depth"], 3, 2), ("reorganize_weights", "L1")]
    assert sn.stage_space.variable("depth/blocks").choices == (0, 1, 2)  # up to 2 trailing blocks skipped
    assert not torch.allclose(sn.bn.running_mean, torch.full((16,), 5.0))  # BN adapted at stage start
    assert ctrl.is_final_stage() and ctrl.get_total_num_epochs() == 3


def test_progressivity_violations_name_the_stage():
    bad = [{"train_dims": ["width", "depth"]}, {"train_dims": ["width"]}]
    with pytest.raises(ConfigError, match=r"list_stage_descriptions\[1\].train_dims.*drops 'depth'"):
        controller_for(fake_config(schedule={"list_stage_descriptions": bad}))
    stages = [StageDescriptor(["kernel", "width"])]
    with pytest.raises(ConfigError, match="skips 'depth'"):
        validate_progressivity(stages, ["kernel", "depth", "width"], ["kernel", "depth", "width"])
    with pytest.raises(ConfigError, match=r"\[0\].epochs"):
        controller_for(fake_config(schedule={"list_stage_descriptions": [{"train_dims": ["width"], "epochs": 0}]}))


def test_stage_lr_and_global_lr_cannot_be_combined():
    stages = [{"train_dims": ["width"], "init_lr": 0.1}]
    with pytest.raises(ConfigError, match=r"\[0\].init_lr.*global lr_schedule"):
        controller_for(fake_config(schedule={"list_stage_descriptions": stages}))


def test_global_lr_warmup_then_cosine_per_iteration():
    sched = GlobalLRSchedule(base_lr=1.0, num_epochs=4, warmup_epochs=1, warmup_lr=0.2)
    n = 10
    assert sched.lr(0, 0, n) == pytest.approx(0.2 + 0.8 / 10)  # legacy: first step is one increment in
    assert sched.lr(0, 9, n) == pytest.approx(1.0)
    assert sched.lr(1, 0, n) == pytest.approx(1.0)
    assert sched.lr(3, 0, n) == pytest.approx(0.5)  # halfway through the 4-epoch cosine after warm-up
    assert sched.lr(5, 0, n) == pytest.approx(0.0)
    assert sched.lr(7, 3, n) == pytest.approx(0.0)  # clamped, not periodic
    multistep = parse_lr_schedule(
        {"type": "multistep", "params": {"base_lr": 1.0, "milestones": [2, 3], "gamma": 0.5}}, 4
    )
    assert [multistep.lr(e, 0, n) for e in range(4)] == [1.0, 1.0, 0.5, 0.25]
    assert parse_lr_schedule({"params": {"base_lr": 0.3}}, 7).num_epochs == 7  # default: all training epochs
    assert parse_lr_schedule(None, 7) is None


def test_scheduler_sets_optimizer_lr_each_step_and_stage_lr_restarts():
    stages = [
        {"train_dims": ["width"], "epochs": 2, "init_lr": 0.4},
        {"train_dims": ["width", "depth"], "init_lr": 0.2},
    ]
    config = fake_config(schedule={"list_stage_descriptions": stages})
    del config["bootstrapNAS"]["training"]["lr_schedule"]
    ctrl, sn = controller_for(config)
    opt = torch.optim.SGD(sn.parameters(), lr=123.0)
    ctrl.set_training_lr_scheduler_args(opt, 4)
    seen = []
    for _epoch in range(3):
        ctrl.scheduler.epoch_step()
        for _ in range(4):
            ctrl.scheduler.step()
            seen.append(opt.param_groups[0]["lr"])
    assert seen[0] == pytest.approx(0.4)
    assert seen[4] == pytest.approx(0.4 * 0.5 * (1 + math.cos(math.pi * 4 / 8)))
    assert seen[8] == pytest.approx(0.2)  # new stage: restart from its init_lr
    assert seen[11] == pytest.approx(0.2 * 0.5 * (1 + math.cos(math.pi * 3 / 4)))
    assert ctrl.scheduler.current_step == 11


def test_sampling_is_a_function_of_seed_and_step():
    sn = FakeSupernet()
    settings = SamplingSettings("sandwich", num_random=3, seed=7)
    a = subnets_for_step(sn.search_space, settings, 5)
    assert a == subnets_for_step(sn.search_space, settings, 5)
    assert [r for r, _ in a] == ["max", "min", "random", "random", "random"]
    assert a[0][1] == sn.search_space.maximum() and a[1][1] == sn.search_space.minimum()
    draws = {str(subnets_for_step(sn.search_space, settings, s)[2:]) for s in range(20)}
    assert len(draws) > 10  # steps differ
    other = SamplingSettings("sandwich", num_random=3, seed=8)
    assert any(
        subnets_for_step(sn.search_space, other, s) != subnets_for_step(sn.search_space, settings, s) for s in range(5)
    )
    single = SamplingSettings("single", seed=7)
    rate2 = [subnets_for_step(sn.search_space, single, s, sample_rate=2) for s in range(6)]
    assert rate2[0] == rate2[1] and rate2[2] == rate2[3]


def test_sampling_draws_from_the_stage_space():
    sn = FakeSupernet()
    sn.set_stage(["width"], 2, None)
    settings = SamplingSettings("single", seed=0)
    for step in range(30):
        ((_, cfg),) = subnets_for_step(sn.stage_space, settings, step)
        assert cfg["width"]["hidden"] in (16, 12) and cfg["depth"]["blocks"] == 0


def test_legacy_step_activates_one_subnet_per_step_rotating_sandwich():
    ctrl, sn = controller_for(fake_config(sampling={"strategy": "sandwich", "num_random": 1}))
    ctrl.scheduler.epoch_step()
    active = []
    for _ in range(6):
        ctrl.scheduler.step()
        active.append(sn.active_config)
    assert active[0] == sn.stage_space.maximum() and active[1] == sn.stage_space.minimum()
    assert active[3] == sn.stage_space.maximum() and active[4] == sn.stage_space.minimum()


def test_settings_errors_name_path_and_allowed_values():
    sn = FakeSupernet()
    with pytest.raises(ConfigError, match="sampling.strategy.*sandwich, single"):
        parse_training_settings(fake_config(sampling={"strategy": "greedy"}), sn)
    with pytest.raises(ConfigError, match="compression.*knowledge_distillation"):
        parse_training_settings(fake_config(compression=[{"algorithm": "quantization"}]), sn)


def test_indicators_follow_legacy_semantics() -> None:
    """width_indicator k: the k largest widths; depth_indicator k: up to k trailing blocks skipped (legacy NNCF)."""
    from nncf_bootstrapnas.elasticity.search_space import SearchSpace, Variable

    space = SearchSpace([Variable("width", "conv", (16, 12, 8)), Variable("depth", "layer1.0", (0, 1, 2))])
    kd = ["width", "depth"]
    assert space.restrict(kd, width_indicator=1, depth_indicator=1).variable("depth/layer1.0").choices == (0, 1)
    stage = space.restrict(kd, width_indicator=2, depth_indicator=2)
    assert stage.variable("width/conv").choices == (16, 12) and stage.variable("depth/layer1.0").choices == (0, 1, 2)
    assert space.restrict(kd, width_indicator=9, depth_indicator=9).minimum() == space.minimum()
    assert space.restrict(["width"], depth_indicator=2).minimum()["depth"] == {"layer1.0": 0}
