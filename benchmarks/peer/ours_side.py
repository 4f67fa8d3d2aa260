"""nncf_bootstrapnas side of the peer benchmark: the same calls as ``nncf_side.py``, through our public API.

``create_supernet`` for coverage; the legacy ``EpochBasedTrainingAlgorithm`` facade with the same ``train_epoch_fn`` /
``val_fn`` callbacks and optimizer for training; ``search`` for the search. Runs in a venv with torch 2.8 and our
package (default ``.venv-zoo``). ``python ours_side.py coverage|train|pretrain SPEC.json RESULT.json``.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

import nncf_bootstrapnas  # noqa: E402
from nncf_bootstrapnas import EpochBasedTrainingAlgorithm, create_supernet, load_config, search  # noqa: E402


def space_counts(space: Any) -> dict[str, Any]:
    """Elastic elements with more than one choice per dimension (depth: skippable blocks), and the space size."""
    elastic = [v for v in space.variables if len(v.choices) > 1]
    depth = [v for v in elastic if v.dim == "depth"]
    return {"width": sum(v.dim == "width" for v in elastic), "kernel": sum(v.dim == "kernel" for v in elastic),
            "depth": int(sum(max(v.choices) for v in depth)), "depth_configs": None,
            "num_vars": len(space.variables), "size": int(space.size)}  # fmt: skip


def coverage_one(name: str, config: dict[str, Any], size: int) -> dict[str, Any]:
    model = common.zoo_model(name, size).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        reference = model(x)
    start = time.perf_counter()
    supernet = create_supernet(model, load_config(copy.deepcopy(config)))
    row: dict[str, Any] = {"generation_s": time.perf_counter() - start}
    space = supernet.search_space
    row.update(space_counts(space))
    supernet.activate(space.maximum())
    supernet.eval()
    with torch.no_grad():
        row["max_abs_diff"] = common.max_abs_diff(supernet(x), reference)
    row["reference_abs_max"] = float(reference.abs().max())
    row["macs_max"] = float(supernet.macs(space.maximum()))
    try:
        supernet.activate(space.minimum())
        row["macs_min"] = float(supernet.macs())
    except Exception as exc:  # the supernet was built; its minimum subnet cannot be activated
        row["macs_min"], row["min_error"] = None, common.failure(exc)
    return row


def coverage(spec: dict[str, Any]) -> dict[str, Any]:
    rows = {}
    for i, name in enumerate(spec["models"]):
        common.progress(f"ours coverage {name} ({i + 1}/{len(spec['models'])})")
        torch.manual_seed(spec.get("seed", 0))
        start = time.perf_counter()
        try:
            with common.time_limit(spec.get("timeout_s", 0)):
                rows[name] = {"converts": True, **coverage_one(name, spec["config"], spec["image_size"])}
        except Exception as exc:
            rows[name] = {"converts": False, "error": common.failure(exc), "where": common.origin(exc),
                          "generation_s": time.perf_counter() - start}  # fmt: skip
    return {"models": rows}


def overhead(plain: torch.nn.Module, supernet: Any, dataset: Any, spec: dict[str, Any]) -> dict[str, float]:
    """Forward and training-step time at the maximum subnet vs the plain model (the NNCF side's measurement)."""
    batch = dataset.tensors[0][: spec["batch_size"]], dataset.tensors[1][: spec["batch_size"]]
    supernet.activate(supernet.search_space.maximum())
    saved = copy.deepcopy(supernet.state_dict())
    plain_opt = torch.optim.SGD(plain.parameters(), lr=0.0)
    net_opt = torch.optim.SGD(supernet.parameters(), lr=0.0)
    fns = {"plain_forward": common.forward_fn(plain, batch[0]),
           "supernet_forward": common.forward_fn(supernet, batch[0]),
           "plain_step": common.step_fn(plain, plain_opt, batch),
           "supernet_step": common.step_fn(supernet, net_opt, batch)}  # fmt: skip
    times = common.interleaved_medians(fns, spec["timing_repeats"])
    supernet.load_state_dict(saved)
    return times


def train(spec: dict[str, Any]) -> dict[str, Any]:
    """Generation, overhead, progressive-shrinking training, NSGA-II search, max/min subnet accuracy."""
    work = Path(spec["work"])
    train_loader, val_loader = common.loaders(spec["data"], spec["batch_size"], spec["seed"])
    config = load_config(spec["config"])
    weights = torch.load(spec["weights"], weights_only=True)
    model, plain = common.bench_model(), common.bench_model()
    model.load_state_dict(weights)
    plain.load_state_dict(weights)
    out: dict[str, Any] = {}
    start = time.perf_counter()
    algo = EpochBasedTrainingAlgorithm.from_config(model, config)
    supernet = algo.model  # builds the super-network now, so that generation is timed on its own
    out["generation_s"] = time.perf_counter() - start
    common.progress("ours overhead timing")
    out["timing"] = overhead(plain, supernet, train_loader.dataset, spec)
    optimizer = common.make_optimizer(model.parameters(), config.get("optimizer", {}))
    common.progress("ours training")
    start = time.perf_counter()
    supernet, ctrl = algo.run(common.make_train_epoch_fn(spec.get("train_steps")), train_loader, common.validate,
                              val_loader, optimizer, str(work), None, spec.get("train_steps"))  # fmt: skip
    out["train_s"] = time.perf_counter() - start
    common.progress("ours search")
    start = time.perf_counter()
    result = search(supernet, config, common.validate_top1, val_loader, bn_loader=train_loader,
                    ref_acc=spec["ref_acc"], progress=False, checkpoint_dir=work / "search")  # fmt: skip
    out["search_s"] = time.perf_counter() - start
    points = [{"mmacs": r["values"]["macs"] / 1e6, "accuracy": r["values"]["accuracy"]} for r in result.rows]
    best = result.best
    own_best = None if best is None else {"accuracy": best["values"]["accuracy"], "mmacs": best["values"]["macs"] / 1e6}
    out["search"] = {"records": len(result.rows), "points": points, "own_best": own_best}
    handler = ctrl.multi_elasticity_handler
    for name, activate in (("max", handler.activate_maximum_subnet), ("min", handler.activate_minimum_subnet)):
        activate()
        ctrl.prepare_for_validation()  # BN adaptation, as the legacy scripts measure
        out[f"{name}_accuracy"] = common.validate_top1(supernet, val_loader)
        common.recalibrate_bn(supernet, train_loader, spec["bn_samples"])
        out[f"{name}_accuracy_common_bn"] = common.validate_top1(supernet, val_loader)
        out[f"{name}_macs"] = float(supernet.macs())
    out["space"] = space_counts(supernet.search_space)
    out["nncf_bootstrapnas_version"] = nncf_bootstrapnas.__version__
    return out


if __name__ == "__main__":
    raise SystemExit(common.run_worker({"coverage": coverage, "train": train, "pretrain": common.pretrain_task}))
