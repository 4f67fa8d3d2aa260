"""The data every stage of a run uses, resolved from the config's ``dataset`` name and the model: ``StageData``.

``DATASETS`` maps a data-set name to a factory ``(config, model, seed) -> data module``, so a new data set is one
entry: ``digits`` (embedded), ``fashion-mnist`` and ``imagefolder`` (read from ``dataset_dir``, the CLI's
``--data``). The loaders are shaped for the model: the config's ``input_info`` (``[N, C, S, S]``: channels and size;
grey images are repeated to ``C`` channels and resized to ``S``), else the reference model's layout
(``nncf_bootstrapnas.models.data_kwargs``) or an external model's own ``image_size``.
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
            "validation images): every accuracy is a digits accuracy (--dataset fashion-mnist or imagefolder for more)"
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
    """Digits shaped for ``model``: the config's ``input_info``, else the reference model's layout (always for the
    sequence and segmentation models)."""
    from nncf_bootstrapnas.data import DigitsDataModule
    from nncf_bootstrapnas.models import data_kwargs

    info = config.get("input_info") or []
    if config.get("dataset_dir"):
        raise StageDataError("the digits data set ships with scikit-learn and takes no --data (dataset_dir); drop it")
    reference = data_kwargs(model.reference_name) if model.reference_name is not None else None
    if info and (reference is None or set(reference) <= {"image_size", "channels"}):
        kwargs = _digits_layout(list(info[0]["sample_size"]))  # the config's input size (--image-size) wins
    elif reference is not None:
        kwargs = reference
    else:
        raise StageDataError(
            f"the digits input size of model {model.describe()} is unknown: pass --image-size 8, 16 or 32 (or set "
            "input_info.sample_size)"
        )
    dm = DigitsDataModule(batch_size=int(config.get("batch_size", 64)), seed=seed, **kwargs)
    if info and list(info[0]["sample_size"][1:]) != list(dm.input_shape):
        raise StageDataError(
            f"input_info[0].sample_size {info[0]['sample_size']} does not match the digits input "
            f"{[1, *dm.input_shape]} of model {model.describe()}"
        )
    return dm


def image_layout(config: Mapping[str, Any], model: ModelRef) -> tuple[int, int]:
    """``(channels, image_size)`` the model takes: ``input_info``, else the reference model's or the factory's own."""
    info = config.get("input_info") or []
    if info:
        shape = list(info[0]["sample_size"])
        if len(shape) != 4 or shape[2] != shape[3]:
            raise StageDataError(f"input_info[0].sample_size {shape} is not an image batch [N, C, S, S]")
        return shape[1], shape[2]
    if model.reference_name is not None:
        from nncf_bootstrapnas.models import data_kwargs

        kwargs = data_kwargs(model.reference_name)
        if set(kwargs) - {"image_size", "channels"}:
            raise StageDataError(f"model {model.describe()} takes digits only (layout {kwargs}); use --dataset digits")
        return kwargs["channels"], kwargs["image_size"]
    if model.args.get("image_size"):
        return int(model.args.get("in_channels", 3)), int(model.args["image_size"])
    raise StageDataError(
        f"the input size of model {model.describe()} is unknown: pass --image-size S (e.g. 224 for ImageNet models) "
        "or set input_info.sample_size [1, C, S, S]"
    )


def _normalization(model: ModelRef) -> str:
    """ImageNet statistics for ImageNet-pretrained weights (EfficientNet-Lite), the data set's own otherwise."""
    from nncf_bootstrapnas.models.external import LITE_FACTORY

    return "imagenet" if model.factory == LITE_FACTORY and model.args.get("pretrained", True) else "dataset"


def fashion_mnist_module(config: Mapping[str, Any], model: ModelRef, seed: int) -> Any:
    """Fashion-MNIST from ``dataset_dir`` (default: Debian's folder), shaped for ``model``.

    The validation split is 5000 images of the official training set (a twelfth of smaller sets, e.g. test fixtures).
    """
    from nncf_bootstrapnas.data import build_data_module, find_fashion_mnist, read_idx
    from nncf_bootstrapnas.data.fashion_mnist import DEFAULT_VAL_SIZE

    channels, size = image_layout(config, model)
    root = config.get("dataset_dir")
    n_train = len(read_idx(find_fashion_mnist(root)["train_labels"], ndim=1))  # 60 KB: the labels only
    return build_data_module(
        "fashion-mnist", root, image_size=size, channels=channels, seed=seed,
        val_size=min(DEFAULT_VAL_SIZE, n_train // 12), batch_size=int(config.get("batch_size", 64)),
        normalize=_normalization(model),
    )  # fmt: skip


_CACHE_BYTES = 1 << 30  # decoded image folders up to 1 GiB stay in memory: PIL decoding per epoch is the bottleneck


def image_folder_module(config: Mapping[str, Any], model: ModelRef, seed: int) -> Any:
    """The user's image folder ``dataset_dir`` (``DIR/<class>/<image>``, optional ``train/ val/ test/``)."""
    from nncf_bootstrapnas.data import build_data_module

    channels, size = image_layout(config, model)
    dm = build_data_module(
        "imagefolder", config.get("dataset_dir"), image_size=size, channels=channels, seed=seed,
        batch_size=int(config.get("batch_size", 64)), normalize=_normalization(model),
    )  # fmt: skip
    if len(dm.paths) * channels * size * size <= _CACHE_BYTES:
        dm.cache = {}  # the module's own cache (cache=True), decided once the folder's size is known
    return dm


DATASETS: dict[str, Callable[[Mapping[str, Any], ModelRef, int], Any]] = {
    "digits": digits_module,
    "fashion-mnist": fashion_mnist_module,
    "imagefolder": image_folder_module,
}


def resolve_data(config: Mapping[str, Any], model: ModelRef, seed: int, train_subset: int | None = None) -> StageData:
    """The loaders of the config's ``dataset`` (default ``digits``) shaped for ``model``; checked before any work."""
    from nncf_bootstrapnas.data import DataError, dataset_name

    name = config.get("dataset") or "digits"
    try:
        dataset = dataset_name(name)
        if dataset not in DATASETS:
            raise DataError(f"unknown data set {name!r}")
        dm = DATASETS[dataset](config, model, seed)
    except DataError as exc:
        raise StageDataError(f"{exc} (see docs/data.md)") from None
    n_train = len(dm.train_indices)
    if train_subset is not None and not 0 < train_subset <= n_train:
        raise StageDataError(f"--train-subset must be in [1, {n_train}], got {train_subset}")
    train = dm.subset_loader(train_subset, "train", shuffle=True) if train_subset else dm.train_loader()
    val = dm.val_loader(batch_size=int(config.get("batch_size_val", config.get("batch_size", 64))))
    bn = dm.subset_loader(train_subset, "train") if train_subset else dm.train_loader(shuffle=False)
    return StageData(dm, train, val, bn, train_subset, dataset)
