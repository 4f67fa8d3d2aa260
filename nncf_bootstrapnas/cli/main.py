"""``nncf-bootstrapnas``: argument parsing, dispatch, and the one-line error contract.

Errors print ``error: <one line>`` on stderr and exit 2 (usage, configuration) or 1 (runtime); ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from nncf_bootstrapnas.cli.errors import RUNTIME, USAGE, CLIError, one_line

EPILOG = (
    "Every subcommand reads an NNCF-style JSON config (--config; reference: docs/config.md) and writes its results "
    "under --output-dir: checkpoints/, search/, exported/, and report.json + report.md (run) or "
    "<command>_report.json + .md (the other commands). Data (--dataset): scikit-learn's bundled digits (the "
    "default, ships with the package), fashion-mnist (apt-get install dataset-fashion-mnist, or --data DIR) or your "
    "own imagefolder (--data DIR); see docs/data.md."
)


class Parser(argparse.ArgumentParser):
    """argparse prints the usage block on errors; the CLI promises a single ``error:`` line (usage stays in --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"error: {one_line(message)} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from nncf_bootstrapnas import __version__
    from nncf_bootstrapnas.cli.commands import ALL

    parser = Parser(
        prog="nncf-bootstrapnas",
        description="BootstrapNAS on NNCF 3 + OpenVINO: super-networks from pre-trained PyTorch models, progressive "
        "shrinking with quantization, sub-network search, OpenVINO export and benchmarks.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for command in ALL:
        command.add(sub)
    return parser


def _report_error(message: str, code: int) -> int:
    print(f"error: {one_line(message)}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: every error becomes one line and an exit code
        from nncf_bootstrapnas.config import ConfigError

        if debug:
            traceback.print_exc()
        if isinstance(exc, CLIError):
            return _report_error(str(exc), exc.code)
        if isinstance(exc, ConfigError):
            where = f" ({args.config})" if getattr(args, "config", None) else ""
            return _report_error(f"invalid config{where}: {exc}", USAGE)
        return _report_error(
            f"{type(exc).__name__}: {exc}" + ("" if debug else " (rerun with --debug for the traceback)"), RUNTIME
        )


if __name__ == "__main__":
    sys.exit(main())
