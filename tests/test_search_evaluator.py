"""Evaluator cache, fingerprints, SearchProblem (pymoo view) and settings."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from nncf_bootstrapnas.config import ConfigError, SearchSection
from nncf_bootstrapnas.subnet_search import (
    ConstraintSet,
    Evaluator,
    Objective,
    SearchProblem,
    resolve_objective,
    search,
    search_options,
    supernet_fingerprint,
)

try:
    from test_search_fakes import FakeSupernet, fake_validate
except ImportError:  # tests/ imported as a package
    from tests.test_search_fakes import FakeSupernet, fake_validate


class CountingAccuracy(Objective):
    """Accuracy that counts how often a subnet is really measured."""

    name, direction = "accuracy", "max"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, ...]] = []

    def __call__(self, ctx):
        self.calls.append(ctx.x)
        return ctx.supernet.accuracy(ctx.config)


def make_evaluator(sn=None, acc=None):
    sn = sn or FakeSupernet()
    acc = acc or CountingAccuracy()
    return Evaluator.create(sn, sn.search_space, [acc, resolve_objective("macs")]), acc


def test_the_same_subnet_is_never_measured_twice():
    ev, acc = make_evaluator()
    rng = np.random.default_rng(0)
    X = rng.integers(0, ev.spec.space.upper_bounds + 1, size=(12, len(ev.spec.space)))
    X = np.vstack([X, X[:5], X[:3]])  # repeats inside one batch
    records = ev.evaluate(X)
    unique = {tuple(x) for x in X}
    assert ev.n_measured == len(unique) == len(acc.calls) == len(set(acc.calls))
    assert [r["x"] for r in records] == X.tolist()  # one record per requested row, in order
    assert [r["index"] for r in ev.records] == list(range(len(unique)))
    ev.evaluate(X[::-1].astype(float) + 0.2)  # pymoo hands over floats; rounding maps them to the same subnets
    assert ev.n_measured == len(unique) and len(acc.calls) == len(unique)
    assert ev.cache_hits == len(X) - len(unique) + len(X)
    sn = ev.spec.supernet
    for r in records:
        assert r["values"] == {"accuracy": sn.accuracy(r["config"]), "macs": float(sn.macs(r["config"]))}
        assert r["config"] == ev.spec.space.decode(r["x"]) and r["time_s"] >= 0
    assert ev.stats()["evaluations"] == len(unique) and ev.evals_per_minute > 0


def test_limit_caps_new_measurements():
    ev, acc = make_evaluator()
    X = np.array([[0] * 8, [1] * 8, [2] * 8, [1] * 8])
    records = ev.evaluate(X, limit=2)
    assert [r is not None for r in records] == [True, True, False, True] and ev.n_measured == 2


def test_cache_state_round_trips_and_rejects_another_supernet():
    ev, _ = make_evaluator()
    ev.evaluate(np.array([[0] * 8, [3, 3, 3, 3, 2, 2, 2, 2]]))
    state = pickle.loads(pickle.dumps(ev.state_dict()))
    fresh, acc = make_evaluator()
    fresh.load_state_dict(state)
    fresh.evaluate(np.array([[0] * 8]))
    assert acc.calls == [] and fresh.records == ev.records
    other, _ = make_evaluator(FakeSupernet(seed=1))
    with pytest.raises(ValueError, match="belongs to supernet .* this supernet is"):
        other.load_state_dict(state)


def test_fingerprint_tracks_weights_and_space(tiny_model_pair):
    a, b = tiny_model_pair
    fp = supernet_fingerprint(a, a.search_space)
    assert fp == supernet_fingerprint(b, b.search_space)
    with __import__("torch").no_grad():
        b.fc1.weight[0, 0] += 1e-3
    assert supernet_fingerprint(b, b.search_space) != fp
    restricted = a.search_space.restrict(["width"], width_indicator=2)
    assert supernet_fingerprint(a, restricted) != fp


@pytest.fixture
def tiny_model_pair():
    import torch

    try:
        from test_search_doubles import TinySupernet
    except ImportError:
        from tests.test_search_doubles import TinySupernet
    torch.manual_seed(0)
    a = TinySupernet()
    b = TinySupernet()
    b.load_state_dict(a.state_dict())
    return a, b


def test_problem_is_an_integer_pymoo_problem_with_negated_max_objectives():
    sn = FakeSupernet()
    space = sn.search_space
    cs = ConstraintSet(["macs <= 40e6", "accuracy >= ref_acc - acc_delta"])
    cs.env = {"ref_acc": 90.0, "acc_delta": 2.0}
    problem = SearchProblem(space, [resolve_objective("accuracy"), resolve_objective("macs")], cs)
    assert (problem.n_var, problem.n_obj, problem.n_ieq_constr) == (len(space), 2, 2)
    assert problem.vtype is int
    assert np.array_equal(problem.xl, space.lower_bounds) and np.array_equal(problem.xu, space.upper_bounds)
    values = [{"accuracy": 91.0, "macs": 50e6}, {"accuracy": 80.0, "macs": 10e6}]
    assert problem.to_F(values).tolist() == [[-91.0, 50e6], [-80.0, 10e6]]
    assert problem.from_F(problem.to_F(values)).tolist() == [[91.0, 50e6], [80.0, 10e6]]
    G = problem.to_G(values)
    assert G[0, 0] > 0 and G[0, 1] < 0 and G[1, 0] < 0 and G[1, 1] > 0


def test_problem_runs_under_plain_pymoo_minimize_and_pickles_without_evaluator():
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.optimize import minimize

    ev, acc = make_evaluator()
    problem = SearchProblem(ev.spec.space, ev.spec.metrics, evaluator=ev)
    algo = NSGA2(pop_size=8, sampling=IntegerRandomSampling(), eliminate_duplicates=True,
                 crossover=SBX(vtype=float, repair=RoundingRepair()), mutation=PM(vtype=float, repair=RoundingRepair()))  # fmt: skip
    res = minimize(problem, algo, ("n_gen", 4), seed=1, verbose=False)
    assert res.F.shape[1] == 2 and len(acc.calls) == ev.n_measured <= 32
    clone = pickle.loads(pickle.dumps(problem))
    assert clone.evaluator is None and clone.n_var == problem.n_var
    with pytest.raises(RuntimeError, match="has no evaluator attached"):
        clone.evaluate(np.zeros((1, problem.n_var)))


def test_options_from_config_and_overrides():
    cfg = {"bootstrapNAS": {"search": {"algorithm": "RNSGA2", "num_evals": 100, "population": 10,
                                       "aspiration_points": [90, 1e6],
                                       "batchnorm_adaptation": {"num_bn_adaptation_samples": 64},
                                       "linas": {"initial_evals": 8}}}}  # fmt: skip
    s = search_options(cfg, num_evals=50, seed=None)
    assert isinstance(s, SearchSection)
    assert (s.algorithm, s.num_evals, s.population, s.ref_acc, s.num_bn_adaptation_samples) == (
        "RNSGA2",
        50,
        10,
        None,
        64,
    )
    assert s.linas.initial_evals == 8 and s.linas.candidates_per_round == 10
    assert SearchSection.from_json(s.to_json()) == s
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.num_evals = 3  # type: ignore[misc]
    bare = search_options({"num_evals": 7})
    assert bare.num_evals == 7 and bare.objectives == ("accuracy", "macs")
    assert search_options(None, num_bn_adaptation_samples=5).num_bn_adaptation_samples == 5
    with pytest.raises(ConfigError, match=r"^bootstrapNAS.search.num_evals: 0 is less than the minimum 1"):
        search_options({"num_evals": 0})
    with pytest.raises(ValueError, match=r"population = 1 is too small for NSGA2; expected >= 2"):
        search(
            FakeSupernet(), {"population": 1, "algorithm": "NSGA2"}, fake_validate, [None], num_evals=5, progress=False
        )
    with pytest.raises(ConfigError, match=r"bootstrapNAS.search.linas.rounds: unknown key 'rounds'"):
        search_options({"linas": {"rounds": 3}})
    with pytest.raises(ConfigError, match="unknown key 'num_eval' \\(did you mean 'num_evals'\\?\\)"):
        search_options(None, num_eval=3)


def test_a_loaded_config_drives_the_search():
    from nncf_bootstrapnas.config import load_config

    cfg = load_config({"input_info": {"sample_size": [1, 3, 8, 8]}, "bootstrapNAS": {"search": {
        "algorithm": "RNSGA2", "num_evals": 20, "population": 6, "weights": 0.5, "aspiration_points": [93, 2e7],
        "constraints": ["macs <= 5e7"], "batchnorm_adaptation": {"num_bn_adaptation_samples": 16}}}})  # fmt: skip
    s = cfg.sections.search
    assert search_options(cfg) is s
    assert [c.to_json() for c in s.constraints] == [{"objective": "macs", "op": "<=", "value": 5e7}]
    assert s.num_bn_adaptation_samples == 16
    for options in (cfg, s):  # a whole Config or its section
        res = search(FakeSupernet(), options, fake_validate, [None], progress=False)
        assert res.algorithm == "RNSGA2" and len(res.rows) == 20 and res.constraints == ["macs <= 50000000.0"]
        assert res.settings["aspiration_points"] == [[93, 2e7]]


def test_a_budget_of_one_measures_the_maximum_subnet_only():
    res = search(FakeSupernet(), None, fake_validate, [None], num_evals=1, algorithm="random", progress=False)
    assert [r["x"] for r in res.rows] == [[0] * 8] and res.anchors == {"maximum": 0} and res.best["index"] == 0
