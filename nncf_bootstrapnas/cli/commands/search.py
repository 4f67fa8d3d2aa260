"""``search``: search the sub-networks of a trained super-network checkpoint."""

from __future__ import annotations

import argparse

from nncf_bootstrapnas.cli.commands._shared import add_checkpoint, add_resume, add_search_budget
from nncf_bootstrapnas.cli.session import add_common

HELP = "search sub-networks of a super-network checkpoint; writes search/ (CSV, JSON, Markdown, plots)"


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help=HELP, description=HELP + ". Settings: bootstrapNAS.search of --config.")
    add_common(p)
    add_checkpoint(p, True, "super-network checkpoint (checkpoints/supernet.pth of `train` or `run`)")
    add_resume(p)
    add_search_budget(p)
    p.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from nncf_bootstrapnas.cli import steps_search
    from nncf_bootstrapnas.cli.commands._shared import load_supernet_session
    from nncf_bootstrapnas.cli.ui import print_summary

    session, loaded, data = load_supernet_session(args, "search")
    try:
        steps_search.run(session, loaded.supernet, data, loaded.meta.get("original_fp32_accuracy"))
    finally:
        print_summary(session, session.finish(), models=False)
    return 0
