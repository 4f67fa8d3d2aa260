"""The BootstrapNAS headline, measured side by side: OpenVINO throughput of the best INT8 subnet within 1 accuracy
point of the original model, against the original FP32 model, both benchmarked in this one process.

A CIFAR-style ResNet-50 (``nncf_bootstrapnas.models``, full width unless ``--width``) is pre-trained on scikit-learn's bundled
digits at 32x32 (the only real data set on this machine), converted to a super-network, trained with a short
progressive-shrinking schedule with quantization-aware training, and searched (NSGA-II, accuracy vs MACs). Candidates
within 1 point of the original's accuracy in the search are exported in increasing MACs order; the first whose
*deployed* INT8 accuracy (OpenVINO, validation split) is within 1 point of the deployed original FP32 accuracy is
benchmarked against the original FP32 model. Every stage runs through the ``nncf-bootstrapnas`` command line (``train``,
``search``, ``export`` per candidate, ``benchmark``), as a user would run it; the supernet artifact and the search result
are read back with the library.

    python benchmarks/deploy_speedup.py                    # ResNet-50 full width, aimed at ~15-20 min on 2 cores
    python benchmarks/deploy_speedup.py --quick            # smoke run: small ResNet-50, tiny budgets (minutes)
    python benchmarks/deploy_speedup.py --dataset fashion-mnist --model resnet18 --width 0.25 \
        --model-params '{"in_channels": 1}' --model-weights pretrained.pth   # real data, from given weights

With ``--dataset fashion-mnist`` the accuracies are the CLI's (validation split, 5 000 images held out of training).
``--finetune-epochs N`` fine-tunes every exported candidate first (``export.finetune_epochs``, distilled from the
original) and bisects the whole searched front instead of the subnets the search measured within the criterion.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

BASE_CONFIG = ROOT / "examples" / "configs" / "digits_resnet18.json"


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    """The demo config re-targeted at ResNet-50 with this script's budgets."""
    config = json.loads(BASE_CONFIG.read_text())
    config["model"] = args.model
    params: dict[str, Any] = {} if args.width is None else {"width": args.width}
    if args.layers:
        params["layers"] = [int(v) for v in args.layers.split(",")]
    config["model_params"] = {**params, **json.loads(args.model_params)}
    if args.dataset != "digits":
        config["dataset"] = args.dataset
        channels = int(config["model_params"].get("in_channels", 3))
        config["input_info"] = {"sample_size": [1, channels, args.image_size, args.image_size]}
    config["epochs"] = args.pretrain_epochs
    training = config["bootstrapNAS"]["training"]
    stages = training["schedule"]["list_stage_descriptions"]
    for stage in stages:
        stage["epochs"] = stage["epochs_lr"] = args.epochs_per_stage
        stage["init_lr"] = args.lr
    if args.train_steps:
        training["train_steps"] = args.train_steps
    search = config["bootstrapNAS"]["search"]
    search.update(
        num_evals=args.num_evals,
        population=args.population,
        acc_delta=args.acc_delta,
        eval_subset_size=args.eval_subset,
    )
    search["batchnorm_adaptation"] = {"num_bn_adaptation_samples": args.bn_samples}
    config["compression"] = [] if args.no_qat else [{"algorithm": "quantization"}]
    config["export"] = {"formats": ["openvino"], "int8": True, "num_calibration_samples": 128,
                        "finetune_epochs": args.finetune_epochs}  # fmt: skip
    if args.finetune_lr:
        config["export"]["finetune_lr"] = args.finetune_lr
    config["benchmark"] = {"device": "CPU", "time_budget_s": args.time_budget, "warmup_iters": 10,
                           "batch_size": args.bench_batch}  # fmt: skip
    if args.ov_threads:
        config["benchmark"]["num_threads"] = args.ov_threads
    if args.inference_precision:
        config["benchmark"]["inference_precision"] = args.inference_precision
    return config


