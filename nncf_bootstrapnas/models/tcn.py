"""Temporal convolutional network (Bai et al., 2018) classifier over 1-D sequences ``(N, C, L)``.

On digits it reads each 8x8 image raster-scanned into a 64-step, 1-channel sequence (sequential-MNIST style,
``DigitsDataModule(image_size=8, channels=1, layout="sequence")``), so the default input is ``(N, 1, 64)``.
Exercises ``Conv1d`` with dilation, ``BatchNorm1d`` and residual blocks with an optional 1x1 ``downsample``.
Padding is symmetric (``dilation * (kernel_size - 1) // 2``, non-causal): a whole-sequence classifier needs no
causality, and it keeps the length fixed without the original's ``Chomp1d`` slicing.
"""

from __future__ import annotations

import torch
from torch import nn


class TemporalBlock(nn.Module):
    def __init__(self, n_inputs: int, n_outputs: int, kernel_size: int, dilation: int, dropout: float = 0.0) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv1 = nn.Conv1d(n_inputs, n_outputs, kernel_size, padding=padding, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm1d(n_outputs)
        self.relu1 = nn.ReLU(inplace=True)
        self.dropout1 = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(n_outputs, n_outputs, kernel_size, padding=padding, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm1d(n_outputs)
        self.dropout2 = nn.Dropout(dropout)
        self.downsample = nn.Conv1d(n_inputs, n_outputs, 1) if n_inputs != n_outputs else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout1(self.relu1(self.bn1(self.conv1(x))))
        out = self.dropout2(self.bn2(self.conv2(out)))
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class TCN(nn.Module):
    """Stack of ``TemporalBlock`` with dilation ``2**i``, global average pooling over time, linear head."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        channels: tuple[int, ...] = (64, 64, 64, 64),
        kernel_size: int = 3,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd to keep the sequence length with symmetric padding")
        blocks = []
        for i, out_ch in enumerate(channels):
            blocks.append(TemporalBlock(in_channels, out_ch, kernel_size, dilation=2**i, dropout=dropout))
            in_channels = out_ch
        self.network = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.network(x)
        x = self.pool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


def tcn(num_classes: int = 10, channels: tuple[int, ...] = (64, 64, 64, 64), **kwargs) -> TCN:
    return TCN(num_classes=num_classes, channels=tuple(channels), **kwargs)
