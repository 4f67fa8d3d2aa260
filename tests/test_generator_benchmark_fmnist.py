"""benchmarks/generator_digits.py --dataset fashion-mnist end to end: a tiny untrained supernet artifact and tiny
Fashion-MNIST IDX files written here (plumbing and report invariants, not accuracy)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nncf_bootstrapnas.data.fashion_mnist import DEFAULT_VAL_SIZE

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("generator_digits")


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory) -> Path:
    """Random IDX files: the default 5 000-image validation split plus 200 training images, 20 test images."""
    from test_cli_data import write_random_fashion

    return write_random_fashion(tmp_path_factory.mktemp("fmnist"), DEFAULT_VAL_SIZE + 200, 20)


def test_fashion_mnist_path_reports_satisfaction_accuracy_and_cost(
    bench, fashion_dir, tiny_fmnist_artifact, tmp_path, capsys
):
    out = tmp_path / "generator.json"
    summary = bench.main(["--dataset", "fashion-mnist", "--artifact", str(tiny_fmnist_artifact),
                          "--data-root", str(fashion_dir),
                          "--eval-subset", "40", "--bn-samples", "32", "--search-evals", "8", "--population", "4",
                          "--generator-rows", "4", "--generator-epochs", "1", "--targets", "3", "--threads", "1",
                          "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert "under budget" in printed and "vs one search" in printed
    assert json.loads(out.read_text())["dataset"] == "fashion-mnist"
    assert summary["dataset"] == "fashion-mnist" and "40 validation images" in summary["data"]
    assert summary["supernet"]["artifact"] == str(tiny_fmnist_artifact)

    for block in (summary["generator"], summary["random_configs"], summary["generator_from_search_rows"]):
        assert 0.0 <= block["fraction_within_band"] <= block["fraction_under_budget"] <= 1.0  # band: under budget
    assert summary["generator"]["ms_per_generation"] > 0
    strict = summary["generator_strict"]
    assert strict["fraction_under_budget"] == 1.0  # stepped down until the exact MACs meet every budget
    assert 0.0 <= strict["fraction_within_band"] <= 1.0 and strict["ms_per_generation"] > 0
    assert summary["generator_train_s"] > 0 and summary["search_s"] > 0
    assert summary["search_evals"] == 8 and summary["generator_train_over_search"] > 0
    assert summary["targets"] == 3 and len(summary["rows"]) == 3

    # every accuracy is the search's measurement: the re-measured front equals the search's values
    assert summary["front_size"] >= 1 and summary["front_rescore_max_abs_diff"] == pytest.approx(0.0, abs=1e-9)
    for row in summary["rows"]:
        assert 0.0 <= row["accuracy"] <= 100.0
        assert row["front_accuracy"] is None or 0.0 <= row["front_accuracy"] <= 100.0
    gaps = [r["accuracy"] - r["front_accuracy"] for r in summary["rows"] if r["front_accuracy"] is not None]
    assert summary["budgets_compared"] == len(gaps)
    if gaps:
        assert summary["accuracy_gap_vs_front_mean"] == pytest.approx(float(np.mean(gaps)))
    else:
        assert summary["accuracy_gap_vs_front_mean"] is None


def test_fashion_mnist_needs_an_artifact(bench):
    with pytest.raises(SystemExit):
        bench.parse_args(["--dataset", "fashion-mnist"])
