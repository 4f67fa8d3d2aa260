"""nncf_bootstrapnas vs NNCF 2.18 BootstrapNAS (the last NNCF with it), measured side by side in one invocation.

The same model, data, config and budget go through both libraries, each in a worker subprocess in its own venv:

1. generation coverage on torchvision models (converts? exact at the maximum subnet? elastic elements, MACs range,
   time; every failure's message recorded),
2. supernet forward / training-step time vs the plain model (same model, batch, threads, torch 2.8 on both sides),
3. maximum / minimum subnet accuracy after the same progressive-shrinking training (same pre-trained weights,
   Fashion-MNIST tensors, stages, epochs, lr, batch size, legacy ``train_epoch_fn``),
4. NSGA-II search with the same ``num_evals``: hypervolume of both fronts against one shared reference point
   (computed here with pymoo), best subnet within ``acc_delta`` of the original,
5. wall time of each stage.

    .venv/bin/python benchmarks/peer_nncf218.py --quick --threads 1          # smoke run, ~2.5 min on 2 cores
    .venv/bin/python benchmarks/peer_nncf218.py --peer-venv /tmp/venv-nncf218 # full budget, ~1 h (docs/benchmarks.md)

Run it alone: the two sides' absolute times come from different processes (set OMP_WAIT_POLICY=PASSIVE if anything
else uses the cores; oversubscribed spinning OpenMP threads slow a step down by an order of magnitude).

The NNCF 2.18 venv (default ``.venv-nncf218``) is built on first use from the package registry (torch 2.8.0 +
torchvision 0.23.0, then nncf 2.18.0 + tensorboard: several GB, minutes). Our side runs in ``--ours-venv`` (default
``.venv-zoo``: torch 2.8 too, so the overheads compare on the same torch). Outputs: ``peer_table.{md,csv}``,
``peer_results.json``, the configs, data subset, weights and worker logs under ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEER_DIR = Path(__file__).resolve().parent / "peer"
sys.path.insert(0, str(PEER_DIR.parent))
sys.path.insert(0, str(ROOT))

from peer import envs, report  # noqa: E402

DEFAULT_MODELS = ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "densenet121",
                  "vgg11_bn", "regnet_y_400mf", "shufflenet_v2_x1_0", "squeezenet1_0", "convnext_tiny", "vit_b_16")  # fmt: skip
FULL = {"train_images": 10000, "val_images": 2000, "batch_size": 64, "epochs": 2, "pretrain_epochs": 3,
        "search_evals": 200, "population": 20, "bn_samples": 512, "timing_repeats": 20, "models": DEFAULT_MODELS}  # fmt: skip
QUICK = {"train_images": 256, "val_images": 256, "batch_size": 32, "epochs": 1, "pretrain_epochs": 1,
         "search_evals": 16, "population": 8, "bn_samples": 64, "timing_repeats": 5, "models": ("resnet18", "mobilenet_v2")}  # fmt: skip
PARTS = ("coverage", "train")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke-run budget (every budget flag still overrides it)")
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "peer_nncf218")
    p.add_argument("--peer-venv", type=Path, default=ROOT / ".venv-nncf218", help="NNCF 2.18 venv (built if missing)")
    p.add_argument("--ours-venv", type=Path, default=ROOT / ".venv-zoo", help="venv with torch 2.8 and this package")
    p.add_argument("--no-install", action="store_true", help="fail instead of building a missing NNCF 2.18 venv")
    p.add_argument("--torch-index-url", help="extra pip index for the torch wheels (e.g. the CPU-only index)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--models", help="comma-separated torchvision model names for the coverage part")
    p.add_argument("--image-size", type=int, default=64, help="coverage input size (3xSxS)")
    p.add_argument("--train-images", type=int, help="Fashion-MNIST training images (stratified, fixed)")
    p.add_argument("--val-images", type=int, help="validation images from the test split (>= 2000 for figures)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--epochs", type=int, help="epochs of each of the 4 progressive-shrinking stages")
    p.add_argument("--pretrain-epochs", type=int)
    p.add_argument("--lr", type=float, default=0.01, help="initial lr of every stage (cosine within the stage)")
    p.add_argument("--search-evals", type=int, help="bootstrapNAS.search.num_evals on both sides")
    p.add_argument("--population", type=int)
    p.add_argument("--bn-samples", type=int, help="BN adaptation samples (training validation and search)")
    p.add_argument("--acc-delta", type=float, default=1.0)
    p.add_argument("--sampling", choices=("default", "single"), default="default",
                   help="default: each library's subnet sampling (ours: sandwich); single: ours too draws one random "
                   "subnet per step, NNCF 2.18's only behaviour (the config key, which NNCF ignores)")  # fmt: skip
    p.add_argument("--timing-repeats", type=int)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=int, default=600, help="seconds per coverage model (0: none)")
    p.add_argument("--weights", type=Path, help="pre-trained state_dict to start from instead of pre-training")
    p.add_argument("--data-root", help="folder of the Fashion-MNIST IDX files (default: Debian's)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    # the workers run in other directories: every path they are handed must be absolute
    for key in ("out", "peer_venv", "ours_venv", "weights"):
        if getattr(args, key) is not None:
            setattr(args, key, getattr(args, key).resolve())
    if args.data_root:
        args.data_root = str(Path(args.data_root).resolve())
    budget = dict(QUICK if args.quick else FULL)
    for key in budget:
        value = getattr(args, key, None)
        if value is not None:
            budget[key] = tuple(value.split(",")) if key == "models" else value
    args.budget = budget
    args.parts = tuple(x.strip() for x in args.parts.split(",") if x.strip())
    bad = [x for x in args.parts if x not in PARTS]
    if bad or not args.parts:
        p.error(f"--parts: {bad or 'empty'}; allowed: {', '.join(PARTS)}")
    if budget["population"] > budget["search_evals"]:
        p.error(f"--population {budget['population']} exceeds --search-evals {budget['search_evals']}")
    return args


# ---- configs ---------------------------------------------------------------------------------------------------------
def training_config(b: dict[str, Any], lr: float, acc_delta: float, seed: int, ref_acc: float | None,
                    sampling: str = "default") -> dict:  # fmt: skip
    """The one NNCF-style config both sides load: 4 progressive-shrinking stages (depth, then depth + width)."""
    epochs = int(b["epochs"])

    def stage(dims: list[str], **extra: Any) -> dict[str, Any]:
        return {"train_dims": dims, "epochs": epochs, "init_lr": lr, "epochs_lr": epochs, **extra}

    stages = [stage(["depth"], depth_indicator=1), stage(["depth"], depth_indicator=2),
              stage(["depth", "width"], depth_indicator=2, width_indicator=2, reorg_weights=True, bn_adapt=True),
              stage(["depth", "width"], depth_indicator=2, width_indicator=3, reorg_weights=True, bn_adapt=True)]  # fmt: skip
    bn = {"num_bn_adaptation_samples": int(b["bn_samples"])}
    search = {"algorithm": "NSGA2", "num_evals": int(b["search_evals"]), "population": int(b["population"]),
              "seed": seed, "acc_delta": acc_delta, "batchnorm_adaptation": bn}  # fmt: skip
    if ref_acc is not None:
        search["ref_acc"] = round(float(ref_acc), 4)
    training = {"algorithm": "progressive_shrinking", "progressivity_of_elasticity": ["depth", "width"],
                "batchnorm_adaptation": bn, "schedule": {"list_stage_descriptions": stages},
                "elasticity": {"available_elasticity_dims": ["width", "depth"],
                               "width": {"min_width": 16, "width_multipliers": [1.0, 0.75, 0.5]}}}  # fmt: skip
    if sampling == "single":
        training["sampling"] = {"strategy": "single"}
    return {
        "model": "resnet18_fmnist", "num_classes": 10, "dataset": "fashion_mnist", "seed": seed,
        "input_info": {"sample_size": [1, 1, 28, 28]}, "batch_size": int(b["batch_size"]),
        "optimizer": {"type": "sgd", "base_lr": lr, "momentum": 0.9, "nesterov": True, "weight_decay": 3e-5},
        "bootstrapNAS": {"training": training, "search": search},
    }  # fmt: skip


def coverage_config(image_size: int) -> dict:
    """Generation only: all three dimensions, NNCF's default width multipliers."""
    elasticity = {"available_elasticity_dims": ["kernel", "width", "depth"],
                  "width": {"min_width": 8, "width_multipliers": [1.0, 0.75, 0.5]}}  # fmt: skip
    stage = {"train_dims": ["kernel", "width", "depth"], "epochs": 1, "width_indicator": 3, "depth_indicator": 2}
    training = {"algorithm": "progressive_shrinking", "progressivity_of_elasticity": ["kernel", "width", "depth"],
                "batchnorm_adaptation": {"num_bn_adaptation_samples": 4},
                "schedule": {"list_stage_descriptions": [stage]}, "elasticity": elasticity}  # fmt: skip
    return {"input_info": {"sample_size": [1, 3, image_size, image_size]}, "bootstrapNAS": {"training": training}}


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


