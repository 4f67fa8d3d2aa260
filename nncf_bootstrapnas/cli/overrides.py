"""Data and model flags, NNCF-sample style: ``--dataset``, ``--data``, ``--weights``, ``--num-classes``, ``--image-size``.

Why they edit the config: the flags override the config keys of the NNCF samples (``dataset``, ``dataset_dir``,
``weights``, ``num_classes``, ``input_info``), so every stage reads one source and the effective config written to
the output folder records what ran. Each value is checked when parsed or loaded, before any model or data is built.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nncf_bootstrapnas.cli.errors import UsageError

DATASET_HELP = (
    "data set: digits (embedded, the default), fashion-mnist (Debian's dataset-fashion-mnist, or --data DIR) or "
    "imagefolder (--data DIR holding DIR/<class>/<image>); overrides config 'dataset'"
)


def dataset_arg(text: str) -> str:
    """The registered data-set name of ``text`` (imports the data package only when the flag is given)."""
    from nncf_bootstrapnas.data import DataError, dataset_name

    try:
        return dataset_name(text)
    except DataError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def image_size_arg(text: str) -> int:
    from nncf_bootstrapnas.data.shaping import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
    if not MIN_IMAGE_SIZE <= value <= MAX_IMAGE_SIZE:
        raise argparse.ArgumentTypeError(f"must be in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}], got {value}")
    return value


def add_data_flags(p: argparse.ArgumentParser) -> None:
    """Flags of every command that builds data and a model."""
    from nncf_bootstrapnas.cli.commands._shared import positive

    p.add_argument("--dataset", type=dataset_arg, default=None, help=DATASET_HELP)
    p.add_argument(
        "--data", type=Path, default=None, metavar="DIR",
        help="root of the data set: a folder of the four Fashion-MNIST IDX files (or a torchvision ROOT with "
        "FashionMNIST/raw/), or the image folder; overrides config 'dataset_dir'",
    )  # fmt: skip
    p.add_argument(
        "--num-classes", type=positive(int), default=None, metavar="N",
        help="classes of the model's classifier (default: config 'num_classes', else the data set's); with "
        "--weights of another class count, the classifier is re-initialised",
    )  # fmt: skip
    p.add_argument(
        "--image-size", type=image_size_arg, default=None, metavar="S",
        help="model input size S: inputs are resized to SxS (grey repeated to the model's channels); sets "
        "input_info.sample_size [N, C, S, S]",
    )  # fmt: skip


def add_weights(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights", type=Path, default=None, metavar="FILE",
        help="a state_dict to load into the model before training (torch.load(weights_only=True), strict; a "
        "different classifier only with --num-classes, then re-initialised and fine-tuned; otherwise pre-training is "
        "skipped unless --pretrain-epochs is given); overrides config 'weights'",
    )  # fmt: skip


def _input_entry(size: int) -> dict[str, Any]:
    """A new ``input_info`` entry ``[1, 3, S, S]`` with the schema's defaults (type, filler)."""
    from nncf_bootstrapnas.config.schema import ROOT, schemas

    return schemas().fill_defaults({"sample_size": [1, 3, size, size]}, ROOT + "#/$defs/input_info_entry")


def _set_image_size(config: Any, size: int) -> None:
    info = config.get("input_info") or []
    if not info:
        config["input_info"] = [_input_entry(size)]
        return
    shape = list(info[0]["sample_size"])
    if len(shape) != 4:
        raise UsageError(f"--image-size needs image inputs [N, C, H, W]; input_info[0].sample_size is {shape}")
    info[0]["sample_size"] = [shape[0], shape[1], size, size]


def apply_overrides(config: Any, args: argparse.Namespace) -> None:
    """Write the flags given into ``config``; check the weights file of the commands that take one."""
    for flag, key in (("dataset", "dataset"), ("data", "dataset_dir"), ("num_classes", "num_classes")):
        value = getattr(args, flag, None)
        if value is not None:
            config[key] = value if flag != "data" else str(value)
    if getattr(args, "image_size", None) is not None:
        _set_image_size(config, args.image_size)
    if not hasattr(args, "weights"):
        return
    if args.weights is not None:
        if getattr(args, "checkpoint", None) is not None:
            raise UsageError("--weights and --checkpoint both give the starting weights; pass one of them")
        config["weights"] = str(args.weights)
    if config.get("weights") and not Path(config["weights"]).is_file():
        raise UsageError(f"weights file not found: {config['weights']}")


def input_layout(config: Any) -> tuple[int, int | None]:
    """``(channels, image_size)`` of ``input_info[0]`` for the external model factories (3 and None when absent)."""
    info = config.get("input_info") or []
    shape = list(info[0]["sample_size"]) if info else []
    return (shape[1], shape[2]) if len(shape) == 4 else (3, None)
