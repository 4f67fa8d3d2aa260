"""Supernet quality report: stratified sampling, rank statistics, files, and no side effects on the supernet."""

from __future__ import annotations

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


def test_config_budget_and_no_finetune(supernet, loaders) -> None:
    config = {"quality_report": {"num_subnets": 3, "finetune_epochs": 0, "top_k": 1}}
    rep = quality_report(supernet, *loaders, bn_samples=32, proxies=("naswot",), config=config, progress=False)
    assert len(rep.rows) == 3 and rep.settings["top_k"] == 1
    assert rep.reference == "inherited_bn_acc" and "standalone_acc" not in rep.rows[0]
    assert "inherited_bn_acc" not in rep.correlations and "proxy:naswot" in rep.correlations


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
