"""Supernet quality report: stratified sampling, rank statistics, files, and no side effects on the supernet."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from nncf_bootstrapnas.config import ConfigError, load_config
from nncf_bootstrapnas.evaluation import (
    kendall_tau,
    quality_options,
    quality_report,
    rank_agreement,
    sparse_kendall_tau,
    spearman_rho,
    stratified_subnets,
    top_k_overlap,
)
from nncf_bootstrapnas.evaluation.quality_selection import compare_selection, default_budgets, out_of_fold_scores
from nncf_bootstrapnas.evaluation.ranking import bootstrap_ci

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread in this module


@pytest.fixture(scope="module")
def supernet():
    from nncf_bootstrapnas.elasticity import create_supernet
    from nncf_bootstrapnas.models import build_model, example_input

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model("vgg11_bn", small=True).eval()
    options = {"width": {"min_width": 2, "width_multipliers": [1.0, 0.75, 0.5, 0.25]}}
    return create_supernet(model, options, example_input=example_input("vgg11_bn", 1)).eval()


@pytest.fixture(scope="module")
def loaders(digits_module):
    return digits_module.subset_loader(96, split="train", shuffle=True), digits_module.subset_loader(64, split="val")


@pytest.fixture(scope="module")
def report(supernet, loaders, tmp_path_factory):
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    active, modes = supernet.active_config, [m.training for m in supernet.modules()]
    out = tmp_path_factory.mktemp("quality")
    rep = quality_report(
        supernet, *loaders, num_subnets=4, finetune_epochs=1, top_k=2, bn_samples=32, out_dir=out, progress=False
    )
    after = supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the report changed the supernet's weights or BN"
    assert supernet.active_config == active and [m.training for m in supernet.modules()] == modes
    return rep


def test_rows_are_stratified_and_measured(report, supernet) -> None:
    space = supernet.search_space
    rows = report.rows
    assert len(rows) == 4
    assert rows[0]["config"] == space.minimum() and rows[-1]["config"] == space.maximum()
    assert [r["macs"] for r in rows] == sorted(r["macs"] for r in rows)
    for r in rows:
        assert r["macs"] == supernet.macs(r["config"]) and r["params"] == supernet.params(r["config"])
        for key in ("inherited_acc", "inherited_bn_acc", "standalone_acc"):
            assert 0.0 <= r[key] <= 100.0
        assert set(r["proxies"]) == set(report.settings["proxies"])
    assert report.reference == "standalone_acc"


def test_correlations_are_bounded_and_complete(report) -> None:
    expected = {"inherited_acc", "inherited_bn_acc", "macs", "params"} | {
        f"proxy:{p}" for p in report.settings["proxies"]
    }
    assert set(report.correlations) == expected
    for name, stats in report.correlations.items():
        for key in ("kendall_tau", "spearman_rho", "sparse_kendall_tau"):
            assert math.isnan(stats[key]) or -1.0 <= stats[key] <= 1.0, (name, key, stats[key])
        assert stats["top_k_overlap"] in (0.0, 0.5, 1.0), name  # k = 2
    macs_ref = [r["macs"] for r in report.rows]
    assert report.tau("macs") == pytest.approx(kendall_tau(macs_ref, [r["standalone_acc"] for r in report.rows]))


def test_files_are_written(report) -> None:
    data = json.loads(open(report.files["json"]).read())
    assert data["reference"] == "standalone_acc" and len(data["rows"]) == 4
    assert set(data["correlations"]) == set(report.correlations)
    markdown = open(report.files["markdown"]).read()
    assert "| proxy:synflow |" in markdown and "Kendall tau" in markdown
    with open(report.files["scatter"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_config_budget_and_no_finetune(supernet, loaders, tmp_path) -> None:
    config = {"quality_report": {"num_subnets": 3, "finetune_epochs": 0, "top_k": 1}}
    rep = quality_report(
        supernet, *loaders, bn_samples=32, proxies=("naswot",), config=config, progress=False, out_dir=tmp_path
    )
    assert len(rep.rows) == 3 and rep.settings["top_k"] == 1
    assert rep.reference == "inherited_bn_acc" and "standalone_acc" not in rep.rows[0]
    assert "inherited_bn_acc" not in rep.correlations and "proxy:naswot" in rep.correlations
    # no stand-alone reference: nothing to judge picks by, so no selection section anywhere
    assert rep.selection is None and "selection" not in json.loads(open(rep.files["json"]).read())
    assert "Selection mechanisms" not in open(rep.files["markdown"]).read()


def test_bad_arguments_fail_before_measuring(supernet, loaders) -> None:
    with pytest.raises(ConfigError, match=r"^quality_report.num_subnets: 1 is less than the minimum 2"):
        quality_report(supernet, *loaders, num_subnets=1, progress=False)
    with pytest.raises(ConfigError, match=r"^quality_report.proxies\[0\]: 'nope' is not a registered zero-cost proxy"):
        quality_report(supernet, *loaders, proxies=("nope",), progress=False)


def test_options_from_a_config_or_its_section() -> None:
    config = load_config(
        {
            "quality_report": {"num_subnets": 3},
            "bootstrapNAS": {"search": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 48}}},
        }
    )
    section, bn = quality_options(config)
    assert section is config.sections.quality and section.num_subnets == 3 and bn == 48  # the search's setting
    assert quality_options(config, bn_samples=16)[1] == 16
    assert quality_options(section)[1] == quality_options(None)[1] == 2000  # no config: the schema's search default
    assert quality_options({"quality_report": {"top_k": 2}})[0].top_k == quality_options({"top_k": 2})[0].top_k == 2


def test_stratified_subnets_cover_the_macs_range(supernet) -> None:
    space = supernet.search_space
    picked = stratified_subnets(supernet, space, 6, seed=1)
    macs = [supernet.macs(c) for c in picked]
    assert picked[0] == space.minimum() and picked[-1] == space.maximum()
    assert len({tuple(space.encode(c)) for c in picked}) == 6
    edges = np.linspace(macs[0], macs[-1], 7)
    strata = {int(np.clip(np.searchsorted(edges, m, side="right") - 1, 0, 5)) for m in macs}
    assert len(strata) >= 5  # one per stratum, unless a stratum had no sample at all
    assert stratified_subnets(supernet, space, 6, seed=1) == picked


def test_rank_statistics() -> None:
    ref = [70.0, 71.0, 72.0, 73.0]
    assert kendall_tau(ref, ref) == pytest.approx(1.0)
    assert spearman_rho(ref[::-1], ref) == pytest.approx(-1.0)
    # 70.01 and 70.04 round to the same 0.1 %: a tie for the sparse variant only
    pred = [70.04, 70.01, 72.0, 73.0]
    assert kendall_tau(pred, ref) < 1.0
    assert sparse_kendall_tau(pred, ref, pred_is_accuracy=True) > kendall_tau(pred, ref)
    assert top_k_overlap([np.nan, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0], 2) == 1.0  # NaN ranks last
    assert top_k_overlap([3.0, 2.0, 1.0, 0.0], ref, 2) == 0.0
    stats = rank_agreement([1.0, 1.0, 1.0, 1.0], ref, 2, pred_is_accuracy=False)
    assert math.isnan(stats["kendall_tau"]) and stats["n"] == 4
    assert kendall_tau([-np.inf, 1.0, 2.0, 3.0], ref) == pytest.approx(1.0)  # -inf is a valid worst rank


# ---- bootstrap intervals --------------------------------------------------------------------------------------------
def test_report_intervals_are_bounded_and_reproducible(report, supernet, loaders) -> None:
    assert report.settings["bootstrap_resamples"] == 1000 and report.settings["confidence"] == 0.95
    for name, stats in report.correlations.items():
        for key in ("kendall_tau", "spearman_rho"):
            lo, hi = stats[f"{key}_ci"]
            if math.isnan(stats[key]):
                continue
            assert -1.0 <= lo <= hi <= 1.0, (name, key, lo, hi)
        assert 0 < stats["resamples_used"] <= 1000 or math.isnan(stats["kendall_tau"]), name
    again = quality_report(
        supernet, *loaders, num_subnets=4, finetune_epochs=0, bn_samples=32, proxies=(), progress=False
    )
    once = quality_report(
        supernet, *loaders, num_subnets=4, finetune_epochs=0, bn_samples=32, proxies=(), progress=False
    )
    assert _nan_equal(again.correlations, once.correlations)
    markdown = open(report.files["markdown"]).read()
    tau, (lo, hi) = report.tau("macs"), report.correlations["macs"]["kendall_tau_ci"]
    assert f"| macs | {tau:.2f} [{lo:.2f}, {hi:.2f}] |" in markdown


def _nan_equal(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def test_bootstrap_ci_contains_the_estimate_and_follows_the_seed() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=30)
    pred = ref + rng.normal(scale=0.8, size=30)
    ci = bootstrap_ci(pred, ref, resamples=500, seed=7)
    lo, hi = ci["kendall_tau_ci"]
    assert -1.0 <= lo < kendall_tau(pred, ref) < hi <= 1.0
    lo, hi = ci["spearman_rho_ci"]
    assert -1.0 <= lo < spearman_rho(pred, ref) < hi <= 1.0
    assert bootstrap_ci(pred, ref, resamples=500, seed=7) == ci
    assert bootstrap_ci(pred, ref, resamples=500, seed=8) != ci
    assert bootstrap_ci(pred, ref, resamples=200, confidence=0.5, seed=7)["kendall_tau_ci"][0] > ci["kendall_tau_ci"][0]


def test_bootstrap_ci_skips_degenerate_resamples() -> None:
    # 3 rows: a resample drawing one row three times is constant; it is skipped, not scored 0
    ci = bootstrap_ci([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], resamples=400, seed=0)
    assert ci["kendall_tau_ci"] == [1.0, 1.0] and ci["spearman_rho_ci"] == [1.0, 1.0]
    assert 300 < ci["resamples_used"] < 400  # 3/27 of the resamples are constant
    constant = bootstrap_ci([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0], resamples=50)
    assert all(math.isnan(v) for v in constant["kendall_tau_ci"]) and constant["resamples_used"] == 0
    with_nan = bootstrap_ci([np.nan, 1.0, 2.0, 3.0, 4.0], [5.0, 1.0, 2.0, 3.0, 4.0], resamples=50)
    assert with_nan["kendall_tau_ci"] == [1.0, 1.0]  # the NaN row is left out, as for the point estimate


# ---- selection-mechanism comparison ----------------------------------------------------------------------------------
def _graded_rows(report) -> list[dict]:
    """The fixture's subnets with a strictly increasing stand-alone accuracy and two constructed proxies."""
    rows = copy.deepcopy(report.rows)
    for i, r in enumerate(rows):
        r["standalone_acc"] = 50.0 + 10.0 * i
        r["proxies"] = {"oracle": r["standalone_acc"], "anti": -r["standalone_acc"]}
    return rows


