"""SearchResult: the legacy "best" (and its sign bug), hypervolume bookkeeping, files and plots."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from nncf_bootstrapnas.subnet_search import HVReference, SearchResult, search
from nncf_bootstrapnas.subnet_search.indicators import hypervolume, hypervolume_history, non_dominated

try:
    from test_search_fakes import FakeSupernet, fake_validate
except ImportError:  # tests/ imported as a package
    from tests.test_search_fakes import FakeSupernet, fake_validate


@pytest.fixture(scope="module")
def result() -> SearchResult:
    return search(FakeSupernet(), {"bootstrapNAS": {"search": {"acc_delta": 3.0, "population": 10}}}, fake_validate,
                  [None], algorithm="NSGA2", num_evals=50, progress=False)  # fmt: skip


def test_best_is_fewest_macs_within_acc_delta_of_the_measured_maximum(result):
    top = result.maximum["values"]["accuracy"]
    assert result.ref_acc == top and result.acc_delta == 3.0
    within = [r for r in result.rows if r["values"]["accuracy"] >= top - 3.0]
    expected = min(within, key=lambda r: r["values"]["macs"])
    assert result.best["index"] == expected["index"] and result.best_config == expected["config"]


def test_legacy_sign_bug_unset_ref_acc_does_not_accept_everything(result):
    """Legacy: ref_acc=-1 -> bound = -(ref_acc - delta) = 1 + delta and -acc < bound held for every subnet.

    The fixed selection must exclude subnets far below the maximum subnet, i.e. NOT return the smallest subnet.
    """
    smallest = min(result.rows, key=lambda r: r["values"]["macs"])
    assert smallest["values"]["accuracy"] < result.ref_acc - result.acc_delta  # the fake makes it clearly worse
    legacy_lower = -1 - result.acc_delta  # what legacy BootstrapNAS computed without ref_acc
    legacy_pick = min(
        (r for r in result.rows if -r["values"]["accuracy"] < -legacy_lower), key=lambda r: r["values"]["macs"]
    )
    assert legacy_pick["index"] == smallest["index"]  # the bug, reproduced
    assert result.best["index"] != smallest["index"]  # and fixed
    assert result.best["values"]["accuracy"] >= result.ref_acc - result.acc_delta


def test_explicit_ref_acc_and_no_qualifying_subnet():
    sn = FakeSupernet()
    res = search(sn, None, fake_validate, [None], algorithm="random", num_evals=20, ref_acc=100.0, acc_delta=1.0,
                 progress=False)  # fmt: skip  # the fake's accuracies stay below 96 %
    assert res.ref_acc == 100.0 and res.ref_acc_source == "bootstrapNAS.search.ref_acc" and res.best is None
    choice = res.select()  # the one fallback: the most accurate measured subnet, marked as not qualifying
    assert not choice.qualified and "NO subnet within acc_delta=1.0 of ref_acc=100.00" in choice.rule
    assert choice.values["accuracy"] == max(r["values"]["accuracy"] for r in res.rows)
    default = search(sn, {}, fake_validate, [None], algorithm="random", num_evals=20, progress=False)
    assert default.ref_acc == default.maximum["values"]["accuracy"]
    assert default.select().qualified and default.select().row is default.best


def test_hv_reference_comes_from_the_maximum_and_minimum_subnets(result):
    ref = result.reference()
    mx, mn = result.maximum["values"], result.minimum["values"]
    assert ref.ideal == (-mx["accuracy"], mn["macs"]) and ref.nadir == (-mn["accuracy"], mx["macs"])
    assert result.hv_reference["point_normalised"] == [1.1, 1.1] and result.hv_reference["margin"] == 0.1
    F, feas = result.F(), result.feasible
    for k in (1, 2, 10, 25, 50):  # each entry is pymoo's HV of the non-dominated prefix
        front = F[:k][non_dominated(F[:k])]
        assert result.hv_history[k - 1] == pytest.approx(hypervolume(front, ref))
    assert result.hv_history == pytest.approx(hypervolume_history(F, feas, ref))
    # normalised, the anchors sit at the corners (0, 1) and (1, 0): two 1.1 x 0.1 strips overlapping in 0.1 x 0.1
    assert result.hv_history[0] == pytest.approx(1.1 * 0.1) and result.hv_history[1] == pytest.approx(0.21)


def test_anchor_hypervolume_is_the_two_corner_boxes():
    ref = HVReference(ideal=(0.0, 0.0), nadir=(1.0, 1.0), margin=0.1)
    F = np.array([[0.0, 1.0], [1.0, 0.0]])  # best accuracy/most MACs and worst accuracy/fewest MACs
    assert hypervolume(F, ref) == pytest.approx(2 * 1.1 * 0.1 - 0.1 * 0.1)
    assert hypervolume(np.array([[2.0, 2.0]]), ref) == 0.0  # outside the reference box adds nothing
    ties = HVReference.from_anchors(np.array([[1.0, 5.0], [1.0, 3.0]]), np.array([[0.5, 4.0], [1.5, 4.0]]))
    assert ties.ideal == (0.5, 3.0) and ties.nadir == (1.5, 5.0) and "widened" in ties.source


def test_evaluations_to_reach(result):
    final = result.hypervolume
    n = result.evaluations_to_reach(final)
    assert 1 <= n <= len(result.rows) and result.hv_history[n - 1] >= final - 1e-12
    assert n == 1 or result.hv_history[n - 2] < final
    assert result.evaluations_to_reach(final * 2) is None


def test_json_round_trip_and_csv(result, tmp_path):
    result.to_json(tmp_path / "r.json")
    back = SearchResult.from_json(tmp_path / "r.json")
    assert back.to_dict() == result.to_dict()
    assert back.best["index"] == result.best["index"] and back.front_indices == result.front_indices
    json.loads((tmp_path / "r.json").read_text())  # strict JSON (no NaN)
    rows = list(csv.DictReader(open(result.to_csv(tmp_path / "r.csv"), encoding="utf-8")))
    assert len(rows) == len(result.rows)
    assert [int(r["index"]) for r in rows if r["on_front"] == "1"] == sorted(result.front_indices)
    assert [int(r["index"]) for r in rows if r["best"] == "1"] == [result.best["index"]]
    assert json.loads(rows[3]["config"]) == result.rows[3]["config"]
    assert float(rows[7]["accuracy"]) == result.rows[7]["values"]["accuracy"]


def test_markdown_and_plots(result, tmp_path):
    md = result.to_markdown()
    assert md.startswith("# Search result (NSGA2)") and "## Measured Pareto front" in md
    assert f"Evaluation #{result.best['index']}" in md and md.count("\n| ") >= len(result.front) // 2
    files = result.save(tmp_path / "out")
    for key in ("pareto", "progression"):
        data = files[key].read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert files["json"].exists() and files["csv"].exists() and files["markdown"].read_text() == md
    with pytest.raises(ValueError, match="cannot plot 'latency_ms': not a measured metric"):
        result.plot_pareto(tmp_path / "x.png", x="latency_ms")


def test_best_without_accuracy_is_the_front_point_nearest_the_ideal():
    res = search(FakeSupernet(), None, objectives=["macs", "params"], algorithm="random", num_evals=15, progress=False)
    d = np.linalg.norm(res.reference().normalise(res.F(res.front)), axis=1)
    assert res.best["index"] == res.front[int(np.argmin(d))]["index"]
