"""Zero-cost proxies and selection mechanisms: definitions on hand-checkable models, determinism, no side effects."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from nncf_bootstrapnas.evaluation import (
    BUILTIN_PROXIES,
    PredictorSelection,
    ProxyError,
    build_selection,
    compute_proxy,
    kendall_tau,
    prefilter,
    proxy_scores,
)
from nncf_bootstrapnas.registry import OBJECTIVES, SELECTION_MECHANISMS, ZERO_COST_PROXIES, RegistryError

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread in this module


def small_cnn(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, stride=2, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(8, 10),
        ).eval()


def mlp(activation: type[nn.Module] = nn.ReLU, seed: int = 0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 32), activation(), nn.Linear(32, 10)).eval()


@pytest.fixture(scope="module")
def batch(digits_module):
    x, y = next(iter(digits_module.subset_loader(16, split="train")))
    return torch.nn.functional.avg_pool2d(x, 4), y  # 8x8: fast


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_registered_everywhere() -> None:
    for name in BUILTIN_PROXIES:
        assert name in ZERO_COST_PROXIES
        assert name in OBJECTIVES
        assert f"proxy:{name}" in SELECTION_MECHANISMS
    assert {"bn_recalibrated_accuracy", "predictor", "proxy"} <= set(SELECTION_MECHANISMS.names())
    with pytest.raises(RegistryError, match="registered: fisher"):
        compute_proxy("no_such_proxy", mlp(), None)


@pytest.mark.parametrize("name", BUILTIN_PROXIES)
def test_finite_deterministic_and_side_effect_free(name: str, batch) -> None:
    model = small_cnn()
    before, modes = state_of(model), [m.training for m in model.modules()]
    first = compute_proxy(name, model, batch, seed=3)
    second = compute_proxy(name, model, batch, seed=3)
    assert math.isfinite(first), f"{name} gave {first}"
    assert first == second
    after = state_of(model)
    assert all(torch.equal(before[k], after[k]) for k in before), f"{name} changed weights or BN statistics"
    assert [m.training for m in model.modules()] == modes
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", ["synflow", "snip", "grad_norm", "fisher", "naswot"])
def test_zeroed_network_ranks_below_a_normal_one(name: str, batch) -> None:
    normal, broken = small_cnn(), small_cnn()
    with torch.no_grad():
        for p in broken.parameters():
            p.zero_()
    assert compute_proxy(name, broken, batch) < compute_proxy(name, normal, batch)


def test_jacob_cov_penalises_input_independent_jacobians(batch) -> None:
    # A linear network has the same Jacobian for every sample: fully correlated, the worst case of the definition.
    assert compute_proxy("jacob_cov", mlp(nn.Identity), batch) < compute_proxy("jacob_cov", mlp(nn.ReLU), batch)
    zeroed = mlp()
    with torch.no_grad():
        for p in zeroed.parameters():
            p.zero_()
    assert math.isnan(compute_proxy("jacob_cov", zeroed, batch))  # correlation undefined, as in the reference code


def test_naswot_is_logdet_of_hamming_kernel(batch) -> None:
    model = nn.Sequential(nn.Flatten(), nn.ReLU())  # codes are the signs of the inputs themselves
    x = batch[0]
    codes = (x.reshape(len(x), -1) > 0).double()
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(-1).double()
    expected = torch.linalg.slogdet(codes.shape[1] - hamming)[1].item()
    assert compute_proxy("naswot", model, batch) == pytest.approx(expected, rel=1e-9)


def test_synflow_of_a_linear_chain(batch) -> None:
    model = mlp(nn.Identity)
    w1, b1 = model[1].weight.detach().double().abs(), model[1].bias.detach().double().abs()
    w2 = model[3].weight.detach().double().abs()
    ones = torch.ones(w1.shape[1], dtype=torch.float64)
    # R = 1^T (|W2| (|W1| 1 + |b1|) + |b2|): R is linear in each |W|, so sum |W * dR/dW| is that layer's share of R.
    expected = float(w2.sum(0) @ (w1 @ ones)) + float(w2.sum(0) @ (w1 @ ones + b1))
    assert compute_proxy("synflow", model, batch) == pytest.approx(expected, rel=1e-9)


def test_snip_and_grad_norm_match_their_definitions(batch) -> None:
    model = mlp()
    work = copy.deepcopy(model)
    loss = nn.functional.cross_entropy(work(batch[0]), batch[1])
    loss.backward()
    layers = [work[1], work[3]]
    snip = sum(float((m.weight * m.weight.grad).abs().sum().detach()) for m in layers)
    grad_norm = sum(float(m.weight.grad.norm()) for m in layers)
    assert compute_proxy("snip", model, batch) == pytest.approx(snip, rel=1e-5)
    assert compute_proxy("grad_norm", model, batch) == pytest.approx(grad_norm, rel=1e-5)


def test_proxy_errors_name_the_problem(batch) -> None:
    with pytest.raises(ProxyError, match="'grad_norm' needs a labelled batch"):
        compute_proxy("grad_norm", small_cnn(), batch[0])
    with pytest.raises(ProxyError, match="at least 2 samples"):
        compute_proxy("naswot", small_cnn(), (batch[0][:1], batch[1][:1]))


# ---- selection mechanisms on a tiny supernet -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def supernet():
    from nncf_bootstrapnas.elasticity import create_supernet
    from nncf_bootstrapnas.models import build_model, example_input

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model("vgg11_bn", small=True).eval()
    options = {"width": {"min_width": 2, "width_multipliers": [1.0, 0.5, 0.25]}}
    return create_supernet(model, options, example_input=example_input("vgg11_bn", 1)).eval()


@pytest.fixture(scope="module")
def image_batch(digits_module):
    return next(iter(digits_module.subset_loader(16, split="train")))


def test_prefilter_keeps_the_best_by_proxy(supernet, image_batch) -> None:
    space = supernet.search_space
    rng = np.random.default_rng(0)
    configs = [space.minimum(), space.maximum()] + [space.sample(rng) for _ in range(4)]
    scores = proxy_scores(supernet, configs, "synflow", image_batch)
    kept = prefilter(supernet, configs, "synflow", 0.5, image_batch)
    assert len(kept) == 3
    kept_idx = [configs.index(c) for c in kept]
    dropped = [i for i in range(len(configs)) if i not in kept_idx]
    assert list(scores[kept_idx]) == sorted(scores[kept_idx], reverse=True)  # best first
    assert min(scores[kept_idx]) >= max(scores[dropped])
    assert len(prefilter(supernet, configs, "synflow", 0.01, image_batch)) == 1
    with pytest.raises(ValueError, match="keep_ratio must be in"):
        prefilter(supernet, configs, "synflow", 0.0, image_batch)


def test_bn_recalibrated_accuracy_restores_the_supernet(supernet, digits_module) -> None:
    sel = build_selection("bn_recalibrated_accuracy", val_loader=digits_module.subset_loader(32), num_bn_samples=32)
    cfg = supernet.search_space.minimum()
    before, active = state_of(supernet), supernet.active_config
    supernet.train()
    score = sel.score(supernet, cfg)
    assert all(m.training for m in supernet.modules())
    supernet.eval()
    assert 0.0 <= score <= 100.0
    assert supernet.active_config == active
    after = state_of(supernet)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sel.score(supernet, cfg) == score


def test_proxy_and_predictor_selection(supernet, image_batch) -> None:
    space = supernet.search_space
    sel = build_selection("proxy:naswot", batch=image_batch)
    cfg = space.sample(np.random.default_rng(1))
    assert sel.score(supernet, cfg) == compute_proxy("naswot", supernet.extract(cfg), image_batch)
    rng = np.random.default_rng(2)
    configs = [space.sample(rng) for _ in range(30)]
    macs = [supernet.macs(c) for c in configs]
    pred = PredictorSelection(space)
    with pytest.raises(RuntimeError, match="not fitted"):
        pred.score(supernet, configs[0])
    pred.fit(configs[:20], macs[:20])
    held_out = [pred.score(supernet, c) for c in configs[20:]]
    assert kendall_tau(held_out, macs[20:]) > 0.5


def test_proxy_objective_in_a_search_context(supernet, digits_module, image_batch) -> None:
    context = pytest.importorskip("nncf_bootstrapnas.subnet_search.context")
    from nncf_bootstrapnas.subnet_search import resolve_objective

    objective = resolve_objective("synflow")
    assert objective.direction == "max"
    space = supernet.search_space
    cfg = space.sample(np.random.default_rng(3))
    loader = digits_module.subset_loader(16, split="train")
    ctx = context.EvaluationContext(supernet, cfg, space.encode(cfg), val_loader=loader)
    assert objective(ctx) == compute_proxy("synflow", supernet.extract(cfg), image_batch)
