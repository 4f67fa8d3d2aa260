"""Algorithms end to end on the analytic FakeSupernet: budget, no repeats, measured fronts, determinism, steering."""

from __future__ import annotations

import numpy as np
import pytest

from nncf_bootstrapnas.config import ConfigError
from nncf_bootstrapnas.registry import SEARCH_ALGORITHMS
from nncf_bootstrapnas.subnet_search import SearchAlgorithm, search
from nncf_bootstrapnas.subnet_search.indicators import non_dominated

try:
    from test_search_fakes import FakeSupernet, fake_validate
except ImportError:  # tests/ imported as a package
    from tests.test_search_fakes import FakeSupernet, fake_validate

FAST_LINAS = {"initial_evals": 10, "candidates_per_round": 6, "inner_population": 16, "inner_generations": 6,
              "predictors": ["ridge", "svr"]}  # fmt: skip


def run(algorithm: str, num_evals: int = 40, seed: int = 0, sn: FakeSupernet | None = None, **kw):
    kw.setdefault("population", 10)
    kw.setdefault("linas", FAST_LINAS)
    if algorithm == "RNSGA2":  # required by the options; the origin is what the algorithm used to fall back to
        kw.setdefault("aspiration_points", [[0.0, 0.0]])
    return search(sn or FakeSupernet(), None, fake_validate, [None], algorithm=algorithm, num_evals=num_evals,
                  seed=seed, progress=False, **kw)  # fmt: skip


@pytest.mark.parametrize("algorithm", ["NSGA2", "RNSGA2", "random", "LINAS"])
def test_budget_anchors_measured_front_and_hv(algorithm):
    sn = FakeSupernet()
    res = run(algorithm, 37, sn=sn)  # not a multiple of the population: the budget is exact anyway
    space = sn.search_space
    assert len(res.rows) == 37 and res.stopped_by == "budget of 37 evaluations"
    assert [r["index"] for r in res.rows] == list(range(37))
    assert len({tuple(r["x"]) for r in res.rows}) == 37  # never the same subnet twice
    assert res.rows[0]["x"] == [0] * len(space) and res.rows[1]["x"] == space.upper_bounds.tolist()
    assert res.maximum is res.rows[0] and res.minimum is res.rows[1]
    for r in res.rows:  # everything reported is a measurement of that very config
        assert r["values"]["accuracy"] == sn.accuracy(r["config"]) and r["values"]["macs"] == sn.macs(r["config"])
    F = np.array([[-r["values"]["accuracy"], r["values"]["macs"]] for r in res.rows])
    assert sorted(res.front_indices) == sorted(non_dominated(F).tolist())
    hv = np.array(res.hv_history)
    assert len(hv) == 37 and np.all(np.diff(hv) >= -1e-12) and hv[-1] > hv[1] > 0
    assert res.hypervolume == pytest.approx(res.hypervolume_history()[-1])


@pytest.mark.parametrize("algorithm", ["NSGA2", "random", "LINAS"])
def test_same_seed_same_rows_other_seed_other_rows(algorithm):
    a, b, c = run(algorithm, 24, seed=3), run(algorithm, 24, seed=3), run(algorithm, 24, seed=4)
    xs = [[r["x"] for r in res.rows] for res in (a, b, c)]
    assert xs[0] == xs[1] and xs[0] != xs[2]


def test_search_finds_a_better_front_than_its_start():
    res = run("NSGA2", 80)
    assert res.hypervolume > res.hv_history[19] > 0  # generations after the first two improve the front


def test_linas_predicts_only_expensive_objectives_and_reports_kendall_tau():
    res = run("LINAS", 34)
    rounds = res.algorithm_stats["rounds"]
    assert len(rounds) == 4  # (34 - 10 initial) / 6 per round
    for r in rounds:
        assert set(r["metrics"]) == {"accuracy"}  # MACs are exact, never predicted
        m = r["metrics"]["accuracy"]
        assert m["predictor"] in FAST_LINAS["predictors"] and m["n_holdout"] == 6
        assert m["holdout_tau"] is None or -1.0 <= m["holdout_tau"] <= 1.0
    taus = [r["metrics"]["accuracy"]["holdout_tau"] for r in rounds]
    assert np.nanmean([t for t in taus if t is not None]) > 0  # predictions rank the new subnets better than chance


def test_linas_reaches_a_higher_hypervolume_than_random_at_equal_budget():
    linas = [run("LINAS", 40, seed=s).hypervolume for s in (0, 1)]
    rand = [run("random", 40, seed=s).hypervolume for s in (0, 1)]
    assert np.mean(linas) > np.mean(rand)


