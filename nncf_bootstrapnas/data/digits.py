"""scikit-learn's bundled 8x8 digits as a tiny, download-free image data set.

Why digits: 1797 images ship inside scikit-learn, so the demo, the tests and the benchmarks train and evaluate real
models in seconds with no network. Everything is computed once and cached as tensors; loaders only index them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nncf_bootstrapnas.data.errors import DataError
from nncf_bootstrapnas.data.splits import stratified_split

IGNORE_INDEX = -100  # torch's cross-entropy default: background pixels of segmentation targets
NUM_CLASSES = 10
DIGITS_CLASSES = tuple(str(d) for d in range(NUM_CLASSES))
_MAX_PIXEL = 16.0

Split = Literal["train", "val"]


class DigitsDataModule:
    """Seeded, stratified train/val split of the digits set with cached, standardised tensors.

    Args:
        image_size: 8 (native), 16 or 32 (bilinear upsampling, done once).
        channels: 1, or 3 (the grey image replicated, for RGB models).
        val_fraction: fraction of every class held out for validation.
        seed: drives the split, the shuffling and the subsets.
        batch_size: default batch size of every loader.
        normalize: standardise with the training split's pixel mean/std (after scaling 0..16 to 0..1).
        layout: ``"image"`` gives NCHW; ``"sequence"`` raster-scans each image into ``(channels, image_size**2)`` steps
            (sequential-MNIST style, for 1-D temporal models).
        target: ``"class"`` gives the digit label; ``"segmentation"`` gives a per-pixel map ``(H, W)``: the label on stroke
            pixels (raw intensity > ``seg_threshold``), ``IGNORE_INDEX`` elsewhere (for dense-output models).
        seg_threshold: stroke threshold on the 0..1 intensity.
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        val_fraction: float = 0.2,
        seed: int = 0,
        batch_size: int = 64,
        normalize: bool = True,
        layout: Literal["image", "sequence"] = "image",
        target: Literal["class", "segmentation"] = "class",
        seg_threshold: float = 0.5,
    ) -> None:
        if image_size not in (8, 16, 32):
            raise ValueError(f"image_size must be 8, 16 or 32, got {image_size}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if layout not in ("image", "sequence"):
            raise ValueError(f"layout must be 'image' or 'sequence', got {layout!r}")
        if target not in ("class", "segmentation"):
            raise ValueError(f"target must be 'class' or 'segmentation', got {target!r}")
        if layout == "sequence" and target == "segmentation":
            raise ValueError("segmentation targets need layout='image'")
        from sklearn.datasets import load_digits  # imported here: sklearn is slow to import

        self.image_size = image_size
        self.channels = channels
        self.val_fraction = val_fraction
        self.seed = seed
        self.batch_size = batch_size
        self.normalize = normalize
        self.layout = layout
        self.target = target
        self.num_classes = NUM_CLASSES
        self.class_names = DIGITS_CLASSES

        digits = load_digits()
        labels = np.asarray(digits.target, dtype=np.int64)
        self.train_indices, self.val_indices = stratified_split(labels, val_fraction, seed)

        images = torch.from_numpy(np.asarray(digits.images, dtype=np.float32) / _MAX_PIXEL).unsqueeze(1)
        if image_size != 8:
            images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
        train_idx = torch.from_numpy(self.train_indices)
        # Statistics come from the training split only, so validation stays unseen.
        self.mean = float(images[train_idx].mean()) if normalize else 0.0
        self.std = float(images[train_idx].std()) if normalize else 1.0

        if target == "segmentation":
            stroke = images[:, 0] > seg_threshold
            labels_t = torch.full(stroke.shape, IGNORE_INDEX, dtype=torch.int64)
            labels_t = torch.where(stroke, torch.from_numpy(labels)[:, None, None], labels_t)
        else:
            labels_t = torch.from_numpy(labels)

        images = (images - self.mean) / self.std
        if channels == 3:
            images = images.expand(-1, 3, -1, -1)
        if layout == "sequence":
            images = images.reshape(images.shape[0], channels, image_size * image_size)
        self.images = images.contiguous()
        self.labels = labels_t.contiguous()
        self.class_labels = torch.from_numpy(labels)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample without the batch dimension, e.g. ``(3, 32, 32)``."""
        return tuple(self.images.shape[1:])

    @property
    def splits(self) -> tuple[str, ...]:
        """``("train", "val")``: digits has no separate test split; its accuracies are validation accuracies."""
        return ("train", "val")

    def sample_size(self, batch: int = 1) -> list[int]:
        """``[batch, *input_shape]``, the form of an NNCF ``input_info.sample_size``."""
        return [batch, *self.input_shape]

    def indices(self, split: Split) -> np.ndarray:
        if split == "train":
            return self.train_indices
        if split == "val":
            return self.val_indices
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")

    def tensors(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        """All (images, labels) of a split, in index order."""
        idx = torch.from_numpy(self.indices(split))
        return self.images[idx], self.labels[idx]

    def _generator(self, offset: int) -> torch.Generator:
        # A fresh generator per loader: building the same loader twice gives the same order.
        return torch.Generator().manual_seed(self.seed * 1000 + offset)

    def _loader(
        self, idx: np.ndarray | Sequence[int], batch_size: int | None, shuffle: bool, drop_last: bool, offset: int
    ) -> DataLoader:
        idx_t = torch.as_tensor(np.asarray(idx), dtype=torch.int64)
        dataset = TensorDataset(self.images[idx_t], self.labels[idx_t])
        return DataLoader(
            dataset,
            batch_size=batch_size or self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            generator=self._generator(offset) if shuffle else None,
        )

    def train_loader(
        self,
        shuffle: bool = True,
        batch_size: int | None = None,
        drop_last: bool = False,
        num_samples: int | None = None,
    ) -> DataLoader:
        """Training split (or a fixed subset of ``num_samples``); each iteration reshuffles, reproducibly from ``seed``."""
        idx = self.train_indices if num_samples is None else self._subset(num_samples, "train")
        return self._loader(idx, batch_size, shuffle, drop_last, offset=1)

    def val_loader(self, batch_size: int | None = None) -> DataLoader:
        """Validation split in a fixed order."""
        return self._loader(self.val_indices, batch_size, shuffle=False, drop_last=False, offset=2)

    def test_loader(self, batch_size: int | None = None) -> DataLoader:
        """Digits has no test split (``splits``): report validation accuracies with :meth:`val_loader`."""
        raise DataError("digits has no test split (splits: train, val); its accuracies are measured on val_loader()")

    def bn_loader(self, num_samples: int | None = None, batch_size: int | None = None) -> DataLoader:
        """Training images in a fixed order for BatchNorm re-estimation (all, or a fixed subset)."""
        idx = self.train_indices if num_samples is None else self._subset(num_samples, "train")
        return self._loader(idx, batch_size, shuffle=False, drop_last=False, offset=6)

    def describe(self) -> str:
        """One line for reports: source, shaping and split sizes."""
        shape = "x".join(map(str, self.input_shape))
        return (
            f"digits: scikit-learn's bundled 1797 8x8 grey images; inputs {shape} ({self.layout}, {self.target} "
            f"targets); {len(self.train_indices)} train / {len(self.val_indices)} val images (stratified, seed {self.seed})"
        )

    def _subset(self, n: int, split: Split) -> np.ndarray:
        idx = self.indices(split)
        if not 0 < n <= len(idx):
            raise ValueError(f"n must be in [1, {len(idx)}] for split '{split}', got {n}")
        rng = np.random.default_rng(self.seed + (7 if split == "train" else 11))
        return np.sort(rng.permutation(idx)[:n])

    def calibration_loader(self, num_samples: int = 300, batch_size: int = 1) -> DataLoader:
        """A fixed, unshuffled subset of the training split for quantisation calibration.

        Batch size 1 by default because exported IRs usually have a static batch of 1.
        """
        return self._loader(self._subset(num_samples, "train"), batch_size, shuffle=False, drop_last=False, offset=3)

    def subset_loader(
        self, n: int, split: Split = "val", batch_size: int | None = None, shuffle: bool = False
    ) -> DataLoader:
        """``n`` fixed random samples of a split: cheap evaluation during search, tiny training budgets in tests."""
        return self._loader(self._subset(n, split), batch_size, shuffle, drop_last=False, offset=4)

    def __repr__(self) -> str:
        return (
            f"DigitsDataModule(image_size={self.image_size}, channels={self.channels}, layout={self.layout!r}, "
            f"target={self.target!r}, train={len(self.train_indices)}, val={len(self.val_indices)}, seed={self.seed})"
        )


def digits_loaders(shuffle: bool = True, **kwargs) -> tuple[DataLoader, DataLoader]:
    """``(train_loader, val_loader)`` of a :class:`DigitsDataModule` built from ``kwargs``."""
    dm = DigitsDataModule(**kwargs)
    return dm.train_loader(shuffle=shuffle), dm.val_loader()
