"""QAT alongside progressive shrinking: weight quantizers act on full parameters, so every subnet is valid, its
extraction reproduces the super-network, and training with quantizers resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_training_support import (
    assert_states_close,
    digits,
    one_thread,  # noqa: F401 (autouse fixture: one intra-op thread)
    state_of,
    tiny_net,
    training_config,
)
from torch import nn

from nncf_bootstrapnas.config import ConfigError
from nncf_bootstrapnas.training import TrainingData, compose, extract_quantized, fit
from nncf_bootstrapnas.training.quantization import follow_permutations, hook_storage

pytestmark = pytest.mark.integration  # nncf.quantize and QAT training of a real super-network

QUANTIZATION = [{"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 16}}}]


def _trained_like(model: nn.Module) -> nn.Module:
    """Non-degenerate weights (BN gains 1, random biases) so quantized outputs are not all zero."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.normal_(m.bias, 0.0, 0.1)
    return model


@pytest.fixture(scope="module")
def qat():
    train, _ = digits(n_train=32, n_val=16)
    config = {**training_config(), "compression": QUANTIZATION}
    composition = compose(_trained_like(tiny_net()), config, calibration_data=train, with_training=True)
    return composition.controller, composition.model, composition.compression, train


def test_weight_quantizers_sit_on_the_parameters(qat):
    ctrl, model, comps, _ = qat
    stats = comps[0].statistics()
    assert stats["weight_quantizers"] == 6 and stats["per_channel_weight_quantizers"] == 6
    names = [n for n, _ in hook_storage(model).named_hooks()]
    assert "post_hooks.model:stem:0:weight__0.0" in names
    assert not [n for n in names if n.startswith("pre_hooks") and n.split("__")[1].startswith("1")]  # no weight ports


def test_every_subnet_runs_and_its_extraction_matches(qat):
    _, model, _, train = qat
    x = next(iter(train))[0]
    model.eval()
    rng = np.random.default_rng(0)
    space = model.search_space
    configs = [None, space.minimum(), *[space.sample(rng) for _ in range(3)]]
    assert any(c and c["kernel"]["stem.0"] == 3 for c in configs)  # the baked-kernel path is exercised
    for cfg in configs:
        model.activate(cfg)
        expected = model(x)
        sub = extract_quantized(model, cfg)
        assert sub(x).shape == expected.shape
        assert torch.allclose(sub(x), expected, atol=1e-5), cfg
        assert expected.abs().max() > 0.1
    model.activate(space.minimum())
    float_out = model(x)
    for _, hook in hook_storage(model).named_hooks():
        hook.enabled.fill_(0) if hasattr(hook, "enabled") else None
    try:
        assert not torch.allclose(model(x), float_out)  # quantization really acts on the small subnet
    finally:
        for _, hook in hook_storage(model).named_hooks():
            hook.enabled.fill_(1) if hasattr(hook, "enabled") else None
    model.activate(None)


def test_quantized_weights_of_a_narrow_subnet_are_on_the_grid(qat):
    _, model, _, _ = qat
    cfg = model.search_space.minimum()
    cfg["depth"] = {k: 0 for k in cfg["depth"]}  # narrowest widths, every block kept
    sub = extract_quantized(model, cfg)
    conv = sub.layer1[0].conv1
    quantizer = hook_storage(sub).post_hooks["layer1:0:conv1:weight__0"]["0"]
    assert tuple(quantizer.scale_shape) == (conv.weight.shape[0], 1, 1, 1)  # sliced with the channels
    q = quantizer(conv.weight).detach()
    scale = quantizer.scale.detach().abs().reshape(-1, 1, 1, 1)
    levels = q / scale * 127
    assert torch.allclose(levels, levels.round(), atol=1e-3)


def test_reorganising_weights_moves_their_scales_with_the_channels():
    """reorg_weights on a QAT super-network: without its per-channel weight scales following the permuted channels
    the quantized network changes (and its float twin is not what was trained); with them it computes the same."""
    train, _ = digits(n_train=32, n_val=16)
    config = {**training_config(), "compression": QUANTIZATION}
    model = compose(_trained_like(tiny_net()), config, calibration_data=train, with_training=True).model.eval()
    x = next(iter(train))[0]
    with torch.no_grad():
        before = model(x)
        permuted = model.reorganize_weights("L1")
        assert any(not torch.equal(index.cpu(), torch.arange(index.numel())) for _, _, index in permuted)
        assert not torch.allclose(model(x), before, atol=1e-3)  # scales left behind: another network
        assert follow_permutations(model, permuted) > 0
        assert torch.allclose(model(x), before, atol=1e-4)