# ---- data ------------------------------------------------------------------------------------------------------------
def subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """About ``n`` stratified indices (all when ``n`` >= the set), fixed by ``seed``."""
    from nncf_bootstrapnas.data import stratified_split

    if n >= len(labels):
        return np.arange(len(labels))
    return stratified_split(labels, n / len(labels), seed)[1]


def prepare_data(out: Path, n_train: int, n_val: int, seed: int, root: str | None) -> tuple[Path, dict[str, Any]]:
    """Fixed Fashion-MNIST subsets as one .npz both sides read: train from the train split, val from the test split."""
    from nncf_bootstrapnas.data import load_fashion_mnist

    try:
        arrays = load_fashion_mnist(root)
    except (OSError, ValueError) as exc:  # DataNotFoundError / DataError: say so before any worker runs
        raise SystemExit(f"error: --data-root {root or '(default)'}: {exc}") from exc
    train = subset(arrays.train_labels, n_train, seed)
    val = subset(arrays.test_labels, n_val, seed)
    path = out / "data" / f"fashion_mnist_train{len(train)}_val{len(val)}_seed{seed}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, train_x=arrays.train_images[train], train_y=arrays.train_labels[train],
             val_x=arrays.test_images[val], val_y=arrays.test_labels[val])  # fmt: skip
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return path, {"train_images": len(train), "val_images": len(val), "source": str(arrays.folder), "sha256": digest}


