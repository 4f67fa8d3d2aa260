"""``quality``: the super-network quality report (does inherited-weight accuracy rank subnets like fine-tuning?)."""

from __future__ import annotations

import argparse

from nncf_bootstrapnas.cli.commands._shared import add_checkpoint
from nncf_bootstrapnas.cli.session import add_common

HELP = "super-network quality report: ranking of subnets by inherited vs fine-tuned accuracy"


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quality", help=HELP, description=HELP + ". Settings: the config's 'quality_report' section.")
    add_common(p)
    add_checkpoint(p, True, "super-network checkpoint (checkpoints/supernet.pth)")
    p.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    import math

    from nncf_bootstrapnas.cli import stages
    from nncf_bootstrapnas.cli.commands._shared import load_supernet_session
    from nncf_bootstrapnas.cli.steps_model import torch_accuracy
    from nncf_bootstrapnas.cli.ui import print_summary

    session, loaded, data = load_supernet_session(args, "quality")
    try:
        with session.stage("quality", "Super-network quality report") as rec:
            out = session.out / "quality"
            result = stages.quality_report(
                loaded.supernet, session.config, torch_accuracy, data, out, session.seed, session.progress
            )
            for name, path in (getattr(result, "files", None) or {}).items():
                target = session.report.plots if str(path).endswith(".png") else session.report.artifacts
                target[f"quality {name}"] = session.rel(path)
            correlations = getattr(result, "correlations", {}) or {}
            rec.details = {"reference": getattr(result, "reference", "?"), "subnets": len(getattr(result, "rows", []))}
            for signal, values in correlations.items():
                tau = values.get("kendall_tau")
                defined = isinstance(tau, (int, float)) and math.isfinite(tau)
                rec.details[f"tau[{signal}]"] = tau if defined else None
                shown = f"{tau:.3f}" if defined else "undefined (a constant signal or too few subnets)"
                session.console.print(f"Kendall tau vs {rec.details['reference']}: {signal} = {shown}")
    finally:
        print_summary(session, session.finish(), models=False)
    return 0
