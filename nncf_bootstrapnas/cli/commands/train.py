"""``train``: pre-train (or load) the original model, convert it to a super-network and train it."""

from __future__ import annotations

import argparse

from nncf_bootstrapnas.cli.commands._shared import add_checkpoint, add_pretrain_epochs, add_resume
from nncf_bootstrapnas.cli.overrides import add_weights
from nncf_bootstrapnas.cli.session import add_common

HELP = "pre-train (or load) the model, convert it to a super-network and train it; writes checkpoints/supernet.pth"


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=HELP, description=HELP + " (data: --dataset, default digits).")
    add_common(p)
    add_checkpoint(p, False, "pre-trained weights (state_dict, as --weights); default: pre-train on the data")
    add_weights(p)
    add_resume(p)
    add_pretrain_epochs(p)
    p.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from nncf_bootstrapnas.cli import steps_model
    from nncf_bootstrapnas.cli.inputs import stage_data
    from nncf_bootstrapnas.cli.session import load
    from nncf_bootstrapnas.cli.ui import print_summary

    session = load(args, "train")
    data = stage_data(session, args.train_subset)
    try:
        original = steps_model.prepare_original(session, data, args.checkpoint)
        steps_model.train(session, original, data)
    finally:
        print_summary(session, session.finish(), models=False)
    return 0