# ---- running the workers ---------------------------------------------------------------------------------------------
SIDES = {"ours": "ours_side.py", "nncf": "nncf_side.py"}
# NNCF 2.18 builds BootstrapNAS's graph only with its legacy tracing; without it every search space is empty.
LEGACY_TRACING = {"NNCF_TORCH_LEGACY_TRACING": "1"}


class Runner:
    """Runs one task of one side in its venv, with the shared budget keys, and advances the progress bar."""

    def __init__(self, args: argparse.Namespace, bar: Any) -> None:
        self.args, self.bar = args, bar
        self.venvs = {"ours": args.ours_venv, "nncf": args.peer_venv}

    def __call__(self, side: str, task: str, spec: dict[str, Any], name: str | None = None,
                 env: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
        name = name or f"{side}_{task}"
        self.bar.update(description=f"{name}")
        base = {"threads": self.args.threads, "seed": self.args.seed}
        if env is None:
            env = LEGACY_TRACING if side == "nncf" else {}
        start = time.monotonic()
        result = envs.run_worker(self.venvs[side], PEER_DIR / SIDES[side], task, {**base, **spec},
                                 self.args.out / "work" / name, self.args.out / "logs" / f"{name}.log", self.bar,
                                 env=env)  # fmt: skip
        result["process_wall_s"] = time.monotonic() - start
        self.bar.advance()
        if "error" in result:
            self.bar.log(f"{name} failed: {result['error']}")
        return result


def run_coverage(run: Runner, args: argparse.Namespace) -> dict[str, Any]:
    config = coverage_config(args.image_size)
    write_json(args.out / "coverage_config.json", config)
    spec = {"models": list(args.budget["models"]), "image_size": args.image_size, "config": config,
            "timeout_s": args.timeout}  # fmt: skip
    results = {side: run(side, "coverage", spec) for side in SIDES}
    probe = {**spec, "models": list(args.budget["models"][:1])}
    results["nncf_default_tracing"] = run(
        "nncf", "coverage", probe, name="nncf_coverage_default_tracing", env={"NNCF_TORCH_LEGACY_TRACING": ""}
    )  # NNCF 2.18 default
    return results


def run_training(run: Runner, args: argparse.Namespace, npz: Path, data: dict[str, Any]) -> dict[str, Any]:
    b = args.budget
    weights = args.out / "pretrained.pth"
    spec = {"data": str(npz), "batch_size": b["batch_size"], "weights": str(weights)}
    pre = run("ours", "pretrain", {**spec, "epochs": 0 if args.weights else b["pretrain_epochs"], "lr": 0.05,
                                   "init_weights": str(args.weights) if args.weights else None})  # fmt: skip
    out: dict[str, Any] = {"data": data, "pretrain": pre}
    if "error" in pre:
        return out
    config = training_config(b, args.lr, args.acc_delta, args.seed, pre["accuracy"], args.sampling)
    config_path = write_json(args.out / "config.json", config)
    spec.update(
        config=str(config_path), ref_acc=pre["accuracy"], timing_repeats=b["timing_repeats"], bn_samples=b["bn_samples"]
    )
    for side in SIDES:
        out[side] = run(side, "train", spec)
    return out


# ---- the table -------------------------------------------------------------------------------------------------------
def _failed(section: str, what: str, results: dict[str, Any]) -> list[dict[str, str]]:
    cells = [f"failed: {results[s]['error']}" if "error" in results.get(s, {}) else "ok" for s in SIDES]
    return [report.row(section, what, *cells)]


def coverage_table(cov: dict[str, Any]) -> list[dict[str, str]]:
    if any("error" in cov[s] for s in SIDES):
        return _failed("generation coverage", "coverage worker", cov)
    rows = report.coverage_rows(cov["ours"]["models"], cov["nncf"]["models"])
    default = cov["nncf_default_tracing"]
    for name, peer in default.get("models", {}).items():
        ours = cov["ours"]["models"].get(name, {})
        cells = [f"{r['width']} / {r['kernel']} / {r['depth']}" if r.get("converts") else f"no: {r.get('error')}"
                 for r in (ours, peer)]  # fmt: skip
        empty = not peer.get("converts") or sum(peer.get(dim, 0) for dim in ("width", "kernel", "depth")) == 0
        rows.append(report.row("generation coverage", f"{name}: elastic elements with NNCF's default tracing "
                               "(no NNCF_TORCH_LEGACY_TRACING)", *cells, "", "ours" if empty else "tie"))  # fmt: skip
    rows.append(report.numeric_row("wall time (s)", "coverage worker process (all models, incl. imports)",
                                   cov["ours"]["process_wall_s"], cov["nncf"]["process_wall_s"], ".1f", False))  # fmt: skip
    return rows


def training_table(tr: dict[str, Any], args: argparse.Namespace) -> list[dict[str, str]]:
    if "error" in tr["pretrain"]:
        return [
            report.row("accuracy after the same training", "pre-training", f"failed: {tr['pretrain']['error']}", "")
        ]
    if any("error" in tr[s] for s in SIDES):
        return _failed("accuracy after the same training", "training worker", tr)
    ours, nncf, ref = tr["ours"], tr["nncf"], tr["pretrain"]["accuracy"]
    rows = report.timing_rows(ours["timing"], nncf["timing"], args.budget["batch_size"])
    rows += report.training_rows(ours, nncf, ref)
    rels = [report.relative_points(s["search"]["points"], s["max_macs"] / 1e6) for s in (ours, nncf)]
    reference = report.shared_reference(rels)
    summaries = [report.search_summary(s, reference, ref, args.acc_delta) for s in (ours, nncf)]
    tr["search_summary"] = {"reference_point": reference.tolist(), "ours": summaries[0], "nncf": summaries[1]}
    rows += report.search_rows(*summaries, args.acc_delta, args.budget["search_evals"])
    return rows + report.wall_rows(ours, nncf)


def notes(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    out = ["NNCF 2.18 side run with NNCF_TORCH_LEGACY_TRACING=1: its BootstrapNAS builds an empty search space with "
           "NNCF's default tracing (see the 'default tracing' row).",
           "Both sides: the same legacy train_epoch_fn / val_fn, SGD optimizer, stages and config file; the rest "
           "of the config takes each library's defaults. Subnet sampling: "
           + ("one random subnet per step on both sides (--sampling single)." if args.sampling == "single" else
              "ours cycles max / min / random subnets across steps (sandwich, our default; each step still trains "
              "one subnet), NNCF one random subnet per step; --sampling single makes ours do the same."),
           "NNCF 2.18's BN adaptation (BatchnormAdaptationAlgorithm) keeps the running statistics and their "
           "momentum 0.1, so num_bn_adaptation_samples / batch_size forward passes move them only part of the way "
           "(8 passes: 57 %); ours resets them and averages exactly. 'same exact BN recalibration' rows apply one "
           "procedure (benchmarks/peer/common.py) to both sides' trained weights.",
           "MACs are each library's own count; fronts and hypervolumes use MACs relative to each side's maximum "
           "subnet, accuracy in %; reference point (relative MACs, -accuracy) shared by both sides.",
           "Search records: NNCF counts every pymoo individual (cache hits included); 'distinct subnets' counts "
           "unique configurations."]  # fmt: skip
    tr = results.get("train", {})
    n_val = tr.get("data", {}).get("val_images", 0)
    if tr and n_val < 2000:
        out.append(f"Validation subset of {n_val} images (< 2000): accuracy differences are within noise; "
                   "a smoke run, not a measurement.")  # fmt: skip
    if "search_summary" in tr:
        out.append(f"Hypervolume reference point: {tr['search_summary']['reference_point']}.")
    for part in ("coverage", "train"):
        for side, res in results.get(part, {}).items():
            if isinstance(res, dict) and "error" in res:
                out.append(f"{part} / {side} failed: {res['error']} (log under {args.out / 'logs'})")
    return out


def environment(args: argparse.Namespace, versions: dict[str, Any], started: float) -> dict[str, Any]:
    import os
    import platform

    ours, peer = versions["ours"], versions["nncf"]
    return {"date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average at start {versions['load']}",
            "threads": args.threads, "subnet sampling": args.sampling,
            "ours": f"nncf_bootstrapnas {ours.get('nncf_bootstrapnas')}, NNCF {ours.get('nncf')}, torch {ours.get('torch')}",
            "NNCF 2.18 side": f"nncf {peer.get('nncf')}, torch {peer.get('torch')}, torchvision {peer.get('torchvision')}",
            "budget": json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in args.budget.items()}),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "wall time (min)": f"{(time.time() - started) / 60:.1f}"}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import os

    args = parse_args(argv)
    started = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    from nncf_bootstrapnas.utils.progress import progress_bar

    versions: dict[str, Any] = {"load": f"{os.getloadavg()[0]:.1f}"}
    ours = envs.probe(args.ours_venv)  # the cheap checks first: no venv is built, nothing runs, if one fails
    problem = envs.ours_problem(ours)
    if problem:
        raise SystemExit(f"error: --ours-venv {args.ours_venv}: {problem}")
    versions["ours"] = ours
    if args.weights is not None and not args.weights.is_file():
        raise SystemExit(f"error: --weights {args.weights}: no such file")
    if "train" in args.parts:
        b = args.budget
        data = prepare_data(args.out, b["train_images"], b["val_images"], args.seed, args.data_root)
    versions["nncf"] = envs.ensure_peer_venv(args.peer_venv, args.out / "logs" / "peer_venv_install.log",
                                             args.torch_index_url, create=not args.no_install)  # fmt: skip
    results: dict[str, Any] = {"budget": args.budget}
    total = 3 * ("coverage" in args.parts) + 3 * ("train" in args.parts)
    with progress_bar("peer benchmark", total=total, enabled=not args.no_progress) as bar:
        run = Runner(args, bar)
        if "coverage" in args.parts:
            results["coverage"] = run_coverage(run, args)
        if "train" in args.parts:
            results["train"] = run_training(run, args, *data)
    rows = coverage_table(results["coverage"]) if "coverage" in results else []
    rows += training_table(results["train"], args) if "train" in results else []
    env = environment(args, versions, started)
    paths = report.write_outputs(args.out, rows, env, results, notes(results, args))
    print(paths["md"].read_text())
    print(f"written: {', '.join(str(p) for p in paths.values())}")
    return {"rows": rows, "paths": paths, "results": results}


if __name__ == "__main__":
    main()
