"""BN adaptation: exact statistics of the active subnet, modes restored, untouched channels and layers preserved."""

from __future__ import annotations

import pytest
import torch
from test_training_support import (
    ELASTICITY,
    FakeSupernet,
    one_thread,  # noqa: F401 (autouse fixture: one intra-op thread)
    tiny_net,
)
from torch import nn

from nncf_bootstrapnas.training import adapt_batchnorm


def _data(n: int = 96, batch: int = 16) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g) * 3 + 1
    return list(x.split(batch))


def test_statistics_are_the_exact_average_for_the_active_width():
    sn = FakeSupernet()
    sn.activate({"width": {"hidden": 8}})
    batches = _data()
    old_mean, old_var = sn.bn.running_mean.clone(), sn.bn.running_var.clone()
    sn.bn.running_mean[:8] = 100.0  # stale statistics that must disappear, not be blended in
    adapt_batchnorm(sn, batches)
    with torch.no_grad():
        pre = [torch.nn.functional.linear(b, sn.fc1.weight[:8], sn.fc1.bias[:8]) for b in batches]
    expected_mean = torch.stack([p.mean(0) for p in pre]).mean(0)
    expected_var = torch.stack([p.var(0, unbiased=True) for p in pre]).mean(0)
    assert torch.allclose(sn.bn.running_mean[:8], expected_mean, atol=1e-5)
    assert torch.allclose(sn.bn.running_var[:8], expected_var, atol=1e-4)
    assert torch.equal(sn.bn.running_mean[8:], old_mean[8:])  # channels the subnet does not use keep theirs
    assert torch.equal(sn.bn.running_var[8:], old_var[8:])
    assert sn.bn.momentum == 0.1


def test_modes_are_restored_and_no_gradients_are_made():
    sn = FakeSupernet()
    sn.train()
    sn.fc1.eval()  # a mixed state must come back as it was
    before = {n: m.training for n, m in sn.named_modules()}
    adapt_batchnorm(sn, [(b, torch.zeros(len(b))) for b in _data()], num_samples=32)
    assert {n: m.training for n, m in sn.named_modules()} == before
    assert all(p.grad is None for p in sn.parameters())


def test_num_samples_limits_the_batches_and_bare_inputs_work():
    sn = FakeSupernet()
    seen = []
    sn.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
    adapt_batchnorm(sn, _data(), num_samples=40)
    assert seen == [16, 16, 16]  # stops once 40 samples were seen
    assert int(sn.bn.num_batches_tracked) == 3
    with pytest.raises(ValueError, match="empty loader"):
        adapt_batchnorm(sn, [])
    with pytest.raises(ValueError, match="num_samples"):
        adapt_batchnorm(sn, _data(), num_samples=0)


def test_real_supernet_skipped_blocks_keep_their_statistics():
    from nncf_bootstrapnas.elasticity import create_supernet

    sn = create_supernet(
        tiny_net(), {"bootstrapNAS": {"training": {"elasticity": ELASTICITY}}}, torch.zeros(1, 1, 8, 8)
    )
    cfg = sn.search_space.minimum()
    sn.activate(cfg)
    block = sn.model.layer1[1]
    assert cfg["depth"]["layer1.0"] >= 1 and block._bnas_skip  # the last block is skipped
    before = block.bn1.running_mean.clone()
    x = torch.randn(64, 1, 8, 8)
    adapt_batchnorm(sn, [(x[:32], None), (x[32:], None)])
    assert torch.equal(block.bn1.running_mean, before)
    width = cfg["width"]["stem.0"]
    with torch.no_grad():
        stem = sn.model.stem[0](x)  # the elastic conv at the active width and kernel
    assert stem.shape[1] == width
    expected = (stem[:32].mean((0, 2, 3)) + stem[32:].mean((0, 2, 3))) / 2
    assert torch.allclose(sn.model.stem[1].running_mean[:width], expected, atol=1e-5)
    assert isinstance(sn.model.stem[1], nn.BatchNorm2d) and sn.model.stem[1].momentum == 0.1
