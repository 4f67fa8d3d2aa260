"""The CLI's data: scikit-learn's bundled digits, the only real data set available offline (say so everywhere)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nncf_bootstrapnas.cli.errors import UsageError
from nncf_bootstrapnas.cli.models import ModelSpec

SUPPORTED = ("digits",)


def dataset_note(dm: Any, train_subset: int | None = None) -> str:
    train = f"{train_subset} of {len(dm.train_indices)}" if train_subset else str(len(dm.train_indices))
    return (
        f"scikit-learn's bundled digits (1797 8x8 grey images, resized to {dm.image_size}x{dm.image_size}, "
        f"{dm.channels} channel(s); stratified split, seed {dm.seed}: {train} train / {len(dm.val_indices)} validation "
        "images) - the only real data set on this machine, so every accuracy is a digits accuracy"
    )


@dataclass
class DigitsData:
    """Loaders for every stage, built once from one seeded DigitsDataModule."""

    module: Any
    train: Any
    val: Any
    bn: Any
    train_subset: int | None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.module.input_shape)

    @property
    def note(self) -> str:
        return dataset_note(self.module, self.train_subset)

    def calibration(self, num_samples: int) -> Any:
        """A fixed subset of training samples for INT8 calibration, in batches of 32: nncf.quantize's cost is per
        batch, and the exported IRs have a dynamic batch dimension."""
        n = min(int(num_samples), len(self.module.train_indices))
        return self.module.calibration_loader(n, batch_size=min(32, n))


def _layout_from_shape(sample_size: list[int]) -> dict[str, Any]:
    """DigitsDataModule arguments that produce inputs of ``sample_size`` (batch first), or a usage error."""
    shape = list(sample_size[1:])
    if len(shape) == 3 and shape[0] in (1, 3) and shape[1] == shape[2] and shape[1] in (8, 16, 32):
        return {"image_size": shape[1], "channels": shape[0]}
    if len(shape) == 2 and shape[0] in (1, 3) and shape[1] in (64, 256, 1024):
        return {"image_size": int(round(shape[1] ** 0.5)), "channels": shape[0], "layout": "sequence"}
    raise UsageError(
        f"input_info[0].sample_size {sample_size} cannot be fed from the digits data set; "
        "use [N, 1 or 3, S, S] with S in 8, 16, 32 (images) or [N, 1 or 3, S*S] (sequences)"
    )


def build_data(config: dict[str, Any], spec: ModelSpec, seed: int, train_subset: int | None = None) -> DigitsData:
    """Digits loaders shaped for the model: ``examples.models.data_kwargs`` for its names, else ``input_info``."""
    dataset = str(config.get("dataset", "digits")).lower()
    if dataset not in SUPPORTED:
        raise UsageError(
            f"dataset {config.get('dataset')!r}: the CLI only ships scikit-learn's bundled digits (no downloads); "
            'set "dataset": "digits" or drive the Python API (fit/search/export) with your own loaders'
        )
    info = config.get("input_info") or []
    if not spec.is_import_path:
        from examples.models import data_kwargs

        kwargs = data_kwargs(spec.name)
    elif info:
        kwargs = _layout_from_shape(list(info[0]["sample_size"]))
    else:
        raise UsageError("input_info.sample_size is required for a model given as an import path")
    from nncf_bootstrapnas.data import DigitsDataModule

    dm = DigitsDataModule(batch_size=int(config.get("batch_size", 64)), seed=seed, **kwargs)
    if info and list(info[0]["sample_size"][1:]) != list(dm.input_shape):
        raise UsageError(
            f"input_info[0].sample_size {info[0]['sample_size']} does not match the digits input "
            f"{[1, *dm.input_shape]} of model {spec.name}"
        )
    n_train = len(dm.train_indices)
    if train_subset is not None and not 0 < train_subset <= n_train:
        raise UsageError(f"--train-subset must be in [1, {n_train}], got {train_subset}")
    train = dm.subset_loader(train_subset, "train", shuffle=True) if train_subset else dm.train_loader()
    val = dm.val_loader(batch_size=int(config.get("batch_size_val", config.get("batch_size", 64))))
    bn = dm.subset_loader(train_subset, "train") if train_subset else dm.train_loader(shuffle=False)
    return DigitsData(dm, train, val, bn, train_subset)
