"""NNCF 2.18 BootstrapNAS side of the peer benchmark, called the way NNCF's own sample (bootstrap_nas.py) calls it.

Runs in the NNCF 2.18 venv; nothing of this repository but ``common.py`` (torch/torchvision only) is imported.
``python nncf_side.py coverage|train|pretrain SPEC.json RESULT.json``. NNCF 2.18 builds its BootstrapNAS graph only
with legacy tracing (``NNCF_TORCH_LEGACY_TRACING=1``, set by the parent); without it every search space is empty.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from nncf import NNCFConfig  # noqa: E402
from nncf.config.structures import BNAdaptationInitArgs  # noqa: E402
from nncf.experimental.torch.nas.bootstrapNAS import BaseSearchAlgorithm, EpochBasedTrainingAlgorithm  # noqa: E402
from nncf.torch.initialization import wrap_dataloader_for_init  # noqa: E402
from nncf.torch.model_creation import create_nncf_network  # noqa: E402


def _nncf_config(config: dict[str, Any], log_dir: Path, bn_loader: Any) -> NNCFConfig:
    nncf_config = NNCFConfig.from_dict(copy.deepcopy(config))
    nncf_config["log_dir"] = str(log_dir)
    nncf_config.register_extra_structs(
        [BNAdaptationInitArgs(data_loader=wrap_dataloader_for_init(bn_loader), device="cpu")]
    )
    return nncf_config


def _build(model: torch.nn.Module, nncf_config: NNCFConfig) -> tuple[Any, EpochBasedTrainingAlgorithm]:
    network = create_nncf_network(model, nncf_config)
    return network, EpochBasedTrainingAlgorithm.from_config(network, nncf_config)


def _handler(algo: EpochBasedTrainingAlgorithm) -> Any:
    return algo.elasticity_ctrl.multi_elasticity_handler


def _mmacs(handler: Any) -> float:
    """NNCF's own MACs count of the active subnet, in millions (the sample's ``flops / 2e6``)."""
    return handler.count_flops_and_weights_for_active_subnet()[0] / 2e6


def depth_groups(algo: EpochBasedTrainingAlgorithm) -> list[list[int]]:
    """NNCF's skippable blocks grouped by connectivity, from its plain-JSON compression state."""
    builders = algo.elasticity_ctrl.get_compression_state()["builder_state"]["elasticity"]["builder_states"]
    return [list(group) for group in builders.get("depth", {}).get("skipped_blocks_dependencies", {}).values()]


def space_counts(handler: Any, groups: list[list[int]]) -> dict[str, Any]:
    """Elastic elements with more than one choice per dimension, and the size of the search space (NNCF's design
    variables: one per width group and kernel, one for depth, whose choices depend on the depth_indicator)."""
    handler.enable_all()
    space = {getattr(k, "value", k): v for k, v in handler.get_search_space().items()}
    width = space.get("width", {})
    kernel = space.get("kernel", [])
    _, upper = handler.get_design_vars_info()
    return {"width": sum(len(c) > 1 for c in width.values()), "kernel": sum(len(c) > 1 for c in kernel),
            "depth": sum(len(g) for g in groups), "depth_configs": len(space.get("depth", [])),
            "num_vars": len(upper), "size": math.prod(u + 1 for u in upper) if upper else 0}  # fmt: skip


def widest_depth_space(handler: Any, groups: list[list[int]]) -> tuple[int | None, str | None]:
    """Sets the widest depth_indicator whose depth search space NNCF can build (the longest block group, as in ours,
    else the largest that works); returns it and the failure of the wider ones."""
    depth = handler.depth_handler
    if depth is None:
        return None, None
    error = None
    for indicator in range(max([len(g) for g in groups] or [1]), 0, -1):
        depth.depth_indicator = indicator
        try:
            depth.get_search_space()
            return indicator, error
        except Exception as exc:  # recorded: NNCF's own depth search space fails at this indicator
            error = error or f"depth_indicator {indicator}: {common.failure(exc)}"
    return None, error


def coverage_one(name: str, config: dict[str, Any], size: int, work: Path) -> dict[str, Any]:
    model = common.zoo_model(name, size).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        reference = model(x)
    bn_data = torch.utils.data.TensorDataset(torch.randn(4, 3, size, size), torch.zeros(4, dtype=torch.long))
    nncf_config = _nncf_config(config, work, torch.utils.data.DataLoader(bn_data, batch_size=2))
    start = time.perf_counter()
    network, algo = _build(model, nncf_config)
    row: dict[str, Any] = {"generation_s": time.perf_counter() - start}
    handler, groups = _handler(algo), depth_groups(algo)
    row.update(space_counts(handler, groups))
    handler.activate_maximum_subnet()
    network.eval()
    with torch.no_grad():
        row["max_abs_diff"] = common.max_abs_diff(network(x), reference)
    row["reference_abs_max"] = float(reference.abs().max())
    row["macs_max"] = _mmacs(handler) * 1e6
    row["depth_indicator"], row["depth_error"] = widest_depth_space(handler, groups)
    try:
        handler.activate_minimum_subnet()
        row["macs_min"] = _mmacs(handler) * 1e6
    except Exception as exc:  # the supernet was built; its minimum subnet cannot be activated
        row["macs_min"], row["min_error"] = None, common.failure(exc)
    return row


