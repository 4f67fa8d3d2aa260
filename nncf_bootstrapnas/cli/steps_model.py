"""Pipeline steps up to a trained super-network: pre-train (or load) the original model, convert, train."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nncf_bootstrapnas.cli import stages
from nncf_bootstrapnas.cli.errors import CLIError
from nncf_bootstrapnas.cli.session import Session, seed_everything

DEFAULT_PRETRAIN_EPOCHS = 3


def torch_accuracy(model: Any, loader: Any) -> float:
    """Top-1 accuracy (%) in torch: the library's ``top1_accuracy`` (imported here so ``--help`` stays torch-free)."""
    from nncf_bootstrapnas.evaluation import top1_accuracy

    return top1_accuracy(model, loader)


@dataclass
class Original:
    """The pre-trained model and its torch FP32 accuracy on the validation split."""

    model: Any
    accuracy: float
    source: str


def _pretrain_settings(session: Session) -> tuple[int, str, float | None]:
    cfg = session.config
    epochs = session.args.pretrain_epochs if getattr(session.args, "pretrain_epochs", None) else None
    epochs = int(epochs or cfg.get("epochs") or DEFAULT_PRETRAIN_EPOCHS)
    opt = cfg.get("optimizer") or {}
    name = str(opt.get("type", "adamw")).lower()
    return epochs, name if name in ("adamw", "sgd") else "adamw", opt.get("base_lr")


def _pretrained_meta(session: Session, accuracy: float, source: str, data: Any) -> dict[str, Any]:
    """The sidecar of ``pretrained.pth`` (``nncf_bootstrapnas.models.load_pretrained`` reads it back)."""
    from nncf_bootstrapnas.models import SMALL_KWARGS

    ref = session.model
    args = dict(ref.args)
    name = ref.reference_name or ref.factory
    if ref.reference_name is not None:
        small = args.pop("small", False)
        args.pop("name")
        args = {**(SMALL_KWARGS[name] if small else {}), **args}
    num_classes = args.pop("num_classes", None)
    meta = {"model": name, "model_kwargs": args, "num_classes": num_classes, "val_accuracy": accuracy}
    return {**meta, "source": source, "data": data.note}


def _load_weights(session: Session, model: Any, weights: Path) -> list[str]:
    """Strict loading; a new classifier only where the user set the class count (``--num-classes``)."""
    from nncf_bootstrapnas.models import ModelError, load_weights

    ref = session.model
    assert ref is not None
    asked = ref.args.get("num_classes") if session.config.get("num_classes") is not None else None
    try:
        fresh = load_weights(model, weights, num_classes=asked)
    except ModelError as exc:
        raise CLIError(f"{exc}; model {ref.describe()}") from None
    if fresh:
        session.report.notes.append(f"weights from {weights}; new classifier of {asked} classes ({', '.join(fresh)})")
    return fresh


def prepare_original(session: Session, data: Any, weights: Path | None) -> Original:
    """Load ``weights`` (``--checkpoint``, else ``--weights`` / config ``weights``) or pre-train; then measure the FP32
    accuracy (torch, validation split). Loaded weights are fine-tuned when the classifier is new or
    ``--pretrain-epochs`` is given."""
    from nncf_bootstrapnas.models import pretrain, save_pretrained
    from nncf_bootstrapnas.models.external import built_weights

    ref = session.model
    assert ref is not None
    if weights is None and session.config.get("weights"):
        weights = Path(session.config["weights"])
    seed_everything(session.seed)
    model = ref.build()
    with session.stage("pretrain", "Pre-train the original model") as rec:
        fresh = _load_weights(session, model, weights) if weights is not None else []
        source = f"weights from {weights}" if weights is not None else built_weights(ref) or "random initialisation"
        if weights is not None and not fresh and not getattr(session.args, "pretrain_epochs", None):
            rec.status, rec.reason = "skipped", f"weights loaded from {weights}"
        else:
            epochs, optimizer, lr = _pretrain_settings(session)
            model = model.to(session.args.device)
            model, _ = pretrain(
                model, data.train, data.val, epochs, lr, session.seed, optimizer, progress=session.progress
            )
            model = model.cpu()
            rec.details = {"epochs": epochs, "optimizer": optimizer, "lr": lr, "train_samples": len(data.train.dataset)}
            rec.details["start"] = source + (" (new classifier)" if fresh else "")
            source = f"pre-trained here for {epochs} epoch(s) from {rec.details['start']}"
    session.report.notes.append(f"original model: {source}")
    model.eval()
    accuracy = torch_accuracy(model, data.val)
    path = save_pretrained(
        model, session.out / "checkpoints" / "pretrained.pth", _pretrained_meta(session, accuracy, source, data)
    )
    session.report.artifacts["pre-trained weights"] = session.rel(path)
    session.console.print(f"original FP32 accuracy (torch, validation split): [bold]{accuracy:.2f}%")
    return Original(model, accuracy, source)


def train(session: Session, original: Original, data: Any) -> Any:
    """Convert + progressive shrinking (+ QAT) through ``fit``; the result is saved as a supernet artifact."""
    import copy

    from nncf_bootstrapnas.training import save_supernet

    seed_everything(session.seed)
    compression = [c["algorithm"] for c in session.config.compression]
    title = "Train the super-network (progressive shrinking" + (f" + {', '.join(compression)})" if compression else ")")
    with session.stage("train", title) as rec:
        model = copy.deepcopy(original.model).to(session.args.device)
        ckpt_dir = session.out / "checkpoints" / "train"
        supernet, info = stages.train_supernet(
            model, session.config, data, torch_accuracy, ckpt_dir, session.args.resume, session.progress
        )
        rec.details = {"compression": compression, **{k: v for k, v in info.items() if k != "history"}}
        rec.details["epochs"] = len(info.get("history", []))
        last = (info.get("history") or [{}])[-1]
        for role in ("min", "max"):
            if role in last:
                rec.details[f"{role} subnet val acc (torch)"] = round(last[role]["acc1"], 2)
        session.report.artifacts["training checkpoints"] = session.rel(ckpt_dir)
    supernet = supernet.cpu().eval()
    space = supernet.search_space
    session.console.print(f"super-network: {space!r}, maximum {supernet.macs(space.maximum()) / 1e6:.2f} MMACs")
    report_generation(session, supernet)
    meta = {"original_fp32_accuracy": original.accuracy, "original_source": original.source,
            "trained": session.report.stage("train").status == "done", "data": data.note}  # fmt: skip
    path = save_supernet(
        session.out / "checkpoints" / "supernet.pth", supernet, model=session.model, original=original.model, meta=meta
    )
    session.report.artifacts["super-network checkpoint"] = session.rel(path)
    return supernet


def report_generation(session: Session, supernet: Any) -> None:
    """Why the model got the search space it got (``supernet.generation_report()``): the summary on the console,
    JSON + Markdown beside the run's report and linked from it. Informational: a failure is a note, not an error."""
    make = getattr(supernet, "generation_report", None)
    if make is None:
        return
    try:
        report = make()
    except Exception as exc:  # noqa: BLE001 - a finished training must not be lost to its report
        session.report.notes.append(f"generation report not available: {type(exc).__name__}: {exc}")
        return
    session.console.print(report.summary(), markup=False, soft_wrap=True)
    files = report.save(session.out)
    session.report.artifacts["generation report"] = session.rel(files["markdown"])
    session.report.artifacts["generation report (JSON)"] = session.rel(files["json"])
    session.report.notes += [f"generation: {warning}" for warning in report.warnings]
