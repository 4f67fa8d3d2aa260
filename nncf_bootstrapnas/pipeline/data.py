"""The data every stage of a run uses, resolved from the config's ``dataset`` name and the model: ``StageData``.

``DATASETS`` maps a data-set name to a factory ``(config, model, seed) -> data module``, so a new data set is one
entry. Today only scikit-learn's bundled digits is wired (the only data set that needs no files); the loaders are
shaped for the model: the reference models' layout (``nncf_bootstrapnas.models.data_kwargs``) or the config's
``input_info``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nncf_bootstrapnas.models.ref import ModelRef


class StageDataError(ValueError):
    """Data that cannot be built for this config and model: says what, and what is allowed."""


@dataclass
class StageData:
    """Loaders for every stage, built once from one seeded data module."""

    module: Any
    train: Any
    val: Any
    bn: Any
    train_subset: int | None
    dataset: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.module.input_shape)

    @property
    def note(self) -> str:
        """One line for reports; for digits it says that every accuracy is a digits accuracy."""
        dm = self.module
        n = len(dm.train_indices)
        train = f"{self.train_subset} of {n}" if self.train_subset else str(n)
        if self.dataset != "digits":
            return f"{dm.describe()}; training on {train} images"
        return (
            f"scikit-learn's bundled digits (1797 8x8 grey images, resized to {dm.image_size}x{dm.image_size}, "
            f"{dm.channels} channel(s); stratified split, seed {dm.seed}: {train} train / {len(dm.val_indices)} "
            "validation images) - the only real data set on this machine, so every accuracy is a digits accuracy"
        )

    def calibration(self, num_samples: int) -> Any:
        """A fixed subset of training samples for INT8 calibration, in batches of 32: nncf.quantize's cost is per
        batch, and the exported IRs have a dynamic batch dimension."""
        n = min(int(num_samples), len(self.module.train_indices))
        return self.module.calibration_loader(n, batch_size=min(32, n))


def _digits_layout(sample_size: list[int]) -> dict[str, Any]:
    """DigitsDataModule arguments that produce inputs of ``sample_size`` (batch first)."""
    shape = list(sample_size[1:])
    if len(shape) == 3 and shape[0] in (1, 3) and shape[1] == shape[2] and shape[1] in (8, 16, 32):
        return {"image_size": shape[1], "channels": shape[0]}
    if len(shape) == 2 and shape[0] in (1, 3) and shape[1] in (64, 256, 1024):
        return {"image_size": int(round(shape[1] ** 0.5)), "channels": shape[0], "layout": "sequence"}
    raise StageDataError(
        f"input_info[0].sample_size {sample_size} cannot be fed from the digits data set; "
        "use [N, 1 or 3, S, S] with S in 8, 16, 32 (images) or [N, 1 or 3, S*S] (sequences)"
    )


def digits_module(config: Mapping[str, Any], model: ModelRef, seed: int) -> Any:
    """Digits shaped for ``model``: the reference model's layout, else the config's ``input_info``."""
    from nncf_bootstrapnas.data import DigitsDataModule
    from nncf_bootstrapnas.models import data_kwargs

    info = config.get("input_info") or []
    if model.reference_name is not None:
        kwargs = data_kwargs(model.reference_name)
    elif info:
        kwargs = _digits_layout(list(info[0]["sample_size"]))
    else:
        raise StageDataError("input_info.sample_size is required for a model given as an import path")
    dm = DigitsDataModule(batch_size=int(config.get("batch_size", 64)), seed=seed, **kwargs)
    if info and list(info[0]["sample_size"][1:]) != list(dm.input_shape):
        raise StageDataError(
            f"input_info[0].sample_size {info[0]['sample_size']} does not match the digits input "
            f"{[1, *dm.input_shape]} of model {model.describe()}"
        )
    return dm


DATASETS: dict[str, Callable[[Mapping[str, Any], ModelRef, int], Any]] = {"digits": digits_module}


def resolve_data(config: Mapping[str, Any], model: ModelRef, seed: int, train_subset: int | None = None) -> StageData:
    """The loaders of the config's ``dataset`` (default ``digits``) shaped for ``model``; checked before any work."""
    dataset = str(config.get("dataset", "digits")).lower()
    if dataset not in DATASETS:
        raise StageDataError(
            f"dataset {config.get('dataset')!r}: available here: {', '.join(sorted(DATASETS))} (no downloads); "
            'set "dataset": "digits" or drive the Python API (fit/search/export) with your own loaders'
        )
    dm = DATASETS[dataset](config, model, seed)
    n_train = len(dm.train_indices)
    if train_subset is not None and not 0 < train_subset <= n_train:
        raise StageDataError(f"--train-subset must be in [1, {n_train}], got {train_subset}")
    train = dm.subset_loader(train_subset, "train", shuffle=True) if train_subset else dm.train_loader()
    val = dm.val_loader(batch_size=int(config.get("batch_size_val", config.get("batch_size", 64))))
    bn = dm.subset_loader(train_subset, "train") if train_subset else dm.train_loader(shuffle=False)
    return StageData(dm, train, val, bn, train_subset, dataset)
