"""Batch-wise input shaping: uint8 images -> float model inputs (resize, channels, augmentation, normalisation).

Why per batch on tensors: resizing a batch with ``F.interpolate`` costs a fraction of per-image PIL transforms, which
matters on 2 CPU cores; the stored images stay uint8 at their native size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from nncf_bootstrapnas.data.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# One grey channel under ImageNet normalisation: the mean of the RGB statistics.
IMAGENET_GREY_MEAN = (sum(IMAGENET_MEAN) / 3,)
IMAGENET_GREY_STD = (sum(IMAGENET_STD) / 3,)
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024
_MIN_STD = 1e-6

Normalization = Literal["dataset", "imagenet", "none"]


def resolve_normalization(normalize: bool | str) -> Normalization:
    """``True`` -> ``"dataset"``, ``False`` -> ``"none"``; strings are checked against the allowed names."""
    if normalize is True:
        return "dataset"
    if normalize is False:
        return "none"
    if normalize in ("dataset", "imagenet", "none"):
        return normalize  # type: ignore[return-value]
    raise DataError(f"normalize must be True, False, 'dataset', 'imagenet' or 'none', got {normalize!r}")


def check_image_size(image_size: int) -> int:
    if not isinstance(image_size, int) or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise DataError(f"image_size must be an int in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}], got {image_size!r}")
    return image_size


def imagenet_statistics(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """ImageNet mean/std for ``channels`` (3: RGB; 1 or a grey image repeated: the grey equivalent)."""
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    return IMAGENET_GREY_MEAN * channels, IMAGENET_GREY_STD * channels


def channel_statistics(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std (unbiased, like ``torch.std``) of uint8 ``(N, C, H, W)`` images scaled to 0..1.

    From a 256-bin histogram per channel: exact, and no float copy of 60 000 images. A constant channel gets std 1.
    """
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        counts = torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)
        n = float(counts.sum())
        mean = float((counts * values).sum() / n)
        means.append(mean)
        stds.append(float(((counts * (values - mean) ** 2).sum() / max(n - 1.0, 1.0)).sqrt()))
    # A constant channel is centred but not scaled (no division by zero).
    return tuple(means), tuple(s if s > _MIN_STD else 1.0 for s in stds)


class BatchShaper:
    """uint8 ``(N, C_in, H, W)`` -> float32 ``(N, channels, image_size, image_size)``.

    Steps, in order: scale to 0..1, resize (bilinear; antialiased when shrinking), augment (optional: random crop with
    ``image_size // 8`` zero padding, horizontal flip), repeat a grey channel to ``channels``, normalise.

    Args:
        mean, std: per output channel, in the 0..1 scale (``(0,)``/``(1,)`` broadcast for no normalisation).
        augment: random crop + flip, drawn from ``generator`` (a fresh seeded one per training loader).
    """

    def __init__(
        self,
        image_size: int,
        channels: int,
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        self.image_size = image_size
        self.channels = channels
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.augment = augment
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(torch.float32).div_(255.0)
        size = self.image_size
        if x.shape[-2:] != (size, size):
            shrink = x.shape[-1] > size or x.shape[-2] > size
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
        if self.augment:  # before the channel repeat: a grey image is cropped once, not per channel
            x = self._random_crop_and_flip(x)
        if x.shape[1] != self.channels:
            if x.shape[1] != 1:
                raise DataError(f"cannot turn {x.shape[1]}-channel images into {self.channels} channels")
            x = x.expand(-1, self.channels, -1, -1)
        return ((x - self.mean) / self.std).contiguous()

    def _random_crop_and_flip(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        pad = max(1, self.image_size // 8)
        padded = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=self.generator).tolist()
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=self.generator).tolist()
        flip = (torch.rand(n, generator=self.generator) < 0.5).tolist()
        out = torch.empty_like(x)
        for i in range(n):  # slices per image: faster than one gather for large images, as fast for small ones
            crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
            out[i] = crop.flip(-1) if flip[i] else crop
        return out