def coverage(spec: dict[str, Any]) -> dict[str, Any]:
    rows = {}
    for i, name in enumerate(spec["models"]):
        common.progress(f"NNCF 2.18 coverage {name} ({i + 1}/{len(spec['models'])})")
        torch.manual_seed(spec.get("seed", 0))
        start = time.perf_counter()
        try:
            with common.time_limit(spec.get("timeout_s", 0)):
                rows[name] = {"converts": True, **coverage_one(name, spec["config"], spec["image_size"],
                                                               Path(spec["work"]))}  # fmt: skip
        except Exception as exc:  # recorded, not worked around
            rows[name] = {"converts": False, "error": common.failure(exc), "where": common.origin(exc),
                          "generation_s": time.perf_counter() - start}  # fmt: skip
    return {"models": rows, "legacy_tracing": os.environ.get("NNCF_TORCH_LEGACY_TRACING", "")}


def overhead(plain: torch.nn.Module, network: torch.nn.Module, dataset: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Forward and training-step time at the maximum subnet (NNCF's initial state) vs the plain model."""
    batch = dataset.tensors[0][: spec["batch_size"]], dataset.tensors[1][: spec["batch_size"]]
    saved = copy.deepcopy(network.state_dict())  # the timed steps use lr 0 but still update BN statistics
    plain_opt = torch.optim.SGD(plain.parameters(), lr=0.0)
    net_opt = torch.optim.SGD(network.parameters(), lr=0.0)
    fns = {"plain_forward": common.forward_fn(plain, batch[0]), "supernet_forward": common.forward_fn(network, batch[0]),
           "plain_step": common.step_fn(plain, plain_opt, batch),
           "supernet_step": common.step_fn(network, net_opt, batch)}  # fmt: skip
    times = common.interleaved_medians(fns, spec["timing_repeats"])
    network.load_state_dict(saved)
    return times


def train(spec: dict[str, Any]) -> dict[str, Any]:
    """Generation, overhead, progressive-shrinking training, NSGA-II search, max/min subnet accuracy."""
    work = Path(spec["work"])
    train_loader, val_loader = common.loaders(spec["data"], spec["batch_size"], spec["seed"])
    config = common.read_config(spec["config"])
    nncf_config = _nncf_config(config, work, train_loader)
    weights = torch.load(spec["weights"], weights_only=True)
    model, plain = common.bench_model(), common.bench_model()
    model.load_state_dict(weights)
    plain.load_state_dict(weights)
    out: dict[str, Any] = {}
    start = time.perf_counter()
    network, algo = _build(model, nncf_config)
    out["generation_s"] = time.perf_counter() - start
    common.progress("NNCF 2.18 overhead timing")
    out["timing"] = overhead(plain, network, train_loader.dataset, spec)
    optimizer = common.make_optimizer(network.parameters(), config.get("optimizer", {}))
    common.progress("NNCF 2.18 training")
    start = time.perf_counter()
    network, elasticity_ctrl = algo.run(common.make_train_epoch_fn(spec.get("train_steps")), train_loader,
                                        common.validate, val_loader, optimizer, str(work), None,
                                        spec.get("train_steps"))  # fmt: skip
    out["train_s"] = time.perf_counter() - start
    common.progress("NNCF 2.18 search")
    start = time.perf_counter()
    search_algo = BaseSearchAlgorithm.from_config(network, elasticity_ctrl, nncf_config)
    _, best_config, metrics = search_algo.run(common.validate_top1, val_loader, str(work), ref_acc=spec["ref_acc"])
    out["search_s"] = time.perf_counter() - start
    out["search"] = search_points(search_algo.search_records)
    out["search"]["own_best"] = {"accuracy": metrics[1], "mmacs": metrics[0]} if len(metrics) == 2 else None
    handler = elasticity_ctrl.multi_elasticity_handler
    for name, activate in (("max", handler.activate_maximum_subnet), ("min", handler.activate_minimum_subnet)):
        activate()
        search_algo.bn_adaptation.run(network)  # as the sample measures its maximal / best subnet
        out[f"{name}_accuracy"] = common.validate_top1(network, val_loader)
        common.recalibrate_bn(network, train_loader, spec["bn_samples"])
        out[f"{name}_accuracy_common_bn"] = common.validate_top1(network, val_loader)
        out[f"{name}_macs"] = _mmacs(handler) * 1e6
    out["space"] = space_counts(handler, depth_groups(algo))
    return out


def search_points(records: list[list[Any]]) -> dict[str, Any]:
    """Unique evaluated subnets from NNCF's search records ``[config, eff_name, MMACs, acc_name, -acc]``."""
    points: dict[str, dict[str, float]] = {}
    for record in records:
        key = repr(record[0])
        if key not in points:
            points[key] = {"mmacs": float(record[2]), "accuracy": abs(float(record[4]))}
    return {"records": len(records), "points": list(points.values())}


if __name__ == "__main__":
    raise SystemExit(common.run_worker({"coverage": coverage, "train": train, "pretrain": common.pretrain_task}))
