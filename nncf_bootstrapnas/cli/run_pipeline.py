"""``run``: pre-train -> super-network -> train -> search -> export -> validate -> benchmark -> report, one process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nncf_bootstrapnas.cli import steps_deploy, steps_model, steps_search
from nncf_bootstrapnas.cli.inputs import check_supernet_data, load_supernet, read_checkpoint, stage_data
from nncf_bootstrapnas.cli.session import Session
from nncf_bootstrapnas.cli.ui import print_summary


def starting_point(session: Session, data: Any) -> tuple[Any, float | None, Any]:
    """(original model, its FP32 accuracy, supernet or None) from --checkpoint or by pre-training."""
    path: Path | None = session.args.checkpoint
    if path is not None and read_checkpoint(path) is not None:
        loaded = load_supernet(session, path)
        check_supernet_data(session, loaded.supernet, data)
        steps_model.report_generation(session, loaded.supernet)
        acc = loaded.meta.get("original_fp32_accuracy")
        for name, title in (("pretrain", "Pre-train"), ("train", "Train the super-network")):
            with session.stage(name, title) as rec:
                rec.status, rec.reason = "skipped", f"super-network checkpoint loaded from {path}"
        if acc is None and loaded.original is not None:
            acc = steps_model.torch_accuracy(loaded.original, data.val)
        return loaded.original, acc, loaded.supernet
    original = steps_model.prepare_original(session, data, path)
    return original.model, original.accuracy, None


def run(session: Session) -> int:
    assert session.model is not None
    data = stage_data(session, session.args.train_subset)
    session.console.print(f"[bold]model[/] {session.model.describe()}  [bold]data[/] {data.note}")
    try:
        original, original_acc, supernet = starting_point(session, data)
        if supernet is None:
            supernet = steps_model.train(session, steps_model.Original(original, original_acc, ""), data)
        if original_acc is not None:
            session.report.notes.append(f"original FP32 accuracy in torch: {original_acc:.2f}% (validation split)")
        _, choice = steps_search.run(session, supernet, data, original_acc)
        subnet = None if choice is None else choice.config
        steps_deploy.export_original_and_subnet(session, original, supernet, subnet, data)
        if choice is not None and not choice.qualified:
            for key in ("subnet_fp32", "subnet_int8"):
                row = session.report.row(key)
                if row is not None:
                    row.notes.append(choice.rule)
        steps_deploy.measure_accuracy(session, data)
        steps_deploy.benchmark_all(session, data.input_shape)
    finally:
        files = session.finish()
        print_summary(session, files)
    return 0
