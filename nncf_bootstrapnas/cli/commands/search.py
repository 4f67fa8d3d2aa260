"""``search``: search the sub-networks of a trained super-network checkpoint."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nncf_bootstrapnas.cli.inputs import LoadedSupernet

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
        steps_search.run(session, loaded.supernet, data, original_accuracy(session, loaded, data))
    finally:
        print_summary(session, session.finish(), models=False)
    return 0


def original_accuracy(session: Any, loaded: LoadedSupernet, data: Any) -> float | None:
    """The original's FP32 accuracy recorded by ``train``; for an artifact saved elsewhere (the API's
    ``save_supernet``) that stores the original but not its accuracy, measured now on the validation split."""
    recorded = loaded.meta.get("original_fp32_accuracy")
    if recorded is not None or loaded.original is None:
        return recorded
    from nncf_bootstrapnas.cli.steps_model import torch_accuracy

    accuracy = torch_accuracy(loaded.original.eval(), data.val)
    session.console.print(f"original FP32 accuracy (torch, validation split, measured now): [bold]{accuracy:.2f}%")
    return accuracy
