"""Legacy facade on a real torch supernet: BaseSearchAlgorithm.from_config(...).run(...) and its outputs."""

from __future__ import annotations

import csv

import pytest

from nncf_bootstrapnas.config import ConfigError
from nncf_bootstrapnas.subnet_search import BaseSearchAlgorithm

try:
    from test_search_doubles import one_torch_thread, tiny_supernet_and_data, top1  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.test_search_doubles import one_torch_thread, tiny_supernet_and_data, top1  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def legacy_config(tmp_path, **search):
    section = {"algorithm": "NSGA2", "num_evals": 12, "population": 6, "acc_delta": 3.0, "eval_subset_size": 100,
               "batchnorm_adaptation": {"num_bn_adaptation_samples": 128}, **search}  # fmt: skip
    return {"bootstrapNAS": {"search": section}, "log_dir": str(tmp_path / "log")}


def test_legacy_run_returns_controller_best_config_and_metrics(tiny_supernet_and_data, tmp_path):
    model, dm = tiny_supernet_and_data
    seen = []

    def validate(m, loader):
        seen.append(sum(len(y) for _, y in loader))
        return top1(m, loader)

    controller = object()  # legacy scripts pass the elasticity controller; it is handed back untouched
    algo = BaseSearchAlgorithm.from_config(model, controller, legacy_config(tmp_path))
    ctrl, best_config, metrics = algo.run(validate, dm.val_loader(), str(tmp_path / "ckpt"))
    res = algo.result
    assert ctrl is controller and len(res.rows) == 12 and set(seen) == {100}
    assert best_config == res.best_config and model.active_config == best_config  # the selected subnet is active
    best = res.best["values"]
    assert metrics == [best["accuracy"], best["macs"] / 1e6]
    assert best["accuracy"] >= res.maximum["values"]["accuracy"] - 3.0
    assert res.best["values"]["macs"] == min(
        r["values"]["macs"] for r in res.rows if r["values"]["accuracy"] >= res.ref_acc - 3.0
    )
    assert 50.0 < res.maximum["values"]["accuracy"] <= 100.0  # real validation of a trained model
    assert (tmp_path / "ckpt" / "search_state.json").exists()

    path = algo.search_progression_to_csv()
    assert path == tmp_path / "log" / "search_progression.csv"
    rows = list(csv.reader(open(path, encoding="utf8")))
    assert len(rows) == 12 and rows[0][1] == "accuracy" and float(rows[0][2]) == res.rows[0]["values"]["accuracy"]
    png = algo.visualize_search_progression()
    assert png == tmp_path / "log" / "search_progression.png" and png.read_bytes()[:4] == b"\x89PNG"
    assert algo.search_records[3][0] == res.rows[3]["config"]


def test_legacy_efficiency_evaluator_replaces_macs(tiny_supernet_and_data, tmp_path):
    model, dm = tiny_supernet_and_data

    class LegacyLatencyEvaluator:  # NNCF BaseEvaluator style: measures the active subnet, no arguments
        name = "latency"

        def evaluate_subnet(self):
            w = model.active_config["width"]
            return 0.01 * (w["fc1"] + 2 * w["fc2"])

    algo = BaseSearchAlgorithm.from_config(model, None, legacy_config(tmp_path, num_evals=8))
    _, best_config, metrics = algo.run(
        top1, dm.val_loader(), tmp_path / "ckpt", efficiency_evaluator=LegacyLatencyEvaluator()
    )
    res = algo.result
    assert res.objective_names == ["accuracy", "latency"] and "macs" not in res.metrics
    w = best_config["width"]
    assert metrics == [res.best["values"]["accuracy"], pytest.approx(0.01 * (w["fc1"] + 2 * w["fc2"]))]


def test_from_config_rejects_unknown_algorithms(tmp_path):
    with pytest.raises(
        ConfigError,
        match="bootstrapNAS.search.algorithm: 'EA' is not a registered search algorithm; registered: .*NSGA2",
    ):
        BaseSearchAlgorithm.from_config(object(), None, legacy_config(tmp_path, algorithm="EA"))
