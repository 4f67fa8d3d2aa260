"""Fashion-MNIST (Zalando, MIT licence) from local IDX files: 60 000 train / 10 000 test 28x28 grey images, 10 classes.

Why local files only: nothing may download at run time. Debian ships the set (``apt-get install
dataset-fashion-mnist``, or ``make data``); a torchvision download folder or any folder of the four files works too.
The whole set is kept in memory as uint8 (55 MB); resizing and normalisation happen per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nncf_bootstrapnas.data.base import PooledDataModule
from nncf_bootstrapnas.data.errors import DataError, DataNotFoundError
from nncf_bootstrapnas.data.idx import read_idx
from nncf_bootstrapnas.data.shaping import (
    channel_statistics,
    check_image_size,
    imagenet_statistics,
    resolve_normalization,
)
from nncf_bootstrapnas.data.splits import stratified_split

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
INSTALL_COMMAND = "apt-get install dataset-fashion-mnist"
# Base names of the four IDX files; each may also end in .gz.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGE_SHAPE = (28, 28)
DEFAULT_VAL_SIZE = 5000


@dataclass
class FashionMNISTArrays:
    """The four IDX arrays as read, and the folder they came from."""

    folder: Path
    train_images: np.ndarray  # (N, 28, 28) uint8
    train_labels: np.ndarray  # (N,) uint8
    test_images: np.ndarray
    test_labels: np.ndarray


def _files_in(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The IDX files found in ``folder`` (uncompressed preferred) and the base names of those missing."""
    found, missing = {}, []
    for key, base in IDX_FILES.items():
        for name in (base, base + ".gz"):
            if (folder / name).is_file():
                found[key] = folder / name
                break
        else:
            missing.append(base)
    return found, missing


def candidate_folders(root: str | Path | None) -> list[Path]:
    """Where the files are looked for: ``root``, ``root/FashionMNIST/raw``, ``root/raw``; without root, Debian's."""
    if root is None:
        return [DEBIAN_DIR]
    root = Path(root).expanduser()
    return [root, root / "FashionMNIST" / "raw", root / "raw"]


def find_fashion_mnist(root: str | Path | None = None) -> dict[str, Path]:
    """Paths of the four IDX files, or :class:`DataNotFoundError` listing where it looked and how to install them."""
    looked = []
    for folder in candidate_folders(root):
        found, missing = _files_in(folder)
        if not missing:
            return found
        state = "no such folder" if not folder.is_dir() else "missing " + ", ".join(f"{m}[.gz]" for m in missing)
        looked.append(f"{folder} ({state})")
    raise DataNotFoundError(
        "Fashion-MNIST not found; looked in: "
        + "; ".join(looked)
        + f". Install it with `{INSTALL_COMMAND}` (or `make data`; files land in {DEBIAN_DIR}), or give a folder "
        f"holding {', '.join(IDX_FILES.values())} (each may end in .gz), or a torchvision-style ROOT with "
        "ROOT/FashionMNIST/raw/"
    )


def _check_pair(images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path) -> None:
    if images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
        raise DataError(f"{images_path}: images of shape {images.shape[1:]} {images.dtype}, expected 28x28 uint8")
    if labels.dtype != np.uint8:
        raise DataError(f"{labels_path}: labels of type {labels.dtype}, expected uint8")
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels")
    if len(labels) and int(labels.max()) >= len(FASHION_MNIST_CLASSES):
        raise DataError(f"{labels_path}: label {int(labels.max())} outside 0..{len(FASHION_MNIST_CLASSES) - 1}")


def load_fashion_mnist(root: str | Path | None = None) -> FashionMNISTArrays:
    """Read and check the four IDX files (see :func:`find_fashion_mnist` for where they are looked for)."""
    paths = find_fashion_mnist(root)
    arrays = {key: read_idx(path, ndim=3 if key.endswith("images") else 1) for key, path in paths.items()}
    for split in ("train", "test"):
        _check_pair(
            arrays[f"{split}_images"], arrays[f"{split}_labels"], paths[f"{split}_images"], paths[f"{split}_labels"]
        )
    return FashionMNISTArrays(folder=paths["train_images"].parent, **arrays)


