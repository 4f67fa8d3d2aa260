"""Super-network generation on every reference model: exact extraction, exact MACs, state round-trips.

Property tests (hypothesis) draw random valid subnet configs; the minimum and maximum are always checked.
"""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncf_bootstrapnas.elasticity import SuperNetwork, create_supernet
from nncf_bootstrapnas.graph.macs import count_macs
from nncf_bootstrapnas.models import MODELS, build_model, example_input

OPTIONS = {"width": {"min_width": 2, "width_multipliers": [1.0, 0.75, 0.5, 0.25]}, "kernel": {"max_num_kernels": 3}}
_CACHE: dict[str, tuple] = {}


def supernet_for(name: str):
    if name not in _CACHE:
        torch.manual_seed(0)
        model = build_model(name, small=True).eval()
        x = example_input(name, batch=2)
        _CACHE[name] = (model, create_supernet(model, OPTIONS, example_input=x[:1]).eval(), x)
    return _CACHE[name]


def check_config(sn: SuperNetwork, cfg: dict, x: torch.Tensor) -> None:
    sn.activate(cfg)
    with torch.no_grad():
        y = sn(x)
        sub = sn.extract().eval()
        y_sub = sub(x)
    torch.testing.assert_close(y_sub, y, atol=1e-5, rtol=1e-5)
    assert sn.macs() == count_macs(sub, x[:1])
    assert sn.params() == sum(p.numel() for p in sub.parameters())
    assert not any(hasattr(m, "_bnas") or hasattr(m, "_bnas_skip") for m in sub.modules()), "elastic code left"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_maximum_equals_original_and_minimum_is_smaller(name: str) -> None:
    model, sn, x = supernet_for(name)
    sn.activate(None)
    with torch.no_grad():
        torch.testing.assert_close(sn(x), model(x))
    assert sn.macs() == count_macs(model, x[:1])
    check_config(sn, sn.search_space.maximum(), x)
    check_config(sn, sn.search_space.minimum(), x)
    assert sn.search_space.size > 1, f"{name}: nothing elastic"
    assert sn.macs(sn.search_space.minimum()) < sn.macs(sn.search_space.maximum())


@pytest.mark.parametrize("name", sorted(MODELS))
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_random_subnets_extract_exactly(name: str, seed: int) -> None:
    _, sn, x = supernet_for(name)
    check_config(sn, sn.search_space.sample(np.random.default_rng(seed)), x)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3", "densenet", "vgg11_bn", "transformer"])
@pytest.mark.parametrize("importance", ["L1", "L2", "geometric_median"])
def test_reorganisation_is_function_preserving(name: str, importance: str) -> None:
    model, _, x = supernet_for(name)
    sn = create_supernet(model, OPTIONS, example_input=x[:1]).eval()
    with torch.no_grad():
        before = sn(x)
        sn.reorganize_weights(importance)
        after = sn(x)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-4)
    changed = any(not torch.equal(a, b) for a, b in zip(sn.state_dict().values(), model.state_dict().values()))
    assert changed, "reorganisation permuted nothing"


def test_reorganisation_puts_most_important_channels_first() -> None:
    model, _, x = supernet_for("vgg11_bn")
    sn = create_supernet(model, OPTIONS, example_input=x[:1])
    sn.reorganize_weights("L1")
    group = sn.width_groups[0]
    conv = sn.model.get_submodule(group.producers[0])
    norms = conv.weight.detach().abs().flatten(1).sum(1)
    assert torch.all(norms[:-1] >= norms[1:] - 1e-6)


def test_external_importance_reverses_order(tmp_path) -> None:
    model, _, x = supernet_for("vgg11_bn")
    sn = create_supernet(model, OPTIONS, example_input=x[:1])
    group = sn.width_groups[0]
    external = {group.name: torch.arange(group.size, dtype=torch.float32)}  # last channel most important
    original = sn.model.get_submodule(group.producers[0]).weight.detach().clone()
    sn.reorganize_weights("external", external=external)
    torch.testing.assert_close(sn.model.get_submodule(group.producers[0]).weight[0], original[-1])
    with pytest.raises(ValueError, match="no importance tensor for any width group"):
        sn.reorganize_weights("external", external={})


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0", "unet"])
def test_state_round_trip_on_fresh_model(name: str) -> None:
    model, sn, x = supernet_for(name)
    sn.reorganize_weights("L1")
    cfg = sn.search_space.sample(np.random.default_rng(1))
    sn.activate(cfg)
    state = json.loads(json.dumps(sn.get_state()))
    fresh = build_model(name, small=True).eval()
    rebuilt = SuperNetwork.from_state(fresh, state)
    rebuilt.load_state_dict(sn.state_dict())
    rebuilt.eval()
    assert rebuilt.active_config == cfg
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), sn(x))
    sn.activate(None)


def test_state_from_other_model_is_rejected() -> None:
    _, sn, _ = supernet_for("resnet18")
    with pytest.raises(ValueError, match="search space differs"):
        SuperNetwork.from_state(build_model("resnet18", small=True, width=0.25), sn.get_state())


def test_pretrained_checkpoint_loads_unchanged() -> None:
    model, sn, _ = supernet_for("mobilenet_v3")
    assert set(model.state_dict()) <= set(sn.state_dict())
    sn.load_state_dict(model.state_dict())  # strict: kernel transforms may be missing, nothing else
    with pytest.raises(RuntimeError, match="unexpected keys"):
        sn.load_state_dict({**model.state_dict(), "bogus.weight": torch.zeros(1)})


def test_supernet_pickles_for_worker_processes() -> None:
    _, sn, x = supernet_for("resnet18")
    sn.activate(sn.search_space.minimum())
    clone = pickle.loads(pickle.dumps(sn))
    with torch.no_grad():
        torch.testing.assert_close(clone(x), sn(x))
    sn.activate(None)


def test_skipped_block_runs_nothing() -> None:
    _, sn, x = supernet_for("resnet18")
    group = sn.block_groups[0]
    calls = []
    last = sn.model.get_submodule(group.blocks[-1].paths[0])
    handle = next(iter(last.children())).register_forward_hook(lambda *a: calls.append(1))
    try:
        sn.activate({"depth": {group.name: 1}})
        sn(x)
        assert calls == []
        sn.activate(None)
        sn(x)
        assert calls == [1]
    finally:
        handle.remove()


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "transformer"])
def test_extracted_subnet_converts_to_openvino_and_onnx(name: str, tmp_path) -> None:
    import openvino as ov

    _, sn, x = supernet_for(name)
    sub = sn.extract(sn.search_space.minimum()).eval()
    compiled = ov.compile_model(ov.convert_model(sub, example_input=x), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    with torch.no_grad():
        expected = sub(x).numpy()
    np.testing.assert_allclose(compiled(x.numpy())[0], expected, atol=1e-4, rtol=1e-3)
    torch.onnx.export(copy.deepcopy(sub), (x,), str(tmp_path / "m.onnx"), dynamo=False)
    assert (tmp_path / "m.onnx").stat().st_size > 0