def cli(*args: Any) -> None:
    """One ``nncf-bootstrapnas`` command in a child process (its output streams through)."""
    command = [sys.executable, "-m", "nncf_bootstrapnas.cli.main", *map(str, args)]
    print("$", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def candidates(result: Any, ref_acc: float, delta: float = 1.0, finetuned: bool = False) -> list[dict[str, Any]]:
    """Measured subnets within ``delta`` points of ref_acc in the search, fewest MACs first (legacy best first).
    ``finetuned``: the searched front instead, whatever its accuracy: the search measured inherited weights, and a
    fine-tuned subnet may end within ``delta`` from below it."""
    if finetuned:
        rows = list(result.front)
    else:
        rows = [r for r in result.rows if r["feasible"] and r["values"]["accuracy"] >= ref_acc - delta]
    rows.sort(key=lambda r: (r["values"]["macs"], -r["values"]["accuracy"], r["index"]))
    seen, out = set(), []
    for r in rows:
        key = json.dumps(r["config"], sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def export_candidate(common: list[Any], supernet: Path, out: Path, i: int, row: dict[str, Any], original: bool) -> Any:
    """``nncf-bootstrapnas export`` of one searched subnet (with the original's rows when ``original``)."""
    from nncf_bootstrapnas.report import read_report

    folder = out / f"candidate_{i}"
    folder.mkdir(exist_ok=True)
    (folder / "subnet.json").write_text(json.dumps({"config": row["config"]}) + "\n")
    cli("export", *common, "--checkpoint", supernet, "--subnet", folder / "subnet.json", "--output-dir", folder,
        *([] if original else ["--no-original"]))  # fmt: skip
    return read_report(folder / "export_report.json")


def bisect_candidates(
    pool: list[dict[str, Any]], export: Callable[..., Any], budget: int, delta: float
) -> tuple[Any, Any, Any]:
    """(original FP32 row, original INT8 row, chosen INT8 subnet row or None): the fewest-MACs candidate whose
    deployed INT8 accuracy is within ``delta`` of the deployed original FP32, found by bisection over ``pool``
    (fewest MACs first; deployed accuracy grows with MACs, roughly) in at most ``budget`` exports. Walking up from
    the smallest spends the budget on the riskiest candidates: the 4 smallest of a search can all miss by 0.1 point."""
    from nncf_bootstrapnas.report import ModelRow

    base = base_int8 = chosen = None
    lo, hi = 0, len(pool) - 1
    for i in range(min(budget, len(pool))):
        if lo > hi:
            break
        mid = (lo + hi) // 2
        exported = export(i, pool[mid], base is None)
        if base is None:
            base, base_int8 = exported.row("original_fp32"), exported.row("original_int8")
        int8 = exported.row("subnet_int8")
        ok = None not in (int8, base) and None not in (int8.accuracy, base.accuracy)
        if ok and int8.accuracy >= base.accuracy - delta:
            chosen = ModelRow("subnet_int8", f"subnet #{pool[mid]['index']} INT8", "INT8", accuracy=int8.accuracy,
                              accuracy_source=int8.accuracy_source, macs=int8.macs, params=int8.params,
                              path=int8.path, notes=list(int8.notes))  # fmt: skip
            hi = mid - 1
        else:
            lo = mid + 1
    return base, base_int8, chosen


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet50", help="reference model name (default: ResNet-50, bottleneck blocks)")
    p.add_argument("--model-params", default="{}", help="more model arguments as JSON, e.g. '{\"in_channels\": 1}'")
    p.add_argument("--dataset", choices=("digits", "fashion-mnist"), default="digits")
    p.add_argument("--data", type=Path, default=None, help="Fashion-MNIST folder (default: Debian's)")
    p.add_argument("--image-size", type=int, default=28, help="input size for --dataset fashion-mnist")
    p.add_argument("--width", type=float, default=None, help="width multiplier (default: full width, 1.0)")
    p.add_argument("--layers", default=None, help="blocks per stage, e.g. 3,4,6,3 (default: ResNet-50's)")
    p.add_argument("--small", action="store_true", help="the small ResNet-50 variant of nncf_bootstrapnas.models")
    p.add_argument("--pretrain-epochs", type=int, default=2)
    p.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="pre-trained weights (checkpoints/pretrained.pth of a run) to skip pre-training",
    )
    p.add_argument("--model-weights", type=Path, default=None, help="a plain state_dict to start from (CLI --weights)")
    p.add_argument(
        "--artifact",
        type=Path,
        default=None,
        help="a trained supernet artifact (e.g. training_accuracy.py's supernet.pth): skip `train`, search it",
    )
    p.add_argument("--epochs-per-stage", type=int, default=1, help="epochs of each training stage of the demo schedule")
    p.add_argument("--train-steps", type=int, default=8, help="optimisation steps per supernet epoch (0: full epochs)")
    p.add_argument("--train-subset", type=int, default=None, help="train on N digits samples only")
    p.add_argument("--lr", type=float, default=0.002, help="initial learning rate of every stage (fine-tuning)")
    p.add_argument("--num-evals", type=int, default=24)
    p.add_argument("--eval-subset", type=int, default=200, help="validation images per search evaluation")
    p.add_argument("--bn-samples", type=int, default=64, help="BN-adaptation samples per search evaluation")
    p.add_argument("--population", type=int, default=10)
    p.add_argument(
        "--max-candidates",
        type=int,
        default=3,
        help="exports of the bisection for the smallest subnet within the criterion",
    )
    p.add_argument(
        "--acc-delta",
        type=float,
        default=1.0,
        help="accuracy points the INT8 subnet may lose (the paper's criterion: 1)",
    )
    p.add_argument(
        "--finetune-epochs",
        type=int,
        default=0,
        help="export.finetune_epochs: stand-alone fine-tune of each exported candidate (distilled from the original); "
        "the candidates are then the whole searched front",
    )
    p.add_argument("--finetune-lr", type=float, default=None, help="export.finetune_lr (default: the schema's)")
    p.add_argument("--time-budget", type=float, default=10.0, help="benchmark seconds per model and mode")
    p.add_argument("--bench-batch", type=int, default=1, help="benchmark batch (tiny models are overhead-bound at 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--ov-threads", type=int, default=None, help="OpenVINO inference threads (default: OpenVINO's)")
    p.add_argument(
        "--inference-precision",
        choices=("f32", "bf16", "f16"),
        default=None,
        help="OpenVINO precision hint of every benchmarked model (default: the device's; bf16 on AMX CPUs)",
    )
    p.add_argument("--no-qat", action="store_true", help="train without quantization; INT8 by nncf.quantize")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--resume", action="store_true", help="continue train/search from --output-dir (a finished search is reused)"
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke preset: --small, 5 pre-training epochs, 6 steps per stage, 12 evaluations, 1 s benchmark",
    )
    p.add_argument("--output-dir", type=Path, default=Path("outputs/deploy_speedup"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        args.small, args.pretrain_epochs, args.train_steps, args.num_evals = True, 5, 6, 12
        args.population, args.time_budget, args.max_candidates = 4, 1.0, 2
    started = time.perf_counter()
    out = args.output_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "deploy_speedup_config.json"
    config_path.write_text(json.dumps(build_config(args), indent=2) + "\n")
    common: list[Any] = ["--config", config_path, "--seed", args.seed]
    common += (["--threads", args.threads] if args.threads else []) + (["--no-progress"] if args.no_progress else [])
    data = ["--train-subset", args.train_subset] if args.train_subset else []
    data += ["--data", args.data] if args.data else []

    resume = ["--resume"] if args.resume else []
    if args.artifact is None:
        cli("train", *common, *data, *resume, "--output-dir", out, *(["--small"] if args.small else []),
            *(["--checkpoint", args.weights] if args.weights else []),
            *(["--weights", args.model_weights] if args.model_weights else []))  # fmt: skip
    supernet = args.artifact.resolve() if args.artifact else out / "checkpoints" / "supernet.pth"
    cli("search", *common, *data, "--checkpoint", supernet, "--output-dir", out, *resume)

    from nncf_bootstrapnas.report import RunReport, read_report, write_report
    from nncf_bootstrapnas.subnet_search import SearchResult

    result = SearchResult.from_json(out / "search" / "search_result.json")
    ref_acc = float(result.ref_acc)  # the original's FP32 accuracy, as the search measured it
    pool = candidates(result, ref_acc, args.acc_delta, finetuned=args.finetune_epochs > 0)
    export = functools.partial(export_candidate, common + data, supernet, out)
    base, base_int8, chosen = bisect_candidates(pool, export, args.max_candidates, args.acc_delta)
    if base is None:
        print("no candidate within the accuracy criterion in the search; nothing to compare", file=sys.stderr)
        return 1
    rows = [r for r in (base, base_int8, chosen) if r is not None and r.path is not None]
    paths = [r.path for r in rows]  # the first is the speed-up baseline
    cli("benchmark", *common, *paths, "--output-dir", out / "benchmark", "--time-budget", args.time_budget)
    bench = read_report(out / "benchmark" / "benchmark_report.json")
    report = RunReport(command="benchmarks/deploy_speedup.py " + " ".join(argv or sys.argv[1:]),
                       dataset=read_report(out / "search_report.json").dataset)  # fmt: skip
    report.model = read_report(out / "search_report.json").model
    report.benchmark_settings = bench.benchmark_settings
    report.notes.append("one process per stage (nncf-bootstrapnas train / search / export / benchmark)")
    for row, measured in zip(rows, bench.models):
        row.latency_ms, row.throughput_fps = measured.latency_ms, measured.throughput_fps
        report.set_row(row)
    test_split_accuracy(json.loads(config_path.read_text()), report, args)
    files = write_report(report, out, "deploy_speedup_report")
    print_table(report, chosen, base.accuracy, time.perf_counter() - started, args.acc_delta)
    print(f"report: {files['markdown']}")
    return 0 if chosen is not None else 1


def test_split_accuracy(config: dict[str, Any], report: Any, args: argparse.Namespace) -> None:
    """Each benchmarked IR's OpenVINO top-1 on the data set's test split (Fashion-MNIST: the official 10 000), as a
    note on its row: the search and the candidate check saw only the validation split, so this is the reported
    accuracy. Digits has no test split: nothing is added."""
    from nncf_bootstrapnas import load_config
    from nncf_bootstrapnas.deployment import ir_accuracy
    from nncf_bootstrapnas.models.ref import ModelRef
    from nncf_bootstrapnas.pipeline.data import resolve_data

    if args.data is not None:
        config["dataset_dir"] = str(args.data)
    module = resolve_data(load_config(config), ModelRef.from_json(report.model["spec"]), args.seed).module
    if "test" not in module.splits:
        return
    loader = module.test_loader(batch_size=256)  # one loader for every row
    for row in report.models:
        acc, n = ir_accuracy(row.path, loader, "CPU")
        row.notes.append(f"test split: {acc:.2f}% ({n} images, OpenVINO CPU)")
        print(f"{row.label}: {acc:.2f}% on the test split ({n} images)", flush=True)


def print_table(report: Any, chosen: Any, base_acc: float | None, seconds: float, delta: float = 1.0) -> None:
    from rich.console import Console
    from rich.table import Table

    from nncf_bootstrapnas.report import deployment_table

    console = Console(width=140)
    console.print(deployment_table(report, f"{report.model.get('name', '?')}: OpenVINO, measured in one process"))
    settings = Table(title="Settings")
    settings.add_column("setting")
    settings.add_column("value")
    for key, value in report.benchmark_settings.items():
        settings.add_row(key, str(value))
    settings.add_row("model", report.model.get("name", "?"))
    settings.add_row("data", report.dataset)
    settings.add_row("accuracy criterion", f"INT8 subnet within {delta:g} point(s) of the original FP32 (deployed)")
    settings.add_row("wall time", f"{seconds / 60:.1f} min")
    console.print(settings)
    if chosen is None:
        shown = "n/a" if base_acc is None else f"{base_acc:.2f}%"
        console.print(
            f"[red]no INT8 subnet held the original's accuracy ({shown}) within {delta:g} point(s) in deployment"
        )
    else:
        speed = report.speedups().get(chosen.key, {}).get("throughput")
        if speed is not None:
            console.print(f"[bold]{chosen.label}: {speed:.2f}x the original FP32 throughput, accuracy "
                          f"{chosen.accuracy:.2f}% vs {base_acc:.2f}%")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
