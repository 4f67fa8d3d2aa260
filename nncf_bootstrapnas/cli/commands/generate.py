"""``generate``: SGNAS-style one-shot subnet generation for a constraint (e.g. ``--constraint macs=40e6``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from nncf_bootstrapnas.cli.commands._shared import add_checkpoint
from nncf_bootstrapnas.cli.session import add_common

HELP = "train the SGNAS architecture generator on a super-network and generate a subnet for a constraint"


def constraint(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE such as macs=40e6, got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"constraint value must be a number, got {value!r}") from None


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help=HELP, description=HELP + ". Settings: the config's 'generator' section.")
    add_common(p)
    add_checkpoint(p, True, "super-network checkpoint (checkpoints/supernet.pth)")
    p.add_argument("--constraint", type=constraint, required=True, help="NAME=VALUE, e.g. macs=40e6")
    p.add_argument(
        "--search-result", type=Path, default=None, help="search_result.json: accuracy data for the generator"
    )
    p.add_argument(
        "--generator",
        type=Path,
        default=None,
        help="a generator.json written by an earlier `generate`: reuse it (one forward pass, no training)",
    )
    p.add_argument("--strict", action="store_true", help="step choices down until the budget is met exactly")
    p.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    import json

    from nncf_bootstrapnas.cli import stages
    from nncf_bootstrapnas.cli.commands._shared import load_supernet_session
    from nncf_bootstrapnas.cli.errors import UsageError
    from nncf_bootstrapnas.cli.steps_deploy import subnet_module
    from nncf_bootstrapnas.cli.steps_model import torch_accuracy
    from nncf_bootstrapnas.cli.ui import print_summary

    name, value = args.constraint
    session, loaded, data = load_supernet_session(args, "generate")
    allowed = session.config.sections.generator.constraint
    if name != allowed:
        raise UsageError(f"--constraint {name}=...: the generator is conditioned on {allowed!r} (generator.constraint)")
    predictor = None
    if args.search_result is not None:
        if not args.search_result.is_file():
            raise UsageError(f"search result not found: {args.search_result}")
        from nncf_bootstrapnas.subnet_search import SearchResult

        predictor = SearchResult.from_json(args.search_result)
    supernet = loaded.supernet
    if args.generator is not None and not args.generator.is_file():
        raise UsageError(f"--generator: file not found: {args.generator}")
    try:
        with session.stage("generator", "Train the SGNAS generator and generate a subnet") as rec:
            if args.generator is not None:
                from nncf_bootstrapnas.generator import ArchitectureGenerator, GeneratorError

                try:
                    gen = ArchitectureGenerator.load(args.generator, supernet.search_space)
                except (GeneratorError, KeyError, ValueError) as exc:
                    raise UsageError(f"--generator {args.generator}: {exc}") from None
                session.console.print(f"reusing the generator in {args.generator} (no training)")
            else:
                gen = stages.train_generator(supernet, session.config, data, predictor, session.seed, session.progress)
                saved = gen.save(session.out / "generator.json")
                session.report.artifacts["generator (reuse with --generator)"] = session.rel(saved)
            subnet = stages.generate(supernet, gen, name, value, args.strict)
            model = subnet_module(session, supernet, subnet, data)
            measured = {"macs": supernet.macs(subnet), "params": supernet.params(subnet)}
            measured["accuracy"] = torch_accuracy(model, data.val)
            rec.details = {"constraint": f"{name} <= {value:g}", **measured}
            out = session.out / "generated_subnet.json"
            body = {"constraint": {name: value}, "config": subnet, "measured": measured, "data": data.note}
            out.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
            session.report.artifacts["generated subnet"] = session.rel(out)
            met = "meets" if measured["macs"] <= value else "EXCEEDS"
            session.console.print(
                f"generated subnet: {measured['macs'] / 1e6:.2f} MMACs ({met} {name} <= {value / 1e6:.2f} M), "
                f"accuracy {measured['accuracy']:.2f}% (torch, BN-adapted, validation split) -> {out}"
            )
    finally:
        print_summary(session, session.finish(), models=False)
    return 0