def test_constraints_reach_pymoo_and_steer_the_search():
    sn = FakeSupernet()
    bound = sn.macs(sn.search_space.maximum()) * 0.5
    res = run("NSGA2", 80, sn=sn, constraints=[f"macs <= {bound}"])
    assert res.constraints == [f"macs <= {float(bound)}"]
    for r in res.rows:
        g = r["values"]["macs"] - bound
        assert r["constraints"] == [pytest.approx(g)] and r["feasible"] == (g <= 0)
    assert all(res.rows[i]["feasible"] for i in res.front_indices)
    first, last = res.feasible[:20].mean(), res.feasible[-20:].mean()
    assert last > first  # pymoo's constraint handling pushes the population into the feasible region


def test_unset_ref_acc_constraint_uses_the_maximum_subnet():
    res = run("random", 30, constraints=["accuracy >= ref_acc - acc_delta"], acc_delta=5.0)
    top = res.maximum["values"]["accuracy"]
    assert res.ref_acc == top and res.ref_acc_source == "measured maximum subnet"
    for r in res.rows:
        assert r["feasible"] == (r["values"]["accuracy"] >= top - 5.0)
    assert 0 < res.feasible.sum() < len(res.rows)


def test_rnsga2_aspiration_points_are_checked():
    with pytest.raises(
        ConfigError,
        match=r"aspiration_points\[0\]: has 3 coordinate\(s\) but there are 2 objectives \['accuracy', 'macs'\]",
    ):
        run("RNSGA2", 20, aspiration_points=[[90.0, 1e7, 3.0]])
    res = run("RNSGA2", 30, aspiration_points=[[93.0, 2e7]], extreme_points_as_ref_points=True)
    assert len(res.rows) == 30


def test_small_space_is_exhausted_not_looped_forever():
    from nncf_bootstrapnas.elasticity.search_space import SearchSpace

    sn = FakeSupernet(n_width=1, n_kernel=1, n_depth=0)
    assert sn.search_space.size == 12
    for algorithm in ("random", "LINAS", "NSGA2"):
        res = run(algorithm, 50, sn=sn, population=4, mutation_prob=1.0)
        assert len(res.rows) <= 12 and res.stopped_by in {"search space exhausted", f"{algorithm} finished"}
        if algorithm != "NSGA2":
            assert len(res.rows) == 12
    assert isinstance(sn.search_space, SearchSpace)


def test_user_registered_algorithm_and_case_insensitive_names():
    @SEARCH_ALGORITHMS.register("test_lowest_index")
    class Sweep(SearchAlgorithm):
        """Measures configs in lexicographic order."""

        def setup(self, driver):
            super().setup(driver)
            self.next = 0

        def step(self):
            xu = self.driver.space.upper_bounds
            X = [np.unravel_index(self.next + i, xu + 1) for i in range(3)]
            self.next += 3
            self.driver.evaluate(np.array(X))

    try:
        res = run("test_lowest_index", 11)
        assert res.algorithm == "test_lowest_index" and len(res.rows) == 11
        assert run("nsga2", 12).algorithm == "NSGA2"
        with pytest.raises(ConfigError, match="'NSGA3' is not a registered search algorithm .*; registered: .*LINAS"):
            run("NSGA3", 12)
    finally:
        SEARCH_ALGORITHMS.unregister("test_lowest_index")


def test_input_errors_name_the_problem():
    with pytest.raises(Exception, match=r"objective\(s\) \['accuracy'\] need validate_fn and val_loader"):
        search(FakeSupernet(), None, num_evals=10, progress=False)
    with pytest.raises(ConfigError, match=r"bootstrapNAS.search.objectives: contains duplicates: 'macs'"):
        run("random", 10, objectives=["macs", "macs"])
    res = search(FakeSupernet(), None, num_evals=10, objectives=["macs", "params"], algorithm="random", progress=False)
    assert res.best is not None and res.metrics == ["macs", "params"]  # no accuracy needed, no validate_fn


def test_callback_sees_every_step_and_can_stop_the_search():
    seen = []

    def stop_after_two(info):
        seen.append((info["step"], info["evaluations"]))
        return info["step"] == 2

    res = search(FakeSupernet(), None, fake_validate, [None], algorithm="random", num_evals=40, population=5,
                 callback=stop_after_two, progress=False)  # fmt: skip
    assert seen == [(1, 7), (2, 12)] and len(res.rows) == 12 and res.stopped_by == "callback"


def test_nsga2_with_the_smallest_population_runs_to_its_budget():
    """population 2, the smallest allowed, runs: every measured row is a distinct subnet."""
    res = run("NSGA2", 40, population=2)
    assert 2 <= len(res.rows) <= 40 and len({str(r["config"]) for r in res.rows}) == len(res.rows)
