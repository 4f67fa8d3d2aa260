"""``export``: a subnet (and the original model) of a super-network checkpoint to OpenVINO FP32 / INT8 IR."""

from __future__ import annotations

import argparse
from pathlib import Path

from nncf_bootstrapnas.cli.commands._shared import add_checkpoint
from nncf_bootstrapnas.cli.session import add_common

HELP = "export a subnet and the original model to OpenVINO FP32/INT8 (+ torch, ONNX) and validate them"


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help=HELP, description=HELP + ". Formats and INT8: the config's 'export' section.")
    add_common(p)
    add_checkpoint(p, True, "super-network checkpoint (checkpoints/supernet.pth)")
    p.add_argument(
        "--subnet", default="best", help="best (from --search-result), max, min, or a subnet-config JSON file"
    )
    p.add_argument(
        "--search-result", type=Path, default=None, help="search_result.json (default: <output-dir>/search/)"
    )
    p.add_argument("--no-original", action="store_true", help="export the subnet only")
    p.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from nncf_bootstrapnas.cli import steps_deploy
    from nncf_bootstrapnas.cli.commands._shared import load_supernet_session, subnet_from
    from nncf_bootstrapnas.cli.ui import print_summary

    session, loaded, data = load_supernet_session(args, "export")
    result_path = args.search_result or session.out / "search" / "search_result.json"
    subnet, how = subnet_from(args.subnet, loaded.supernet, result_path)
    session.console.print(f"exporting {how}")
    try:
        original = None if args.no_original else loaded.original
        steps_deploy.export_original_and_subnet(
            session, original, loaded.supernet, subnet, data, "subnet", teacher=loaded.original
        )
        if args.no_original:
            session.report.models = [m for m in session.report.models if not m.key.startswith("original")]
        steps_deploy.measure_accuracy(session, data)
    finally:
        print_summary(session, session.finish())
    return 0
