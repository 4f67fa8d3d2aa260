"""Data modules by name, so that a config's ``"dataset"`` or the CLI's ``--dataset`` / ``--data DIR`` pick one."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from nncf_bootstrapnas.data.base import DataModule
from nncf_bootstrapnas.data.digits import DigitsDataModule
from nncf_bootstrapnas.data.errors import DataError
from nncf_bootstrapnas.data.fashion_mnist import FashionMNISTDataModule
from nncf_bootstrapnas.data.image_folder import ImageFolderDataModule
from nncf_bootstrapnas.data.shaping import resolve_normalization

DATA_MODULES: dict[str, type] = {
    "digits": DigitsDataModule,
    "fashion-mnist": FashionMNISTDataModule,
    "imagefolder": ImageFolderDataModule,
}
DATASET_NAMES = tuple(DATA_MODULES)
_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "image-folder": "imagefolder",
    "image_folder": "imagefolder",
}


def dataset_name(name: str) -> str:
    """The registered name of ``name`` (case, ``_`` / ``-`` spelling forgiven), or a :class:`DataError`."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATA_MODULES:
        raise DataError(f"unknown data set {name!r}; allowed: {', '.join(DATASET_NAMES)}")
    return key


def _digits_arguments(root: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Digits is embedded and takes a bool ``normalize`` and no augmentation: say so instead of misreading them."""
    if root is not None:
        raise DataError("the digits data set ships with scikit-learn and takes no root (--data); drop it")
    if kwargs.pop("augment", False):
        raise DataError("digits offers no augmentation; drop augment (--augment)")
    if "normalize" in kwargs:
        normalization = resolve_normalization(kwargs["normalize"])
        if normalization == "imagenet":
            raise DataError("digits normalises with its own statistics or not at all; 'imagenet' is not offered")
        kwargs["normalize"] = normalization == "dataset"
    return kwargs


def build_data_module(name: str, root: str | Path | None = None, **kwargs: Any) -> DataModule:
    """The data module ``name`` (``digits``, ``fashion-mnist``, ``imagefolder``) built from ``root`` and ``kwargs``.

    ``None`` values mean "the module's default", so a CLI can pass every flag as it is. Arguments a module does not take
    are one error listing those it does.
    """
    key = dataset_name(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if key == "digits":
        kwargs = _digits_arguments(root, kwargs)
    elif root is not None:
        kwargs["root"] = root
    elif key == "imagefolder":
        raise DataError(
            "the imagefolder data set needs root (--data DIR) with DIR/<class>/<image> or DIR/train/<class>/"
        )
    cls = DATA_MODULES[key]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise DataError(f"data set {key!r} does not take {', '.join(unknown)}; it takes: {', '.join(accepted)}")
    try:
        return cls(**kwargs)
    except DataError:
        raise
    except ValueError as exc:  # digits' own argument checks: the same error type as every other data argument
        raise DataError(f"data set {key!r}: {exc}") from exc
