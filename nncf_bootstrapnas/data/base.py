"""The API every data module offers, and a base that implements it for images stored as uint8 (or decoded lazily).

Why one API: the CLI, the recipes and the benchmarks pick a data set by name and then only call these members, so
digits, Fashion-MNIST and a user's image folder are interchangeable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from nncf_bootstrapnas.data.errors import DataError
from nncf_bootstrapnas.data.shaping import BatchShaper
from nncf_bootstrapnas.data.splits import fixed_subset

# Seed offsets of the fixed subsets, per split (train and val as in DigitsDataModule).
_SUBSET_SEED_OFFSET = {"train": 7, "val": 11, "test": 13}


@runtime_checkable
class DataModule(Protocol):
    """What every data module offers (digits, Fashion-MNIST, image folder).

    Splits: ``train`` for training, ``val`` for model selection and search, ``test`` (where the data set has one) for
    the accuracy that is reported; ``"test" in splits`` says whether it exists. Loaders yield ``[images, labels]``.
    """

    num_classes: int
    class_names: tuple[str, ...]
    image_size: int
    channels: int
    batch_size: int
    seed: int
    train_indices: np.ndarray
    val_indices: np.ndarray

    @property
    def splits(self) -> tuple[str, ...]: ...

    @property
    def input_shape(self) -> tuple[int, ...]: ...

    def sample_size(self, batch: int = 1) -> list[int]: ...

    def indices(self, split: str) -> np.ndarray: ...

    def train_loader(
        self,
        shuffle: bool = True,
        batch_size: int | None = None,
        drop_last: bool = False,
        num_samples: int | None = None,
    ) -> DataLoader: ...

    def val_loader(self, batch_size: int | None = None) -> DataLoader: ...

    def test_loader(self, batch_size: int | None = None) -> DataLoader: ...

    def bn_loader(self, num_samples: int | None = None, batch_size: int | None = None) -> DataLoader: ...

    def calibration_loader(self, num_samples: int = 300, batch_size: int = 1) -> DataLoader: ...

    def subset_loader(
        self, n: int, split: str = "val", batch_size: int | None = None, shuffle: bool = False
    ) -> DataLoader: ...

    def describe(self) -> str: ...


@dataclass
class ShapedBatch:
    """A batch fetched and shaped at once (``ShapedDataset.__getitems__``), passed through by ``collate_shaped``."""

    images: torch.Tensor
    labels: torch.Tensor


def collate_shaped(data: ShapedBatch | list) -> list[torch.Tensor]:
    """``[images, labels]`` from a pre-shaped batch, or the default collation of single samples (other wrappers)."""
    if isinstance(data, ShapedBatch):
        return [data.images, data.labels]
    return default_collate(data)


class ShapedDataset(Dataset):
    """``indices`` of a pool of uint8 images, shaped by ``shaper``; ``__getitems__`` fetches and shapes a whole batch.

    ``fetch(idx) -> uint8 (N, C, H, W)`` reads pool images (in memory, or decoded from files on access).
    """

    def __init__(
        self,
        fetch: Callable[[torch.Tensor], torch.Tensor],
        labels: torch.Tensor,
        indices: np.ndarray,
        shaper: BatchShaper,
    ) -> None:
        self.fetch = fetch
        self.indices = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        self.labels = labels[self.indices]
        self.shaper = shaper

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.shaper(self.fetch(self.indices[i].reshape(1)))[0], self.labels[i]

    def __getitems__(self, positions: Sequence[int]) -> ShapedBatch:
        pos = torch.as_tensor(list(positions), dtype=torch.int64)
        return ShapedBatch(self.shaper(self.fetch(self.indices[pos])), self.labels[pos])


class PooledDataModule:
    """The :class:`DataModule` API over a pool of images (``_fetch``) and their labels, split by index.

    Subclasses set the pool (``labels``, ``_fetch``), the splits and the statistics, then call ``_init_api``.
    """

    name = "data"

    def _init_api(
        self,
        labels: torch.Tensor,
        split_indices: dict[str, np.ndarray],
        class_names: Sequence[str],
        image_size: int,
        channels: int,
        batch_size: int,
        seed: int,
        augment: bool,
        mean: Sequence[float],
        std: Sequence[float],
        num_workers: int,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise DataError(f"batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise DataError(f"num_workers must be an int >= 0, got {num_workers!r}")
        self.labels = labels
        self._split_indices = split_indices
        self.train_indices = split_indices["train"]
        self.val_indices = split_indices["val"]
        self.test_indices = split_indices.get("test")
        self.class_names = tuple(class_names)
        self.num_classes = len(self.class_names)
        self.image_size, self.channels = image_size, channels
        self.batch_size, self.seed, self.augment = batch_size, seed, augment
        self.mean, self.std = tuple(mean), tuple(std)
        self.num_workers = num_workers

    def _fetch(self, idx: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self._split_indices)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample without the batch dimension, e.g. ``(3, 32, 32)``."""
        return (self.channels, self.image_size, self.image_size)

    def sample_size(self, batch: int = 1) -> list[int]:
        """``[batch, *input_shape]``, the form of an NNCF ``input_info.sample_size``."""
        return [batch, *self.input_shape]

    def indices(self, split: str) -> np.ndarray:
        """Pool indices of a split (sorted)."""
        if split not in self._split_indices:
            raise DataError(f"split must be one of {', '.join(map(repr, self.splits))}, got {split!r}")
        return self._split_indices[split]

    def _generator(self, offset: int) -> torch.Generator:
        # A fresh generator per loader: building the same loader twice gives the same order and augmentation.
        return torch.Generator().manual_seed(self.seed * 1000 + offset)

    def _loader(
        self, idx: np.ndarray, batch_size: int | None, shuffle: bool, drop_last: bool, offset: int, augment: bool
    ) -> DataLoader:
        shaper = BatchShaper(self.image_size, self.channels, self.mean, self.std, augment, self._generator(offset + 50))
        return DataLoader(
            ShapedDataset(self._fetch, self.labels, idx, shaper),
            batch_size=batch_size or self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            generator=self._generator(offset) if shuffle else None,
            collate_fn=collate_shaped,
            num_workers=self.num_workers,
        )

    def _subset(self, n: int, split: str) -> np.ndarray:
        idx = self.indices(split)
        if not isinstance(n, (int, np.integer)) or not 0 < n <= len(idx):
            raise DataError(f"n must be in [1, {len(idx)}] for split '{split}', got {n!r}")
        return fixed_subset(idx, int(n), self.seed + _SUBSET_SEED_OFFSET[split])

    def train_loader(
        self,
        shuffle: bool = True,
        batch_size: int | None = None,
        drop_last: bool = False,
        num_samples: int | None = None,
    ) -> DataLoader:
        """Training split (or a fixed subset of ``num_samples``), augmented if the module was built with ``augment``.

        Each iteration reshuffles, reproducibly from ``seed``.
        """
        idx = self.train_indices if num_samples is None else self._subset(num_samples, "train")
        return self._loader(idx, batch_size, shuffle, drop_last, offset=1, augment=self.augment)

    def val_loader(self, batch_size: int | None = None) -> DataLoader:
        """Validation split in a fixed order: model selection and search."""
        return self._loader(self.val_indices, batch_size, False, False, offset=2, augment=False)

    def test_loader(self, batch_size: int | None = None) -> DataLoader:
        """Test split in a fixed order: the accuracy to report; never for selection."""
        return self._loader(self.indices("test"), batch_size, False, False, offset=5, augment=False)

    def bn_loader(self, num_samples: int | None = None, batch_size: int | None = None) -> DataLoader:
        """Training images in a fixed order, never augmented, for BatchNorm re-estimation (all, or a fixed subset)."""
        idx = self.train_indices if num_samples is None else self._subset(num_samples, "train")
        return self._loader(idx, batch_size, False, False, offset=6, augment=False)

    def calibration_loader(self, num_samples: int = 300, batch_size: int = 1) -> DataLoader:
        """A fixed subset of training images, not augmented, for INT8 calibration (batch 1: static-batch IRs)."""
        return self._loader(self._subset(num_samples, "train"), batch_size, False, False, offset=3, augment=False)

    def subset_loader(
        self, n: int, split: str = "val", batch_size: int | None = None, shuffle: bool = False
    ) -> DataLoader:
        """``n`` fixed random images of a split, not augmented: the search's evaluation set, tiny test budgets."""
        return self._loader(self._subset(n, split), batch_size, shuffle, False, offset=4, augment=False)

    def _split_note(self) -> str:
        sizes = " / ".join(f"{len(self._split_indices[s])} {s}" for s in self.splits)
        return f"{sizes} images (seed {self.seed})"

    def _normalization_note(self) -> str:
        if self.mean == (0.0,) * len(self.mean) and self.std == (1.0,) * len(self.std):
            return "scaled to 0..1"
        return "mean " + ",".join(f"{m:.3f}" for m in self.mean) + " std " + ",".join(f"{s:.3f}" for s in self.std)

    def describe(self) -> str:
        """One line for reports: source, shaping, normalisation and split sizes."""
        aug = ", augmented (crop+flip)" if self.augment else ""
        shape = "x".join(map(str, self.input_shape))
        return f"{self.name}: {self._source_note()}; inputs {shape}, {self._normalization_note()}{aug}; {self._split_note()}"

    def _source_note(self) -> str:
        return ""

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(self._split_indices[s])}" for s in self.splits)
        return f"{type(self).__name__}(input_shape={self.input_shape}, classes={self.num_classes}, {sizes}, seed={self.seed})"


def report_loader(data: DataModule, batch_size: int | None = None) -> DataLoader:
    """The loader whose accuracy is reported: the test split where the data set has one, else validation."""
    return data.test_loader(batch_size) if "test" in data.splits else data.val_loader(batch_size)
