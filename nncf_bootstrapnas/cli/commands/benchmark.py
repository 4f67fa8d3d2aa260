"""``benchmark``: latency and throughput of OpenVINO IRs, measured side by side in one process."""

from __future__ import annotations

import argparse
from pathlib import Path

from nncf_bootstrapnas.cli.commands._shared import positive
from nncf_bootstrapnas.cli.session import add_common

HELP = "benchmark OpenVINO IRs (latency + throughput); speed-up against the first model given"


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help=HELP, description=HELP + ". Settings: the config's 'benchmark' section.")
    p.add_argument(
        "models", nargs="*", type=Path, help="model.xml files (default: every IR under --output-dir/exported)"
    )
    add_common(p, config_required=False, model=False)
    p.add_argument(
        "--time-budget", type=positive(float), default=None, help="seconds per model and mode (overrides config)"
    )
    p.add_argument(
        "--inference-precision",
        choices=("f32", "bf16", "f16"),
        default=None,
        help="OpenVINO INFERENCE_PRECISION_HINT (overrides config; default: the device's, e.g. bf16 on AMX CPUs)",
    )
    p.add_argument("--input-shape", default=None, help="e.g. 1,3,32,32 (default: the IR's own, batch from config)")
    p.set_defaults(handler=execute)


def _discover(out: Path) -> list[Path]:
    order = {"original": 0, "best_subnet": 1}
    found = sorted(out.glob("exported/*/openvino*/model.xml"))
    return sorted(found, key=lambda p: (order.get(p.parent.parent.name, 2), p.parent.name != "openvino", str(p)))


def execute(args: argparse.Namespace) -> int:
    from nncf_bootstrapnas.cli import stages
    from nncf_bootstrapnas.cli.errors import UsageError
    from nncf_bootstrapnas.cli.session import load
    from nncf_bootstrapnas.cli.ui import print_summary
    from nncf_bootstrapnas.report import ModelRow

    session = load(args, "benchmark", needs_model=False)
    models = list(args.models) or _discover(session.out)
    if not models:
        raise UsageError(f"no model.xml given and none found under {session.out}/exported/")
    missing = [str(m) for m in models if not m.is_file()]
    if missing:
        raise UsageError(f"model file not found: {missing[0]}")
    shape = None
    if args.input_shape:
        try:
            shape = tuple(int(v) for v in args.input_shape.split(","))
        except ValueError:
            raise UsageError(f"--input-shape must be comma-separated integers, got {args.input_shape!r}") from None
    cfg = session.config.sections.benchmark
    if args.time_budget:
        cfg = cfg.replace(time_budget_s=args.time_budget)
    if args.inference_precision:
        cfg = cfg.replace(inference_precision=args.inference_precision)
    session.report.dataset = "none (benchmark on random inputs; no accuracy measured)"
    for i, path in enumerate(models):
        label = f"{path.parent.parent.name}/{path.parent.name}"
        precision = "INT8" if "int8" in path.parent.name else "FP32"
        key = "original_fp32" if i == 0 else f"model_{i}"
        session.report.set_row(ModelRow(key, label, precision, path=str(path), reason="accuracy not measured"))
    try:
        with session.stage("benchmark", "Benchmark in OpenVINO") as rec:
            for row in session.report.models:
                res = stages.run_benchmark(row.path, shape, cfg, session.progress)
                row.latency_ms, row.throughput_fps = res.latency_ms_median, res.throughput_fps
                from nncf_bootstrapnas.cli.steps_deploy import benchmark_settings

                session.report.benchmark_settings = benchmark_settings(res, cfg)
            rec.details = {"baseline": session.report.models[0].label}
        session.report.notes.append(f"speed-up is relative to the first model: {session.report.models[0].label}")
    finally:
        print_summary(session, session.finish())
    return 0
