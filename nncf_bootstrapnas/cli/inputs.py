"""What a command reads (its data and a supernet checkpoint), through the library, with the CLI's error contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nncf_bootstrapnas.cli.errors import CLIError, UsageError
from nncf_bootstrapnas.cli.session import Session, model_from


def stage_data(session: Session, train_subset: int | None, built: bool = False) -> Any:
    """``pipeline.data.resolve_data`` for the session's config and model; a bad combination is a usage error.

    ``built``: the model exists already (a loaded super-network), so its classes cannot follow the data's.
    """
    from nncf_bootstrapnas.pipeline.data import StageDataError, resolve_data

    assert session.model is not None
    try:
        data = resolve_data(session.config, session.model, session.seed, train_subset)
    except StageDataError as exc:
        raise UsageError(str(exc)) from None
    session.report.dataset = data.note
    _match_classes(session, data.module.num_classes, built)
    return data


def _match_classes(session: Session, classes: int, built: bool) -> None:
    """The model's classifier against the data set's classes: follows the data unless the user set a count."""
    import dataclasses

    ref = session.model
    own = ref.args.get("num_classes") if ref is not None else None
    if own is None or own == classes:
        return
    if built:
        raise UsageError(
            f"the super-network has {own} classes but the data set {classes}; pass the --dataset / --data it was "
            "trained on"
        )
    given = session.config.get("num_classes")
    if given is not None:
        raise UsageError(
            f"the data set has {classes} classes but --num-classes / num_classes is {given}; pass --num-classes {classes}"
        )
    session.model = dataclasses.replace(ref, args={**ref.args, "num_classes": classes})
    session.report.model = {"spec": session.model.to_json(), "name": session.model.describe()}
    session.report.notes.append(f"classifier of {classes} classes, as many as the data set has")


def check_supernet_data(session: Session, supernet: Any, data: Any) -> None:
    """A loaded super-network against the data: the input shape it was traced with and its class count."""
    example = getattr(supernet, "example_input", None) or ()
    shape = tuple(getattr(example[0], "shape", ())[1:]) if example else ()
    if shape and shape != tuple(data.input_shape):
        raise UsageError(
            f"the super-network was built for inputs {'x'.join(map(str, shape))} but the data gives "
            f"{'x'.join(map(str, data.input_shape))}; pass the --image-size / input_info it was trained with"
        )
    _match_classes(session, data.module.num_classes, built=True)


@dataclass
class LoadedSupernet:
    """A supernet artifact read back: the super-network, the original model (None if not saved) and notes."""

    supernet: Any
    original: Any
    meta: dict[str, Any] = field(default_factory=dict)


def read_checkpoint(path: Path) -> Any:
    """The artifact at ``path``, or None when the file holds something else (e.g. pre-trained weights)."""
    from nncf_bootstrapnas.training import CheckpointError, read_artifact
    from nncf_bootstrapnas.training.artifact import NotAnArtifactError

    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    try:
        return read_artifact(path)
    except NotAnArtifactError:
        return None
    except CheckpointError as exc:
        raise CLIError(str(exc)) from None


def load_supernet(session: Session, path: Path) -> LoadedSupernet:
    """The super-network of a supernet artifact (``train``/``run``) or a training checkpoint (then the model comes
    from ``--model`` or the config); sets ``session.model``."""
    from nncf_bootstrapnas.training import CheckpointError

    artifact = read_checkpoint(path)
    if artifact is None:
        raise UsageError(f"{path} holds plain weights, not a super-network checkpoint (run `train` first)")
    ref = artifact.model or model_from(session.config, session.args, required=False)
    if ref is None:
        raise UsageError(f"{path} is a training checkpoint: pass --model (or set the config's 'model')")
    session.model = ref
    meta = dict(artifact.meta)
    try:
        supernet = artifact.build_supernet(None if artifact.model is not None else ref.build())
        original = artifact.build_original() if artifact.model is not None else None
    except CheckpointError as exc:
        raise CLIError(f"incompatible checkpoint {path} for model {ref.describe()}: {exc}") from None
    if original is None:
        # a training checkpoint does not keep the original: its maximum subnet is the closest (function-preserving
        # before training, trained since), so the original rows are skipped instead of guessed
        meta.setdefault("source", f"training checkpoint {path}")
        meta["original_note"] = "the original model is not stored in this checkpoint; original rows skipped"
    session.report.model = {"spec": ref.to_json(), "name": ref.describe(), "checkpoint": str(path)}
    return LoadedSupernet(supernet.eval(), original, meta)