class FashionMNISTDataModule(PooledDataModule):
    """Fashion-MNIST with a seeded, stratified validation split carved from the official training set.

    Splits: ``train`` (60 000 - ``val_size``), ``val`` (``val_size``, for model selection and search) and ``test`` (the
    official 10 000, for the accuracy to report). ``val_size=0`` trains on all 60 000 and makes ``val`` the test set:
    selection on the test set, so its accuracies are optimistic (the description says so).

    Args:
        root: a folder with the four IDX files, or a torchvision-style root; default: Debian's location.
        image_size: model input size (28 native; e.g. 32 for CIFAR-style models, 64-224 for ImageNet models).
        channels: the grey channel repeated ``channels`` times (3 for RGB models).
        val_size: images held out of training for validation, the same share of every class.
        normalize: ``True``/``"dataset"`` (mean/std of the training split), ``"imagenet"``, or ``False``/``"none"``.
        augment: random crop (``image_size // 8`` padding) and horizontal flip in :meth:`train_loader`.
    """

    name = "Fashion-MNIST"

    def __init__(
        self,
        root: str | Path | None = None,
        image_size: int = 28,
        channels: int = 1,
        val_size: int = DEFAULT_VAL_SIZE,
        seed: int = 0,
        batch_size: int = 64,
        normalize: bool | str = True,
        augment: bool = False,
        num_workers: int = 0,
    ) -> None:
        check_image_size(image_size)
        if not isinstance(channels, int) or channels < 1:
            raise DataError(f"channels must be a positive int (the grey channel is repeated), got {channels!r}")
        normalization = resolve_normalization(normalize)
        arrays = load_fashion_mnist(root)
        self.folder = arrays.folder
        n_train = len(arrays.train_labels)
        if not isinstance(val_size, int) or not 0 <= val_size < n_train:
            raise DataError(
                f"val_size must be an int in [0, {n_train}) (0: validate on the test set), got {val_size!r}"
            )
        self.val_size = val_size
        images = np.concatenate([arrays.train_images, arrays.test_images])[:, None]
        self.raw_images = torch.from_numpy(images)  # pool: official train rows first, then the test rows
        labels = torch.from_numpy(np.concatenate([arrays.train_labels, arrays.test_labels]).astype(np.int64))
        test_idx = np.arange(n_train, len(labels))
        if val_size:
            train_idx, val_idx = stratified_split(arrays.train_labels, val_size / n_train, seed)
            if len(val_idx) == 0:
                raise DataError(f"val_size {val_size} rounds to no image of any class; use a larger val_size")
        else:
            train_idx, val_idx = np.arange(n_train), test_idx
        mean, std = self._statistics(normalization, channels, train_idx)
        self.normalization = normalization
        splits = {"train": train_idx, "val": val_idx, "test": test_idx}
        super()._init_api(
            labels,
            splits,
            FASHION_MNIST_CLASSES,
            image_size,
            channels,
            batch_size,
            seed,
            augment,
            mean,
            std,
            num_workers,
        )

    def _statistics(
        self, normalization: str, channels: int, train_idx: np.ndarray
    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if normalization == "imagenet":
            return imagenet_statistics(channels)
        if normalization == "none":
            return (0.0,) * channels, (1.0,) * channels
        # Training split only, so validation and test stay unseen; grey, so the same for every repeated channel.
        mean, std = channel_statistics(self.raw_images[torch.from_numpy(train_idx)])
        return mean * channels, std * channels

    def _fetch(self, idx: torch.Tensor) -> torch.Tensor:
        return self.raw_images[idx]

    def _source_note(self) -> str:
        n_test = len(self.test_indices)
        return f"{self.folder} ({len(self.raw_images) - n_test} train + {n_test} test 28x28 grey images, 10 classes)"

    def _split_note(self) -> str:
        if self.val_size:
            val = f"{len(self.val_indices)} val (stratified from the official train set)"
        else:
            val = "val = the official test set (selection on the test set: optimistic accuracies)"
        return f"{len(self.train_indices)} train / {val} / {len(self.test_indices)} test images (seed {self.seed})"
