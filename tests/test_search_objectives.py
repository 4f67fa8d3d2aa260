"""Objectives, constraints and the evaluation context (what one measurement of one subnet sees)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from nncf_bootstrapnas.config import ConfigError
from nncf_bootstrapnas.registry import OBJECTIVES, RegistryError
from nncf_bootstrapnas.subnet_search import (
    Constraint,
    ConstraintError,
    ConstraintSet,
    EvaluationContext,
    Objective,
    ObjectiveError,
    resolve_objective,
)
from nncf_bootstrapnas.subnet_search.context import subset_loader
from nncf_bootstrapnas.subnet_search.evaluator import MeasureSpec, measure

try:
    from test_search_doubles import one_torch_thread, reset_and_adapt_bn, tiny_supernet_and_data, top1  # noqa: F401
    from test_search_fakes import FakeSupernet, fake_validate
except ImportError:  # tests/ imported as a package
    from tests.test_search_doubles import one_torch_thread, reset_and_adapt_bn, tiny_supernet_and_data, top1  # noqa: F401
    from tests.test_search_fakes import FakeSupernet, fake_validate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---- constraints ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "metric", "op", "bound"),
    [
        ("macs <= 50e6", "macs", "<=", 50e6),
        ("latency_ms<2", "latency_ms", "<", 2.0),
        ({"objective": "accuracy", "op": ">=", "value": 0.9}, "accuracy", ">=", 0.9),
        ("accuracy >= ref_acc - acc_delta", "accuracy", ">=", "ref_acc - acc_delta"),
    ],
)
def test_constraint_parsing(spec, metric, op, bound):
    c = Constraint.parse(spec)
    assert (c.metric, c.op, c.bound) == (metric, op, bound)


def test_constraint_g_sign_and_scaling():
    cs = ConstraintSet(["macs <= 50e6", "accuracy >= ref_acc - acc_delta"])
    cs.env = {"ref_acc": 90.0, "acc_delta": 1.0}
    raw, scaled, ok = cs.evaluate({"macs": 60e6, "accuracy": 89.5})
    assert raw == pytest.approx([10e6, -0.5]) and not ok  # MACs violated, accuracy within tolerance
    assert scaled == pytest.approx([10e6 / 50e6, -0.5 / 89.0])
    raw, _, ok = cs.evaluate({"macs": 40e6, "accuracy": 88.0})
    assert raw == pytest.approx([-10e6, 1.0]) and not ok
    assert cs.evaluate({"macs": 50e6, "accuracy": 89.0})[2]  # both bounds are inclusive
    assert cs.metrics == ["macs", "accuracy"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("macs == 5", "operator '==' is not one of <=, >=, <, >"),
        ("macs 5", "expected '<objective> <op> <value>'"),
        ({"objective": "macs", "op": "!=", "value": 1}, "operator '!=' is not one of <=, >=, <, >"),
        ({"objective": "macs", "value": 1}, "lacks ['op']"),
        ("macs <= 5 +", "not an arithmetic expression"),
        ("macs <= __import__('os')", "unknown name '__import__'; allowed: ref_acc, acc_delta"),
        ("macs <= ref_acc ** 2", "only numbers, names"),
    ],
)
def test_constraint_errors_name_what_is_allowed(spec, message):
    with pytest.raises(ConstraintError, match=message.replace("(", r"\(").replace("[", r"\[")):
        c = Constraint.parse(spec)
        c.resolve({"ref_acc": 1.0})


def test_constraint_unknown_or_unset_names():
    with pytest.raises(ConstraintError, match=r"unknown name 'delta'; allowed: ref_acc, acc_delta"):
        Constraint.parse("accuracy >= ref_acc - delta")  # names are checked when parsed, before any measurement
    with pytest.raises(ConstraintError, match="ref_acc is not known"):
        Constraint.parse("accuracy >= ref_acc").resolve({"ref_acc": None})


# ---- objectives -------------------------------------------------------------------------------------------------------
def test_builtin_objectives_are_registered_with_directions():
    expected = {"accuracy": "max", "macs": "min", "params": "min", "latency_ms": "min", "throughput_fps": "max",
                "latency_lut": "min"}  # fmt: skip
    for name, direction in expected.items():
        obj = resolve_objective(name)
        assert (obj.name, obj.direction) == (name, direction)
    assert resolve_objective("macs").cheap and not resolve_objective("accuracy").cheap


def test_user_objectives_class_and_function():
    @OBJECTIVES.register("test_energy")
    class Energy(Objective):
        direction = "min"

        def __init__(self, scale: float = 1.0) -> None:
            super().__init__()
            self.options = {"scale": scale}

        def __call__(self, ctx):
            return self.options["scale"] * ctx.supernet.macs(ctx.config)

    def sparsity(ctx):
        return 0.5

    sparsity.direction = "max"
    OBJECTIVES.register("test_sparsity")(sparsity)
    try:
        sn = FakeSupernet()
        ctx = EvaluationContext(sn, sn.search_space.maximum(), sn.search_space.lower_bounds)
        energy = resolve_objective({"name": "test_energy", "scale": 2.0})
        assert energy.name == "test_energy" and energy(ctx) == 2.0 * sn.macs(sn.search_space.maximum())
        assert energy.spec() == {"name": "test_energy", "scale": 2.0}
        fn = resolve_objective("test_sparsity")
        assert (fn.name, fn.direction, fn(ctx)) == ("test_sparsity", "max", 0.5)
        with pytest.raises(ObjectiveError, match="plain function and takes no options"):
            resolve_objective({"name": "test_sparsity", "x": 1})
    finally:
        OBJECTIVES.unregister("test_energy")
        OBJECTIVES.unregister("test_sparsity")


def test_objective_errors():
    with pytest.raises(RegistryError, match="unknown objective 'acuracy'; registered: .*accuracy"):
        resolve_objective("acuracy")
    with pytest.raises(ObjectiveError, match="has no 'name'"):
        resolve_objective({"device": "CPU"})

    class Sideways(Objective):
        name, direction = "sideways", "up"

    with pytest.raises(ObjectiveError, match=r"direction 'up'; allowed: \('min', 'max'\)"):
        resolve_objective(Sideways())


def test_latency_and_throughput_share_one_measurement_and_one_extraction(monkeypatch):
    """Export-package double with the real signatures: measure_latency(model, shape, budget, device) -> ms."""
    calls = {"measure": [], "lut": []}
    export = types.ModuleType("nncf_bootstrapnas.deployment")

    def measure_latency(model, input_shape, budget=0.5, device="CPU"):
        calls["measure"].append((model["config"]["width"]["layer0"], tuple(input_shape), budget, device))
        return 4.0

    class LatencyLUT:
        def __init__(self, device="CPU"):
            calls["lut"].append(device)

        def estimate(self, model, example_input):
            return 0.5 + model["config"]["width"]["layer0"] / 100 + example_input[0].shape[-1]

    export.measure_latency, export.LatencyLUT = measure_latency, LatencyLUT
    monkeypatch.setitem(sys.modules, "nncf_bootstrapnas.deployment", export)
    sn = FakeSupernet()
    extracted = []
    original_extract = sn.extract
    sn.extract = lambda cfg: extracted.append(cfg) or original_extract(cfg)
    metrics = [resolve_objective(n) for n in ("latency_ms", "throughput_fps", "latency_lut")]
    metrics.append(resolve_objective({"name": "throughput_fps", "batch": 4, "device": "GPU", "time_budget_s": 2}))
    metrics[-1].name = "throughput_b4"
    spec = MeasureSpec(sn, sn.search_space, metrics)
    values, _ = measure(spec, sn.search_space.upper_bounds)
    assert values == {
        "latency_ms": 4.0,
        "throughput_fps": 250.0,
        "latency_lut": 0.5 + 0.16 + 8,
        "throughput_b4": 1000.0,
    }
    # batch 1 measured once for latency and throughput; batch 4 on another device is its own measurement
    assert calls["measure"] == [(16, (1, 3, 8, 8), 0.5, "CPU"), (16, (4, 3, 8, 8), 2.0, "GPU")]
    assert len(extracted) == 1  # one extraction per config, reused by every objective
    measure(spec, sn.search_space.lower_bounds)
    assert calls["lut"] == ["CPU"] and len(extracted) == 2  # the LUT is built once per device and process


def test_latency_ms_with_the_real_openvino_measurer(tiny_supernet_and_data):
    model, _ = tiny_supernet_and_data
    objective = resolve_objective({"name": "latency_ms", "time_budget_s": 0.05})
    ctx = EvaluationContext(model, model.search_space.minimum(), model.search_space.upper_bounds)
    ms = objective(ctx)
    assert 0.0 < ms < 100.0


# ---- accuracy on a real torch model -----------------------------------------------------------------------------------
def test_accuracy_runs_bn_adaptation_on_a_subset_and_restores_bn(tiny_supernet_and_data):
    model, dm = tiny_supernet_and_data
    seen = {"validate": 0, "adapt": []}

    def validate(m, loader):
        seen["validate"] = sum(len(x) for x, _ in loader)
        assert not m.training
        return top1(m, loader)

    def adapt(m, loader, n):
        seen["adapt"].append(n)
        reset_and_adapt_bn(m, loader, n)

    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = {"width": {"fc1": 16, "fc2": 8}}
    x = model.search_space.encode(cfg)
    val = subset_loader(dm.val_loader(batch_size=50), 120)
    spec = MeasureSpec(model, model.search_space, [resolve_objective("accuracy")], validate, val,
                       dm.train_loader(shuffle=False), 256, adapt)  # fmt: skip
    values, seconds = measure(spec, x)
    assert seen == {"validate": 120, "adapt": [256]} and seconds > 0
    for k, v in model.state_dict().items():  # BN statistics restored: the next subnet starts from the same state
        torch.testing.assert_close(v, before[k])
    # the value is exactly what the user's validate_fn reports for that subnet after the same adaptation
    model.activate(cfg)
    reset_and_adapt_bn(model, dm.train_loader(shuffle=False), 256)
    assert values["accuracy"] == top1(model, val)
    model.load_state_dict(before)
    model.activate(None)


def test_accuracy_needs_validate_fn():
    sn = FakeSupernet()
    spec = MeasureSpec(sn, sn.search_space, [resolve_objective("accuracy")])
    with pytest.raises(RuntimeError, match="needs validate_fn and val_loader"):
        measure(spec, sn.search_space.lower_bounds)


def test_context_is_lazy_and_validates_the_active_config():
    sn = FakeSupernet()
    ctx = EvaluationContext(sn, sn.search_space.minimum(), sn.search_space.upper_bounds, validate_fn=fake_validate)
    resolve_objective("macs")(ctx)
    assert sn.activations == 0  # MACs come from the config, no activation needed
    acc = resolve_objective("accuracy")
    ctx.val_loader = [None]
    assert acc(ctx) == sn.accuracy(sn.search_space.minimum()) and sn.activations == 1
    acc(ctx)
    assert sn.activations == 1


def test_subset_loader_for_plain_iterables():
    batches = [(np.arange(i * 4, i * 4 + 4), np.zeros(4)) for i in range(5)]
    cut = subset_loader(batches, 10)
    got = np.concatenate([b[0] for b in cut])
    assert got.tolist() == list(range(10)) and len(cut) == 10  # len in batches of the plain list (1 per sample)
    assert np.concatenate([b[0] for b in cut]).tolist() == got.tolist()  # re-iterable, same samples
    assert subset_loader(batches, None) is batches


# ---- zero-cost proxy pre-filter ---------------------------------------------------------------------------------------
def test_proxy_prefilter_measures_only_the_best_scored_candidates(tiny_supernet_and_data):
    from nncf_bootstrapnas.registry import ZERO_COST_PROXIES
    from nncf_bootstrapnas.subnet_search import search

    model, dm = tiny_supernet_and_data
    scored = []

    def width_proxy(subnet, batch, seed=0, **kwargs):  # prefers a wide first layer, then a wide second one
        w = (subnet[1].out_features, subnet[4].out_features)
        scored.append(w)
        return float(100 * w[0] + w[1])

    ZERO_COST_PROXIES.register("test_width_proxy")(width_proxy)
    try:
        res = search(model, None, top1, dm.val_loader(), algorithm="random", num_evals=8, population=3,
                     proxy_prefilter={"proxy": "test_width_proxy", "keep_ratio": 0.5}, num_bn_adaptation_samples=0,
                     progress=False)  # fmt: skip
    finally:
        ZERO_COST_PROXIES.unregister("test_width_proxy")
    measured = [(r["config"]["width"]["fc1"], r["config"]["width"]["fc2"]) for r in res.rows[2:]]
    assert len(measured) == 6 and len(scored) == 12 == res.stats["proxy_evaluations"]  # 2 steps: 6 scored, 3 kept
    for step in range(2):
        batch = scored[6 * step : 6 * step + 6]
        assert measured[3 * step : 3 * step + 3] == sorted(batch, key=lambda w: -(100 * w[0] + w[1]))[:3]


def test_proxy_prefilter_settings_are_checked():
    from nncf_bootstrapnas.subnet_search import search

    with pytest.raises(
        ConfigError, match="proxy_prefilter.proxy: 'nope' is not a registered zero-cost proxy; registered: .*synflow"
    ):
        search(FakeSupernet(), None, fake_validate, [None], num_evals=4, proxy_prefilter={"proxy": "nope"})
    with pytest.raises(ConfigError, match=r"proxy_prefilter.keep_ratio: 1.5 is greater than the maximum 1"):
        search(
            FakeSupernet(),
            None,
            fake_validate,
            [None],
            num_evals=4,
            proxy_prefilter={"proxy": "snip", "keep_ratio": 1.5},
        )
