"""benchmarks/search_efficiency.py --fake: the table is computed from the runs, against a shared reference."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("search_efficiency")


def test_fake_benchmark_table(bench, tmp_path, capsys):
    linas = {"initial_evals": 8, "candidates_per_round": 6, "inner_population": 12, "inner_generations": 5,
             "predictors": ["ridge", "svr"]}  # fmt: skip
    summary = bench.main(["--fake", "--seeds", "2", "--num-evals", "26", "--population", "8", "--fraction", "0.9",
                          "--linas", json.dumps(linas), "--out", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert "Real evaluations to reach 90% of the reference hypervolume" in out
    for algo in ("NSGA2", "random", "LINAS"):
        assert algo in out and summary["algorithms"][algo]["runs"] == 2

    # recompute from the saved runs: reference = front of all rows of all runs, one shared normalisation
    from nncf_bootstrapnas.subnet_search import SearchResult
    from nncf_bootstrapnas.subnet_search.indicators import HVReference, hypervolume, non_dominated

    runs = {
        a: [SearchResult.from_json(tmp_path / f"{a}_seed{s}.json") for s in range(2)]
        for a in ("NSGA2", "random", "LINAS")
    }
    F = np.vstack([r.F() for rs in runs.values() for r in rs])
    reference = HVReference.from_rows(F)
    ref_hv = hypervolume(F[non_dominated(F)], reference)
    assert summary["reference_hv"] == pytest.approx(ref_hv)
    best_final = max(r.hypervolume_history(reference)[-1] for rs in runs.values() for r in rs)
    assert best_final <= ref_hv + 1e-12
    for algo, rs in runs.items():
        row = summary["algorithms"][algo]
        needed = [r.evaluations_to_reach(0.9 * ref_hv, reference) for r in rs]
        assert row["per_run"] == needed and row["never_reached"] == sum(n is None for n in needed)
        reached = [n for n in needed if n is not None]
        if reached:
            assert row["evals_mean"] == pytest.approx(np.mean(reached)) and 2 <= min(reached) <= 26
    assert json.loads((tmp_path / "summary.json").read_text())["fraction"] == 0.9
    assert "never reached" in bench.format_table(summary)


def test_rnsga2_runs_beside_the_others_and_needs_its_points(bench, tmp_path, capsys):
    summary = bench.main(["--fake", "--seeds", "1", "--num-evals", "16", "--population", "8", "--algorithms", "NSGA2",
                          "RNSGA2", "--aspiration-points", "[[85, 4e7], [70, 1e7]]", "--out", str(tmp_path)])  # fmt: skip
    assert summary["algorithms"]["RNSGA2"]["runs"] == summary["algorithms"]["NSGA2"]["runs"] == 1
    assert (tmp_path / "RNSGA2_seed0.json").exists() and "RNSGA2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.parse_args(["--fake", "--algorithms", "RNSGA2"])
    assert "RNSGA2 needs --aspiration-points" in capsys.readouterr().err


def test_every_run_of_an_invocation_estimates_latency_from_one_table(bench):
    from types import SimpleNamespace

    from nncf_bootstrapnas.deployment import LatencyLUT

    assert bench.shared_objectives(["accuracy", "macs"]) == ["accuracy", "macs"]
    accuracy, lut = bench.shared_objectives(["accuracy", "latency_lut"])
    assert accuracy == "accuracy" and lut.name == "latency_lut" and isinstance(lut.lut, LatencyLUT)
    first, second = SimpleNamespace(shared={}), SimpleNamespace(shared={})  # two searches, two evaluators
    assert lut._get_lut(first) is lut._get_lut(second) is lut.lut
