"""MobileNetV3-Small for 32x32 inputs, laid out like torchvision's.

Exercises squeeze-and-excitation (``scale * x`` with hard-sigmoid), hard-swish and 5x5 depthwise convolutions.
CIFAR adaptation: stride-1 stem, so 32x32 inputs end at a 2x2 feature map.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nncf_bootstrapnas.models._utils import make_divisible


@dataclass(frozen=True)
class BlockConfig:
    input_channels: int
    kernel: int
    expanded_channels: int
    out_channels: int
    use_se: bool
    use_hs: bool  # hard-swish, else ReLU
    stride: int

    def scaled(self, width_mult: float) -> BlockConfig:
        def adjust(c: int) -> int:
            return make_divisible(c * width_mult, 8)

        return BlockConfig(
            adjust(self.input_channels),
            self.kernel,
            adjust(self.expanded_channels),
            adjust(self.out_channels),
            self.use_se,
            self.use_hs,
            self.stride,
        )


SMALL_SETTING = [
    BlockConfig(16, 3, 16, 16, True, False, 2),
    BlockConfig(16, 3, 72, 24, False, False, 2),
    BlockConfig(24, 3, 88, 24, False, False, 1),
    BlockConfig(24, 5, 96, 40, True, True, 2),
    BlockConfig(40, 5, 240, 40, True, True, 1),
    BlockConfig(40, 5, 240, 40, True, True, 1),
    BlockConfig(40, 5, 120, 48, True, True, 1),
    BlockConfig(48, 5, 144, 48, True, True, 1),
    BlockConfig(48, 5, 288, 96, True, True, 2),
    BlockConfig(96, 5, 576, 96, True, True, 1),
    BlockConfig(96, 5, 576, 96, True, True, 1),
]


class ConvBNActivation(nn.Sequential):
    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        activation: type[nn.Module] | None = nn.Hardswish,
    ) -> None:
        padding = (kernel_size - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_planes, eps=0.001, momentum=0.01),
        ]
        if activation is not None:
            layers.append(activation(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Channel attention: global pool -> 1x1 reduce -> ReLU -> 1x1 expand -> hard-sigmoid, then ``scale * x``."""

    def __init__(self, input_channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class InvertedResidual(nn.Module):
    def __init__(self, cnf: BlockConfig) -> None:
        super().__init__()
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        act = nn.Hardswish if cnf.use_hs else nn.ReLU
        layers: list[nn.Module] = []
        if cnf.expanded_channels != cnf.input_channels:
            layers.append(ConvBNActivation(cnf.input_channels, cnf.expanded_channels, 1, activation=act))
        layers.append(
            ConvBNActivation(
                cnf.expanded_channels,
                cnf.expanded_channels,
                cnf.kernel,
                cnf.stride,
                groups=cnf.expanded_channels,
                activation=act,
            )
        )
        if cnf.use_se:
            layers.append(SqueezeExcitation(cnf.expanded_channels, make_divisible(cnf.expanded_channels // 4, 8)))
        layers.append(ConvBNActivation(cnf.expanded_channels, cnf.out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = cnf.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.block(x)
        if self.use_res_connect:
            result += x
        return result


class MobileNetV3(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        width_mult: float = 1.0,
        setting: list[BlockConfig] | None = None,
        last_channel: int = 1024,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        configs = [c.scaled(width_mult) for c in (setting or SMALL_SETTING)]
        layers: list[nn.Module] = [ConvBNActivation(3, configs[0].input_channels, 3, stride=1)]
        layers += [InvertedResidual(c) for c in configs]
        last_conv_in = configs[-1].out_channels
        last_conv_out = 6 * last_conv_in
        layers.append(ConvBNActivation(last_conv_in, last_conv_out, 1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        last_channel = make_divisible(last_channel * width_mult, 8)
        self.classifier = nn.Sequential(
            nn.Linear(last_conv_out, last_channel),
            nn.Hardswish(inplace=True),
            nn.Dropout(p=dropout, inplace=True),
            nn.Linear(last_channel, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def mobilenet_v3(num_classes: int = 10, width_mult: float = 1.0, **kwargs) -> MobileNetV3:
    return MobileNetV3(num_classes=num_classes, width_mult=width_mult, **kwargs)
