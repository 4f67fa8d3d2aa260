"""UNet for 32x32 inputs: per-pixel logits ``(N, num_classes, H, W)``.

Exercises encoder/decoder skip connections concatenated along channels (``torch.cat([skip, up], 1)``) and
``ConvTranspose2d`` upsampling. Input height and width must be divisible by ``2 ** depth`` (no padding fix-ups).
On digits it is trained with ``DigitsDataModule(target="segmentation")``: every stroke pixel is labelled with the digit.
"""

from __future__ import annotations

import torch
from torch import nn


class DoubleConv(nn.Sequential):
    """(Conv3x3 -> BN -> ReLU) x 2."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None) -> None:
        mid = mid_channels or out_channels
        super().__init__(
            nn.Conv2d(in_channels, mid, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))


class Up(nn.Module):
    """2x transposed-conv upsampling, concatenation with the encoder's skip, then a double conv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels // 2 + out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        x = torch.cat([skip, x], dim=1)
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, base_channels: int = 32, depth: int = 3) -> None:
        super().__init__()
        chs = [base_channels * 2**i for i in range(depth + 1)]
        self.inc = DoubleConv(in_channels, chs[0])
        self.downs = nn.ModuleList(Down(chs[i], chs[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(Up(chs[i + 1], chs[i]) for i in reversed(range(depth)))
        self.outc = nn.Conv2d(chs[0], num_classes, kernel_size=1)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inc(x)
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck output is x itself
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)


def unet(num_classes: int = 10, base_channels: int = 32, depth: int = 3, **kwargs) -> UNet:
    return UNet(num_classes=num_classes, base_channels=base_channels, depth=depth, **kwargs)