def test_per_channel_activations_are_rejected():
    bad = [{"algorithm": "quantization", "activations": {"per_channel": True}}]
    train, _ = digits(n_train=16, n_val=16)
    with pytest.raises(ConfigError, match=r"activations.per_channel.*elastic width"):
        compose(tiny_net(), {**training_config(), "compression": bad}, calibration_data=train)


def test_qat_fit_resumes_exactly(tmp_path, monkeypatch):
    import nncf_bootstrapnas.training.trainer as trainer

    train, val = digits(n_train=32, n_val=16)
    stages = [
        {"train_dims": ["kernel", "width"], "epochs": 1, "width_indicator": 4},
        {"train_dims": ["kernel", "width", "depth"], "epochs": 1, "width_indicator": 4, "depth_indicator": 2},
    ]
    config = {
        **training_config(stages, sampling={"strategy": "sandwich", "num_random": 1}, checkpoint_every_steps=1),
        "compression": QUANTIZATION,
    }
    data = TrainingData(train, val)
    torch.manual_seed(0)
    full = fit(tiny_net(channels=8), data, config, checkpoint_dir=tmp_path / "full", progress=False)
    real_step, calls = trainer.train_step, [0]

    def failing_step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 4:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_step", failing_step)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_net(channels=8), data, config, checkpoint_dir=tmp_path, progress=False)
    monkeypatch.setattr(trainer, "train_step", real_step)
    resumed = fit(tiny_net(channels=8), data, config, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert_states_close(state_of(full.supernet), state_of(resumed.supernet), atol=1e-6)
    hooks_a, hooks_b = state_of(hook_storage(full.supernet)), state_of(hook_storage(resumed.supernet))
    assert_states_close(hooks_a, hooks_b, atol=1e-6)
    scales = [v for k, v in hooks_a.items() if k.endswith("scale")]
    assert scales and any(not torch.equal(v, torch.ones_like(v)) for v in scales)
    assert full.compression_controllers[0].statistics()["weight_quantizers"] > 0


def test_pipeline_trains_one_object_with_both_algorithms():
    from nncf_bootstrapnas.pipeline import create_compressed_model

    ctrl, model = create_compressed_model(
        _trained_like(tiny_net(channels=8)), {**training_config(), "compression": QUANTIZATION}
    )
    ps, quant = ctrl["progressive_shrinking"], ctrl["quantization"]
    assert ps.supernet is model and quant.model is model  # quantized in place: the controllers drive the trained model
    assert quant.statistics()["weight_quantizers"] == 6
    ps.scheduler.epoch_step()
    ps.scheduler.step()
    x = torch.randn(4, 1, 8, 8)
    model.eval()
    assert torch.allclose(model(x), extract_quantized(model, model.active_config)(x), atol=1e-5)
    state = ctrl.get_state()
    ctrl.load_state(state)
    assert state["progressive_shrinking"]["scheduler"]["current_step"] == 0


def test_quantization_is_set_up_at_the_maximum_whatever_subnet_is_active() -> None:
    """Regression: a supernet left at its minimum before QAT got per-channel scales of the sliced shape."""
    import torch

    from nncf_bootstrapnas.elasticity import create_supernet
    from nncf_bootstrapnas.models import build_model
    from nncf_bootstrapnas.training.quantization import quantize_supernet

    x = torch.randn(2, 3, 32, 32)
    sn = create_supernet(
        build_model("resnet18", small=True), {"width": {"min_width": 2, "width_multipliers": [1, 0.5]}}, x[:1]
    )
    sn.activate(sn.search_space.minimum())
    quantize_supernet(sn, {}, [x], (x[:1],))
    assert sn.active_config == sn.search_space.minimum()
    for cfg in (sn.search_space.maximum(), sn.search_space.minimum()):
        sn.activate(cfg)
        sn.eval()
        assert sn(x).shape == (2, 10)
