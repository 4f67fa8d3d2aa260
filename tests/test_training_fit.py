"""The built-in loop, the sandwich rule, distillation, statistics and the legacy facade."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from test_training_support import (
    FakeSupernet,
    digits,
    fake_config,
    fake_loaders,
    one_thread,  # noqa: F401 (autouse fixture: one intra-op thread)
    tiny_net,
    training_config,
)
from torch import nn

from nncf_bootstrapnas.training import EpochBasedTrainingAlgorithm, TrainingData, fit
from nncf_bootstrapnas.training.algorithm import ProgressiveShrinkingBuilder
from nncf_bootstrapnas.training.loop import read_training_checkpoint


def test_fit_real_supernet_runs_the_stages(tmp_path):
    train, val = digits(n_train=64, n_val=32)
    before = tiny_net(channels=8).state_dict()
    res = fit(tiny_net(channels=8), TrainingData(train, val), training_config(), checkpoint_dir=tmp_path, progress=True)
    assert [h["stage"] for h in res.history] == [0, 1, 2]
    last = res.history[-1]
    assert last["min"]["macs"] < last["max"]["macs"]
    stats = last["statistics"]["progressive_shrinking"]
    assert stats["stage"]["train_dims"] == ["kernel", "width", "depth"] and stats["stage"]["is_final"]
    assert stats["macs"]["min"] == last["min"]["macs"] and stats["search_space"]["stage_size"] > 1
    assert res.best["stage"] == 2 and res.best_checkpoint == tmp_path / "supernet_best.pth"
    after = res.supernet.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k in after)
    assert read_training_checkpoint(res.last_checkpoint).training["epoch"] == 3


def test_epochs_rescale_the_schedule():
    train, val = fake_loaders(n=16)
    res = fit(FakeSupernet(), TrainingData(train), fake_config(epochs=5), progress=False)
    assert [h["stage"] for h in res.history] == [0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="fewer than the 2 stages"):
        fit(FakeSupernet(), TrainingData(train), fake_config(epochs=1), progress=False)


class _Spy(torch.optim.SGD):
    steps = 0

    def step(self, closure=None):  # noqa: ANN001, ANN201
        type(self).steps += 1
        return super().step(closure)


@pytest.mark.parametrize("inplace", [True, False])
def test_sandwich_accumulates_max_min_random_in_one_step(inplace):
    sn = FakeSupernet()
    widths = []
    sn.register_forward_pre_hook(lambda m, a: widths.append(m.active_config["width"]["hidden"]))
    targets_used = []

    def criterion(out, target):
        targets_used.append(out.shape)
        return F.cross_entropy(out, target)

    train, _ = fake_loaders(n=16, batch=8)
    config = fake_config(sampling={"strategy": "sandwich", "num_random": 2, "inplace_distillation": inplace})
    _Spy.steps = 0
    fit(sn, TrainingData(train), config, optimizer=_Spy(sn.parameters(), lr=0.1), criterion=criterion, progress=False)
    steps = 4  # 2 epochs x 2 batches
    assert _Spy.steps == steps and len(widths) == 4 * steps
    assert widths[0::4] == [16] * steps and widths[1::4] == [4] * steps  # maximum, then minimum
    assert len(targets_used) == (steps if inplace else 4 * steps)  # with in-place KD only the maximum sees labels


def test_single_strategy_trains_one_subnet_per_step():
    sn = FakeSupernet()
    calls = []
    sn.register_forward_pre_hook(lambda m, a: calls.append(1) if m.training else None)
    train, _ = fake_loaders(n=16, batch=8)
    fit(sn, TrainingData(train), fake_config(sampling={"strategy": "single"}), progress=False)
    assert len(calls) == 4


def test_knowledge_distillation_from_a_frozen_original():
    kd = [{"algorithm": "knowledge_distillation", "type": "softmax", "temperature": 2.0, "scale": 0.5}]
    sn = FakeSupernet()
    original = {k: v.clone() for k, v in sn.state_dict().items()}
    builder = ProgressiveShrinkingBuilder(fake_config(compression=kd))
    ctrl = builder.build_controller(builder.apply_to(sn))
    assert ctrl.loss().item() == 0.0  # nothing captured yet
    sn.train()
    with torch.no_grad():
        sn.fc1.weight.add_(0.3)  # the student drifts away from the teacher
    sn.activate(sn.search_space.minimum())
    x = torch.randn(6, 8)
    out = sn(x)
    loss = ctrl.loss()
    teacher = FakeSupernet()
    teacher.load_state_dict(original)
    teacher.eval()
    t = teacher(x)
    expected = 0.5 * 4.0 * -(F.softmax(t / 2, 1) * F.log_softmax(out.detach() / 2, 1)).sum(1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert sn.fc1.weight.grad is not None
    assert all(not p.requires_grad for p in ctrl.teacher.model.parameters())
    assert ctrl.loss().item() == 0.0  # consumed
    mse = ProgressiveShrinkingBuilder(fake_config(compression={"algorithm": "knowledge_distillation", "type": "mse"}))
    ctrl2 = mse.build_controller(mse.apply_to(sn))
    out = sn(x)
    assert ctrl2.loss().item() > 0


def test_statistics_and_state_are_plain_json():
    sn = FakeSupernet()
    builder = ProgressiveShrinkingBuilder(fake_config())
    ctrl = builder.build_controller(builder.apply_to(sn))
    ctrl.set_training_lr_scheduler_args(torch.optim.SGD(sn.parameters(), lr=1.0), 10)
    ctrl.scheduler.epoch_step()
    ctrl.scheduler.step()
    stats = ctrl.statistics()
    assert stats["stage"]["index"] == 0 and stats["stage"]["train_dims"] == ["width"]
    assert stats["macs"]["max"] == sn.macs(sn.search_space.maximum())
    assert stats["macs"]["min"] == sn.macs({"width": {"hidden": 4}})  # depth not enabled yet
    assert stats["lr"] == pytest.approx(0.1) and stats["search_space"]["size"] == 12
    assert stats["active_subnet"]["width"]["variables"] == 1
    state = json.loads(json.dumps(ctrl.get_state()))
    fresh = builder.build_controller(sn)
    fresh.load_state(state)
    assert fresh.scheduler.get_state() == ctrl.scheduler.get_state()


def test_legacy_facade_with_legacy_callbacks(tmp_path):
    model = tiny_net(channels=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)  # legacy: built before conversion
    criterion = nn.CrossEntropyLoss()
    seen = {"steps": 0, "epochs": []}

    def train_epoch_fn(loader, model_, compression_ctrl, epoch, optimizer_):
        model_.train()
        seen["epochs"].append(epoch)
        for x, y in loader:
            compression_ctrl.scheduler.step()
            loss = criterion(model_(x), y) + compression_ctrl.loss()
            optimizer_.zero_grad()
            loss.backward()
            optimizer_.step()
            seen["steps"] += 1

    def validate_fn(model_, loader):
        correct = total = 0
        with torch.no_grad():
            for x, y in loader:
                correct += int((model_(x).argmax(1) == y).sum())
                total += len(y)
        return 100.0 * correct / total, 100.0, 0.0

    train, val = digits(n_train=32, n_val=16)
    algo = EpochBasedTrainingAlgorithm.from_config(model, training_config())
    supernet, ctrl = algo.run(train_epoch_fn, train, validate_fn, val, optimizer, str(tmp_path))
    assert seen["epochs"] == [0, 1, 2] and seen["steps"] == 6
    assert optimizer.param_groups[0]["params"][0] is next(supernet.parameters())  # re-bound to the super-network
    assert not torch.equal(supernet.state_dict()["fc.weight"], model.state_dict()["fc.weight"])
    assert ctrl.multi_elasticity_handler.count_flops_and_weights_for_active_subnet()[0] == 2 * ctrl.macs(
        supernet.active_config
    )
    metrics = read_training_checkpoint(tmp_path / "supernet_last.pth").training["metrics"]
    assert metrics["acc1"] == metrics["max"]["acc1"]
    resumed = EpochBasedTrainingAlgorithm.from_checkpoint(tiny_net(channels=8), None, tmp_path / "supernet_last.pth")
    assert resumed.training_ctrl.scheduler.current_epoch == 2
    sd = resumed.model.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in supernet.state_dict().items())


def _sandwich_step_grads(weight: float, batch) -> tuple[list[torch.Tensor], list[tuple[str, dict]]]:
    """Gradients of one sandwich step (max, min, one random; no in-place KD) with ``subnet_loss_weight``."""
    from nncf_bootstrapnas.training.composition import compose
    from nncf_bootstrapnas.training.steps import train_step

    torch.manual_seed(0)
    sn = FakeSupernet(bn=False)
    sampling = {"strategy": "sandwich", "num_random": 1, "inplace_distillation": False, "subnet_loss_weight": weight}
    composition = compose(sn, fake_config(sampling=sampling), with_training=True)
    assert composition.controller.sampling.subnet_loss_weight == weight
    roles = composition.controller.subnets_for_step(0)
    train_step(composition, batch, 0, F.cross_entropy, torch.optim.SGD(sn.parameters(), lr=0.0), torch.device("cpu"))
    return [p.grad.clone() for p in sn.parameters()], roles


def test_subnet_loss_weight_scales_every_gradient_but_the_maximums():
    """step gradient = grad(max loss) + weight * grad(the other subnets' losses), checked against the max alone."""
    batch = next(iter(fake_loaders(n=8, batch=8)[0]))
    full, roles = _sandwich_step_grads(1.0, batch)
    scaled, same_roles = _sandwich_step_grads(0.25, batch)
    assert [r for r, _ in roles] == ["max", "min", "random"] and roles == same_roles
    torch.manual_seed(0)
    alone = FakeSupernet(bn=False)
    F.cross_entropy(alone(batch[0]), batch[1]).backward()  # the maximum subnet is active by default
    for g1, gw, gmax in zip(full, scaled, (p.grad for p in alone.parameters())):
        others = (g1 - gw) / 0.75
        torch.testing.assert_close(g1 - others, gmax, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(gw, gmax + 0.25 * others, rtol=1e-4, atol=1e-6)
    assert any(not torch.allclose(a, b) for a, b in zip(full, scaled))


@pytest.mark.parametrize("bad", [0, 1.5, -0.1, True, "0.5"])
def test_subnet_loss_weight_is_checked_at_load(bad):
    from nncf_bootstrapnas import load_config
    from nncf_bootstrapnas.config import ConfigError

    with pytest.raises(ConfigError, match="sampling.subnet_loss_weight"):
        load_config(fake_config(sampling={"strategy": "sandwich", "subnet_loss_weight": bad}))
