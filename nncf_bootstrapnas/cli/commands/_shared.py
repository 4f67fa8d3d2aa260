"""Flags and loading steps used by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nncf_bootstrapnas.cli.errors import UsageError


def add_checkpoint(p: argparse.ArgumentParser, required: bool, what: str) -> None:
    p.add_argument("--checkpoint", type=Path, required=required, help=what)


def add_resume(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resume", action="store_true", help="continue from the checkpoints in --output-dir")


def add_search_budget(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--num-evals", type=int, default=None, help="search budget (overrides bootstrapNAS.search.num_evals)"
    )


def positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def add_pretrain_epochs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pretrain-epochs",
        type=positive(int),
        default=None,
        help="epochs of pre-training (default: config 'epochs' or 3)",
    )


def load_supernet_session(args: argparse.Namespace, command: str) -> tuple[Any, Any, Any]:
    """(session, loaded supernet checkpoint, data) for the commands that start from a trained supernet."""
    from nncf_bootstrapnas.cli.inputs import check_supernet_data, load_supernet, stage_data
    from nncf_bootstrapnas.cli.session import load

    session = load(args, command, needs_model=False)
    loaded = load_supernet(session, args.checkpoint)
    data = stage_data(session, args.train_subset, built=True)
    check_supernet_data(session, loaded.supernet, data)
    return session, loaded, data


def subnet_from(choice: str, supernet: Any, search_result: Path | None) -> tuple[dict[str, Any], str]:
    """``max``, ``min``, ``best`` (from a search_result.json) or a JSON file with a subnet config."""
    import json

    space = supernet.search_space
    if choice == "max":
        return space.maximum(), "maximum subnet"
    if choice == "min":
        return space.minimum(), "minimum subnet"
    if choice == "best":
        if search_result is None or not search_result.is_file():
            raise UsageError(f"--subnet best needs a search result; not found: {search_result} (pass --search-result)")
        from nncf_bootstrapnas.cli.steps_search import choose
        from nncf_bootstrapnas.subnet_search import SearchResult

        picked = choose(SearchResult.from_json(search_result))
        if picked is None:
            raise UsageError(f"{search_result} holds no measured subnet")
        return space.validate(picked.config), f"search result #{picked.index} ({picked.rule})"
    path = Path(choice)
    if not path.is_file():
        raise UsageError(f"--subnet must be best, max, min or a JSON file; not found: {choice}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"--subnet {path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    data = data.get("config", data) if isinstance(data, dict) else data
    try:
        return space.validate(data), f"subnet from {path}"
    except Exception as exc:  # noqa: BLE001 - SearchSpaceError names variable and choices
        raise UsageError(f"--subnet {path}: {exc}") from None
