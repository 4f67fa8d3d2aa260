"""``run``: the whole pipeline on the config's data (default: digits), from a pre-trained model to a benchmarked
best subnet."""

from __future__ import annotations

import argparse

from nncf_bootstrapnas.cli.commands._shared import (
    add_checkpoint,
    add_pretrain_epochs,
    add_resume,
    add_search_budget,
)
from nncf_bootstrapnas.cli.overrides import add_weights
from nncf_bootstrapnas.cli.session import add_common

HELP = "whole pipeline: pre-train, super-network, train, search, export FP32/INT8, validate, benchmark, report"
DESCRIPTION = (
    "Pre-train the model on the data (--dataset: digits by default; or load --weights / --checkpoint), convert it "
    "to a super-network, "
    "train it with the config's schedule (progressive shrinking, plus quantization if the config's compression asks), "
    "search sub-networks, pick the best (fewest MACs within acc_delta of the original accuracy), export the original "
    "and the best subnet to OpenVINO FP32 and INT8, measure their accuracy in OpenVINO and benchmark them. Writes "
    "report.json and report.md under --output-dir."
)


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help=HELP, description=DESCRIPTION)
    add_common(p)
    add_checkpoint(p, False, "pre-trained weights (state_dict) or a super-network checkpoint (skips training)")
    add_weights(p)
    add_resume(p)
    add_pretrain_epochs(p)
    add_search_budget(p)
    p.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from nncf_bootstrapnas.cli.run_pipeline import run
    from nncf_bootstrapnas.cli.session import load

    return run(load(args, "run"))