def test_report_has_a_selection_section(report) -> None:
    sel = report.selection
    expected = {"inherited_bn_acc", "inherited_acc", "macs", "predictor"} | {
        f"proxy:{p}" for p in report.settings["proxies"]
    }
    assert set(sel["mechanisms"]) == set(sel["summary"]) == expected
    macs = [r["macs"] for r in report.rows]
    assert [b["macs_budget"] for b in sel["budgets"]] == default_budgets(macs) and sel["budgets"][-1][
        "macs_budget"
    ] == max(macs)
    for b in sel["budgets"]:
        for name, p in b["picks"].items():
            assert p["index"] is not None and p["macs"] <= b["macs_budget"], (name, p)
            assert p["regret"] >= 0.0 and p["picked_best"] == (p["regret"] == 0.0)
    data = json.loads(open(report.files["json"]).read())
    assert set(data["selection"]["summary"]) == expected and data["format"] == "nncf_bootstrapnas.quality_report/1"
    assert "## Selection mechanisms" in open(report.files["markdown"]).read()


def test_a_perfect_signal_has_no_regret_and_an_inverted_one_has(report, supernet) -> None:
    rows = _graded_rows(report)
    sel = compare_selection(rows, supernet.search_space, ("oracle", "anti"), seed=0)
    for b in sel["budgets"]:
        assert b["picks"]["proxy:oracle"]["regret"] == 0.0 and b["picks"]["proxy:oracle"]["index"] == b["best_index"]
    assert sel["summary"]["proxy:oracle"] == {"mean_regret": 0.0, "best_picks": 3, "budgets": 3}
    assert sel["summary"]["proxy:anti"]["mean_regret"] > 0.0 and sel["budgets"][-1]["picks"]["proxy:anti"]["index"] == 0
    assert sel["summary"]["proxy:anti"]["best_picks"] < 3
    # explicit budgets: the smallest only admits the minimum subnet, which every mechanism must pick
    tight = compare_selection(rows, supernet.search_space, ("anti",), budgets=[rows[0]["macs"]])
    assert {p["index"] for p in tight["budgets"][0]["picks"].values()} == {0}


