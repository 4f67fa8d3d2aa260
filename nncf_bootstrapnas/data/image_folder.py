"""A user's own images: one sub-folder per class (torchvision's ImageFolder convention), decoded with PIL on access.

Layouts (``DIR`` is the folder given):

- ``DIR/<class>/<image>``: one folder, split into train / val by a seeded stratified split (``val_fraction``);
- ``DIR/train/<class>/...`` with ``DIR/val/<class>/...`` (an explicit validation split) or without it (split as
  above), and optionally ``DIR/test/<class>/...`` for the accuracy to report.

Classes are the sub-folder names, sorted (label ``i`` is the ``i``-th name). Images are resized so that the shorter
side is ``image_size``, then centre-cropped square; they are decoded when a batch needs them (``cache=True`` keeps the
decoded uint8 images of small sets in memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from nncf_bootstrapnas.data.base import PooledDataModule
from nncf_bootstrapnas.data.errors import DataError, DataNotFoundError
from nncf_bootstrapnas.data.shaping import (
    channel_statistics,
    check_image_size,
    imagenet_statistics,
    resolve_normalization,
)
from nncf_bootstrapnas.data.splits import fixed_subset, stratified_split

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
SPLIT_FOLDERS = ("train", "val", "test")
_MODES = {1: "L", 3: "RGB"}
_SHOWN = 5  # offending files named in an error


def _visible(path: Path, top: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(top).parts)


def scan_class_folders(
    folder: Path, extensions: Sequence[str] = IMG_EXTENSIONS
) -> tuple[list[str], list[Path], list[int]]:
    """``(class_names, image_paths, labels)`` of ``folder/<class>/**/<image>``, classes and files sorted.

    Hidden files and folders (``.name``) are skipped; any other file must have one of ``extensions``.
    """
    if not folder.is_dir():
        raise DataNotFoundError(f"image folder {folder} does not exist (expected {folder}/<class>/<image>)")
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(
            f"{folder}: no class folders; put the images of each class in its own sub-folder: {folder}/<class>/<image>"
        )
    allowed = tuple(e.lower() for e in extensions)
    paths, labels, unknown, empty = [], [], [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (folder / name).rglob("*") if p.is_file() and _visible(p, folder))
        unknown += [p for p in files if p.suffix.lower() not in allowed]
        images = [p for p in files if p.suffix.lower() in allowed]
        if not images:
            empty.append(name)
        paths += images
        labels += [label] * len(images)
    if unknown:
        shown = ", ".join(str(p) for p in unknown[:_SHOWN]) + (
            f" and {len(unknown) - _SHOWN} more" if len(unknown) > _SHOWN else ""
        )
        raise DataError(f"{folder}: files with an unknown extension: {shown}; allowed: {' '.join(allowed)}")
    if empty:
        raise DataError(f"{folder}: class folder(s) without images: {', '.join(empty)}; remove them or add images")
    return classes, paths, labels


def _is_split_layout(root: Path) -> bool:
    subdirs = {d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")}
    return "train" in subdirs and subdirs <= set(SPLIT_FOLDERS)


class ImageFolderDataModule(PooledDataModule):
    """Images in class sub-folders, with the same loaders as every data module.

    Args:
        root: ``DIR`` (see the module docstring for the layouts).
        image_size: model input size; images are resized (shorter side) and centre-cropped to it.
        channels: 3 (RGB) or 1 (grey); PIL converts every image.
        val_fraction: share of every class held out for validation when there is no ``val/`` folder.
        normalize: ``True``/``"dataset"`` (per-channel mean/std of ``stats_samples`` fixed training images),
            ``"imagenet"`` (for ImageNet-pretrained models), or ``False``/``"none"``.
        augment: random crop (``image_size // 8`` padding) and horizontal flip in :meth:`train_loader`.
        cache: keep decoded images in memory (``N * channels * image_size**2`` bytes): for small sets only.
        extensions: allowed image file extensions (lower case, with the dot).
    """

    name = "image folder"

    def __init__(
        self,
        root: str | Path,
        image_size: int = 32,
        channels: int = 3,
        val_fraction: float = 0.2,
        seed: int = 0,
        batch_size: int = 64,
        normalize: bool | str = True,
        augment: bool = False,
        cache: bool = False,
        stats_samples: int = 500,
        extensions: Sequence[str] = IMG_EXTENSIONS,
        num_workers: int = 0,
    ) -> None:
        check_image_size(image_size)
        if channels not in _MODES:
            raise DataError(f"channels must be 1 (grey) or 3 (RGB) for an image folder, got {channels!r}")
        normalization = resolve_normalization(normalize)
        if not 0.0 < val_fraction < 1.0:
            raise DataError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataNotFoundError(
                f"image folder {self.root} does not exist; expected {self.root}/<class>/<image> or "
                f"{self.root}/train/<class>/<image> (+ {self.root}/val/<class>/<image>)"
            )
        self.image_size, self.channels = image_size, channels  # _decode needs them before _init_api
        self.cache = {} if cache else None
        classes, splits = self._scan(val_fraction, seed, tuple(extensions))
        mean, std = self._statistics(normalization, splits["train"], stats_samples, seed)
        self.normalization = normalization
        super()._init_api(
            self.labels, splits, classes, image_size, channels, batch_size, seed, augment, mean, std, num_workers
        )

    def _scan(self, val_fraction: float, seed: int, extensions: tuple[str, ...]) -> tuple[list[str], dict]:
        """Fill the pool (``paths``, ``labels``) and return the class names and the split indices into it."""
        split_layout = _is_split_layout(self.root)
        top = self.root / "train" if split_layout else self.root
        classes, paths, labels = scan_class_folders(top, extensions)
        parts = {"train": (paths, labels)}
        for split in ("val", "test"):
            folder = self.root / split
            if split_layout and folder.is_dir():
                other, other_paths, other_labels = scan_class_folders(folder, extensions)
                if other != classes:
                    raise DataError(
                        f"{folder}: classes {other} differ from the training classes {classes} in {top}; "
                        "every split folder needs the same class sub-folders"
                    )
                parts[split] = (other_paths, other_labels)
        self.layout = " + ".join(f"{split}/" for split in parts) + " folders" if split_layout else "one folder"
        if "val" not in parts:
            self.layout += f", val split off by class (val_fraction {val_fraction})"
        self.paths = [p for split_paths, _ in parts.values() for p in split_paths]
        self.labels = torch.tensor([y for _, split_labels in parts.values() for y in split_labels], dtype=torch.int64)
        splits, start = {}, 0
        for split, (split_paths, _) in parts.items():
            splits[split] = np.arange(start, start + len(split_paths))
            start += len(split_paths)
        if "val" not in splits:
            train_pos, val_pos = stratified_split(self.labels.numpy()[splits["train"]], val_fraction, seed)
            if len(val_pos) == 0 or len(train_pos) == 0:
                raise DataError(f"{top}: too few images to split off a validation share of {val_fraction}")
            splits["train"], splits["val"] = splits["train"][train_pos], splits["train"][val_pos]
        return classes, {s: splits[s] for s in SPLIT_FOLDERS if s in splits}

    def _statistics(
        self, normalization: str, train_idx: np.ndarray, stats_samples: int, seed: int
    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if normalization == "imagenet":
            return imagenet_statistics(self.channels)
        if normalization == "none":
            return (0.0,) * self.channels, (1.0,) * self.channels
        sample = fixed_subset(train_idx, min(int(stats_samples), len(train_idx)), seed + 17)
        return channel_statistics(self._fetch(torch.from_numpy(sample)))

    def _decode(self, i: int) -> torch.Tensor:
        """Image ``i`` of the pool as uint8 ``(channels, image_size, image_size)``."""
        from PIL import Image  # imported on use: Pillow comes with matplotlib

        path, size = self.paths[i], self.image_size
        try:
            with Image.open(path) as img:
                img = img.convert(_MODES[self.channels])
                scale = size / min(img.size)
                w, h = max(size, round(img.width * scale)), max(size, round(img.height * scale))
                img = img.resize((w, h), Image.Resampling.BILINEAR)
                left, top = (w - size) // 2, (h - size) // 2
                array = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"{path}: cannot decode the image ({exc}); replace or remove it") from None
        tensor = torch.from_numpy(array.copy())
        return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()

    def _image(self, i: int) -> torch.Tensor:
        if self.cache is None:
            return self._decode(i)
        if i not in self.cache:
            self.cache[i] = self._decode(i)
        return self.cache[i]

    def _fetch(self, idx: torch.Tensor) -> torch.Tensor:
        return torch.stack([self._image(i) for i in idx.tolist()])

    def _source_note(self) -> str:
        return f"{self.root} ({self.layout}; {self.num_classes} classes: {', '.join(self.class_names[:10])}" + (
            ", ...)" if self.num_classes > 10 else ")"
        )
