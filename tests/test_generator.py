"""SGNAS-style generator: cost model accuracy, valid and deterministic configs, constraint tracking, state round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nncf_bootstrapnas.config import ConfigError, ConstraintError, GeneratorSection, load_config, parse_budget
from nncf_bootstrapnas.evaluation import spearman_rho
from nncf_bootstrapnas.generator import (
    AccuracyPredictor,
    ArchitectureGenerator,
    CostModel,
    GeneratorError,
    evaluate_generator,
    generate,
    random_baseline,
    train_generator,
)
from nncf_bootstrapnas.generator.cost import onehot, split_onehot

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread in this module


def make_supernet(name: str = "vgg11_bn"):
    from nncf_bootstrapnas.elasticity import create_supernet
    from nncf_bootstrapnas.models import build_model, example_input

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(name, small=True).eval()
    options = {"width": {"min_width": 2, "width_multipliers": [1.0, 0.75, 0.5, 0.25]}}
    return create_supernet(model, options, example_input=example_input(name, 1)).eval()


@pytest.fixture(scope="module")
def supernet():
    return make_supernet()


@pytest.fixture(scope="module")
def cost_model(supernet):
    return CostModel.fit(supernet, num_samples=120, seed=0)


@pytest.fixture(scope="module")
def generator(supernet, cost_model):
    return train_generator(supernet, epochs=4, steps_per_epoch=60, lr=5e-3, cost_model=cost_model, seed=0)


def targets(cm: CostModel, n: int = 20) -> np.ndarray:
    return np.linspace(cm.lo + 0.05 * (cm.hi - cm.lo), cm.hi, n)


def test_cost_model_beats_the_additive_table(supernet, cost_model) -> None:
    err = cost_model.error
    assert err["fitted"]["mean_rel_error"] < 0.01 < err["additive_table"]["mean_rel_error"]
    assert err["interacting_pairs"] > 0  # width groups meet in convolutions: MACs are not additive
    space = supernet.search_space
    cfgs = [space.sample(np.random.default_rng(i)) for i in range(5)]
    true = np.array([supernet.macs(c) for c in cfgs], dtype=float)
    np.testing.assert_allclose(cost_model.predict(cfgs), true, rtol=1e-3)
    oh = torch.as_tensor(onehot(space, np.array([space.encode(c) for c in cfgs])), dtype=torch.float64)
    np.testing.assert_allclose(
        cost_model.torch_cost(split_onehot(space, oh)).numpy(), cost_model.normalise(true), atol=1e-3
    )


def test_configs_are_valid_and_deterministic(supernet, generator, cost_model) -> None:
    space = supernet.search_space
    for value in targets(cost_model, 6):
        cfg = generate(supernet, generator, float(value))
        assert space.validate(cfg) == cfg
        assert generator(float(value)) == cfg
    assert generate(supernet, generator, f"macs={cost_model.hi:g}") == generator(cost_model.hi)
    again = train_generator(supernet, epochs=4, steps_per_epoch=60, lr=5e-3, cost_model=cost_model, seed=0)
    sd, sd2 = generator.state_dict(), again.state_dict()
    assert all(torch.equal(sd[k], sd2[k]) for k in sd), "same seed, different generator"


def test_tracks_constraints_better_than_random_configs(supernet, generator, cost_model) -> None:
    values = targets(cost_model)
    ours = evaluate_generator(supernet, generator, values)
    rand = random_baseline(supernet, supernet.search_space, values, "macs", tolerance=generator.meta["tolerance"])
    assert ours["mean_abs_error_of_range"] < 0.5 * rand["mean_abs_error_of_range"]
    assert ours["fraction_within_band"] > rand["fraction_within_band"] + 0.15
    generated = [r["cost"] for r in ours["rows"]]
    assert spearman_rho(generated, values) > 0.9  # monotonic tendency


def test_strict_generation_always_meets_the_budget(supernet, generator, cost_model) -> None:
    values = targets(cost_model)
    strict = evaluate_generator(supernet, generator, values, strict=True)
    plain = evaluate_generator(supernet, generator, values)
    assert strict["fraction_under_budget"] == 1.0
    for s, p in zip(strict["rows"], plain["rows"]):
        if p["cost"] <= p["target"]:
            assert s["config"] == p["config"]  # nothing to repair
        else:
            assert s["cost"] < p["cost"]


def test_state_round_trip_plain_data(supernet, generator, cost_model, tmp_path) -> None:
    space = supernet.search_space
    for name in ("gen.json", "gen.pt"):
        loaded = ArchitectureGenerator.load(generator.save(tmp_path / name), space)
        assert loaded(cost_model.hi) == generator(cost_model.hi)
    clone = ArchitectureGenerator.from_state(space, generator.get_state())
    from_json = ArchitectureGenerator.from_state(space, json.loads(json.dumps(generator.to_json())))
    for value in targets(cost_model, 5):
        assert clone(float(value)) == generator(float(value)) == from_json(float(value))
    assert from_json.meta["mode"] == "cost" and from_json.meta["cost_model_error"] == generator.meta["cost_model_error"]
    other = make_supernet("resnet18").search_space
    with pytest.raises(GeneratorError, match="does not match this search space"):
        ArchitectureGenerator.from_state(other, generator.get_state())


def test_constraint_values_are_checked(generator, cost_model) -> None:
    assert (
        parse_budget("macs=40e6", "macs") == parse_budget("macs <= 40e6", "macs") == parse_budget(40e6, "macs") == 40e6
    )
    with pytest.raises(ConstraintError, match="trained for 'macs', not 'params'"):
        generator("params=1e6")
    with pytest.raises(GeneratorError, match="below the minimum subnet's macs"):
        generator(cost_model.lo * 0.5)
    with pytest.raises(GeneratorError, match="need minimum subnet macs"):
        train_generator(None, space=cost_model.space, range=(0.0, 1.0), cost_model=cost_model)


def test_predictor_mode_prefers_accurate_subnets(supernet, cost_model) -> None:
    # Synthetic rows where only the first width group matters: within a budget the generator should keep it wide.
    space = supernet.search_space
    first = space.variables[0]
    rng = np.random.default_rng(0)
    configs = [space.sample(rng) for _ in range(60)]
    acc = [50.0 + 40.0 * c[first.dim][first.key] / first.maximum for c in configs]
    pred = AccuracyPredictor.fit(space, configs, acc, seed=0)
    assert pred.stats["train_kendall_tau"] > 0.8
    common = dict(epochs=3, steps_per_epoch=60, lr=5e-3, cost_model=cost_model, seed=0)
    guided = train_generator(supernet, predictor=pred, **common)
    assert guided.meta["mode"] == "predictor"
    mid = cost_model.lo + 0.5 * (cost_model.hi - cost_model.lo)
    assert guided(mid)[first.dim][first.key] == first.maximum


def test_reinforce_mode_runs_and_restores_the_supernet(supernet, cost_model, digits_module) -> None:
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    active = supernet.active_config
    loader = digits_module.subset_loader(32, split="train", batch_size=16)
    gen = train_generator(
        supernet,
        train_loader=loader,
        epochs=1,
        steps_per_epoch=2,
        cost_model=cost_model,
        seed=0,
        num_constraint_values=3,
    )
    assert gen.meta["mode"] == "reinforce"
    assert supernet.active_config == active
    assert all(torch.equal(before[k], v) for k, v in supernet.state_dict().items())


def test_config_section_sets_the_budget(supernet, cost_model) -> None:
    config = {"generator": {"epochs": 1, "hidden_dim": 8, "num_constraint_values": 4, "tau": 2.0}}
    gen = train_generator(supernet, config=config, steps_per_epoch=5, cost_model=cost_model)
    assert gen.hidden_dim == 8
    assert gen.meta["settings"]["epochs"] == 1 and gen.meta["settings"]["tau"] == 2.0
    section = load_config(config).sections.generator
    assert isinstance(section, GeneratorSection) and section.steps_per_epoch == 100  # schema default
    again = train_generator(supernet, section, steps_per_epoch=5, cost_model=cost_model)  # the section itself
    assert again.meta["settings"] == gen.meta["settings"]
    assert all(torch.equal(a, b) for a, b in zip(gen.state_dict().values(), again.state_dict().values()))
    with pytest.raises(ConfigError, match=r"^generator.epoch: unknown key 'epoch' \(did you mean 'epochs'\?\)"):
        train_generator(supernet, section, epoch=3, cost_model=cost_model)
    with pytest.raises(ConfigError, match=r"^generator.tolerance: 1.5 must be less than 1"):
        train_generator(supernet, tolerance=1.5, cost_model=cost_model)