class _SpyRegressor:
    """Records the rows it was fitted on and fails if asked to score one of them (an in-fold score)."""

    log: list[tuple[set, list]] = []

    def fit(self, X, y):
        self.seen = {tuple(np.round(x, 9)) for x in X}
        self.mean = float(np.mean(y))
        _SpyRegressor.log.append((self.seen, []))
        return self

    def predict(self, X):
        _SpyRegressor.log[-1][1].extend(tuple(np.round(x, 9)) for x in X)
        return np.array([self.mean + (1000.0 if tuple(np.round(x, 9)) in self.seen else 0.0) for x in X])


def test_predictor_scores_are_out_of_fold(report, supernet) -> None:
    space = supernet.search_space
    configs = [r["config"] for r in report.rows]
    targets = [r["inherited_bn_acc"] for r in report.rows]
    _SpyRegressor.log = []
    scores, folds = out_of_fold_scores(space, configs, targets, seed=0, regressor_factory=_SpyRegressor)
    assert folds == 4 and len(_SpyRegressor.log) == 4  # leave-one-out for 4 subnets
    scored = [row for _, predicted in _SpyRegressor.log for row in predicted]
    assert len(scored) == len(set(scored)) == 4  # every subnet scored exactly once
    assert all(not (set(predicted) & seen) for seen, predicted in _SpyRegressor.log)
    assert np.all(scores < 500.0)  # a model that had seen its row would add 1000
    # leave-one-out: each score is the mean of the other targets
    y = np.asarray(targets)
    np.testing.assert_allclose(scores, (y.sum() - y) / (len(y) - 1))
    # the default regressor, as the report uses it, on the same rows
    default, _ = out_of_fold_scores(space, configs, targets, seed=0)
    np.testing.assert_allclose(default, report.selection["predictor"]["out_of_fold_scores"])
    assert np.isnan(out_of_fold_scores(space, configs[:2], targets[:2])[0]).all()  # too few rows to hold one out


def test_vectorised_resample_statistics_match_scipy() -> None:
    from scipy.stats import kendalltau, spearmanr

    from nncf_bootstrapnas.evaluation.ranking import _rho_rows, _tau_b_rows

    rng = np.random.default_rng(1)
    p, r = rng.integers(0, 4, (40, 7)).astype(float), rng.integers(0, 4, (40, 7)).astype(float)  # many ties
    ok = (np.ptp(p, axis=1) > 0) & (np.ptp(r, axis=1) > 0)
    p, r = p[ok], r[ok]
    np.testing.assert_allclose(_tau_b_rows(p, r), [kendalltau(a, b).statistic for a, b in zip(p, r)], atol=1e-12)
    np.testing.assert_allclose(_rho_rows(p, r), [spearmanr(a, b).statistic for a, b in zip(p, r)], atol=1e-12)
