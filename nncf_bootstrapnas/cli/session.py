"""What every command shares: common flags, config loading, output folder, seeding, console, stage timing."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nncf_bootstrapnas.cli.errors import CLIError, UsageError
from nncf_bootstrapnas.cli.overrides import add_data_flags, apply_overrides, input_layout
from nncf_bootstrapnas.report import ModelRow, RunReport, StageRecord, write_report

if TYPE_CHECKING:
    from nncf_bootstrapnas.models import ModelRef


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg}): {text}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text}")
    return value


def add_common(p: argparse.ArgumentParser, config_required: bool = True, model: bool = True) -> None:
    """Flags shared by the subcommands (each subcommand adds its own after these)."""
    p.add_argument("--config", type=Path, required=config_required, help="NNCF-style JSON config (see docs/config.md)")
    p.add_argument("--output-dir", type=Path, default=None, help="results folder (default: outputs/<command>)")
    if model:
        p.add_argument(
            "--model",
            default=None,
            help="nncf_bootstrapnas.models name, torchvision:NAME, timm:NAME, efficientnet-lite0/1/2 (ImageNet "
            "weights) or pkg.module:factory (default: config 'model')",
        )
        p.add_argument("--model-params", type=json_object, default=None, help="JSON keyword arguments of the model")
        p.add_argument("--small", action="store_true", help="the small test variant of a reference model")
        p.add_argument("--train-subset", type=int, default=None, help="train on N training images only (tiny budgets)")
        add_data_flags(p)
    p.add_argument("--seed", type=int, default=None, help="seed of data split, training and search (overrides config)")
    p.add_argument("--device", default="cpu", help="torch device for training/search (cpu, cuda, ...)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs, CI)")
    p.add_argument("--debug", action="store_true", help="tracebacks and debug logging")


@dataclass
class Session:
    """One command invocation: its config, output folder, report and console."""

    command: str
    args: argparse.Namespace
    config: Any
    out: Path
    console: Any
    report: RunReport
    model: ModelRef | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def progress(self) -> bool:
        return not self.args.no_progress

    @property
    def seed(self) -> int:
        if self.args.seed is not None:
            return int(self.args.seed)
        return int(self.config.get("seed") or self.config.bootstrapnas_training.get("seed", 0) or 0)

    def rel(self, path: str | Path) -> str:
        """Path relative to the output folder (report links)."""
        try:
            return str(Path(path).resolve().relative_to(self.out.resolve()))
        except ValueError:
            return str(path)

    @contextlib.contextmanager
    def stage(self, name: str, title: str) -> Iterator[StageRecord]:
        """Time a stage; an error is recorded in the report and re-raised."""
        self.console.rule(f"[bold]{title}")
        record = StageRecord(name, "done")
        start = time.perf_counter()
        try:
            yield record
        except BaseException as exc:
            record.status, record.reason = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            record.seconds = round(time.perf_counter() - start, 2)
            self.report.add_stage(record)
            if record.status == "skipped":
                self.console.print(f"[yellow]{title}: skipped ({record.reason})")

    def skipped_row(self, key: str, label: str, precision: str, reason: str, **values: Any) -> ModelRow:
        return self.report.set_row(ModelRow(key, label, precision, status="skipped", reason=reason, **values))

    @property
    def report_stem(self) -> str:
        """``report`` for ``run``; ``<command>_report`` otherwise, so a stage command never overwrites a run's report."""
        return "report" if self.command == "run" else f"{self.command}_report"

    def finish(self) -> dict[str, Path]:
        self.report.wall_time_s = round(time.perf_counter() - self.started, 1)
        return write_report(self.report, self.out, self.report_stem)


def load(args: argparse.Namespace, command: str, needs_model: bool = True) -> Session:
    """Config first (a config error must not wait for torch), then model spec, output folder, seeds, logging."""
    from rich.console import Console

    from nncf_bootstrapnas.config import load_config

    if args.config is not None and not args.config.is_file():
        raise UsageError(f"config file not found: {args.config}")
    config = load_config(args.config) if args.config is not None else load_config({})
    apply_overrides(config, args)
    model = model_from(config, args, required=True) if needs_model else None  # a bad name fails before any work
    out = args.output_dir or Path("outputs") / command
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {out}: {exc.strerror}") from None
    if args.seed is not None and config.has_bootstrapnas:
        config["bootstrapNAS"]["training"]["seed"] = args.seed
        config["bootstrapNAS"]["search"]["seed"] = args.seed
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    argv = " ".join(sys.argv[1:]) if sys.argv and "pytest" not in sys.argv[0] else command
    report = RunReport(command=f"nncf-bootstrapnas {argv}", dataset="")
    session = Session(command, args, config, out, console, report, model)
    _configure_runtime(args)
    if args.config is not None:
        prefix = "" if command == "run" else f"{command}_"
        source, effective = out / f"{prefix}config.source.json", out / f"{prefix}config.json"
        if source.resolve() != args.config.resolve():
            shutil.copyfile(args.config, source)
        effective.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        report.artifacts["config (as given)"] = source.name
        report.artifacts["config (effective, defaults filled)"] = effective.name
    if model is not None:
        report.model = {"spec": model.to_json(), "name": model.describe()}
    report.environment = _environment()
    return session


def model_from(config: Any, args: argparse.Namespace, required: bool) -> ModelRef | None:
    """``--model`` / ``--model-params`` / ``--small`` over the config's top-level ``model`` / ``model_params``,
    resolved (imported) now; None when neither names a model and ``required`` is False."""
    from nncf_bootstrapnas.models import ModelError, resolve_model

    name = getattr(args, "model", None)
    chosen = name or config.get("model")
    if not chosen:
        if not required:
            return None
        raise UsageError("no model: pass --model NAME (or pkg.module:factory) or set the config's top-level 'model'")
    params = dict(config.get("model_params") or {}) if name is None or name == config.get("model") else {}
    params.update(getattr(args, "model_params", None) or {})
    channels, size = input_layout(config)
    try:
        return resolve_model(
            chosen, params, small=bool(getattr(args, "small", False)), num_classes=int(config.get("num_classes") or 10),
            in_channels=channels, image_size=size,
        )  # fmt: skip
    except ModelError as exc:
        raise UsageError(str(exc)) from None


def _configure_runtime(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(int(args.threads))
    if args.device != "cpu":
        try:
            torch.empty(1, device=args.device)
        except (RuntimeError, AssertionError) as exc:
            raise UsageError(f"--device {args.device} is not usable here: {exc}") from None
    level = logging.DEBUG if args.debug else logging.WARNING
    try:
        import nncf  # sets its own logger level on import: import first, then override

        nncf.set_log_level(level)
    except ImportError:
        pass
    for name in ("nncf", "nncf_bootstrapnas"):
        logging.getLogger(name).setLevel(level)
    if not args.debug:
        import warnings

        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)


def _environment() -> dict[str, Any]:
    import platform

    import torch

    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__}
    env["torch_threads"] = torch.get_num_threads()
    for name in ("nncf", "openvino"):
        try:
            module = __import__(name)
            env[name] = getattr(module, "__version__", "?")
        except ImportError:
            env[name] = "not installed"
    try:
        from nncf_bootstrapnas.deployment._utils import cpu_model_name

        env["cpu"] = cpu_model_name()
    except Exception:  # noqa: BLE001 - informational only
        env["cpu"] = platform.processor()
    return env


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def require(condition: bool, message: str) -> None:
    if not condition:
        raise CLIError(message)
