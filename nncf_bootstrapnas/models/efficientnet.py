"""EfficientNet-B0 for 32x32 inputs, laid out like torchvision's (``features`` of stages of ``MBConv``).

Exercises SiLU, SE with sigmoid, 3x3 and 5x5 depthwise convolutions and stochastic depth (its own module, identity in
eval). CIFAR adaptation: stride-1 stem, so 32x32 inputs end at a 2x2 feature map (``stem_stride=2``: ImageNet's stem,
1x1 at the end, 4x cheaper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from nncf_bootstrapnas.models._utils import make_divisible


@dataclass(frozen=True)
class MBConvConfig:
    expand_ratio: int
    kernel: int
    stride: int
    input_channels: int
    out_channels: int
    num_layers: int


B0_SETTING = [
    MBConvConfig(1, 3, 1, 32, 16, 1),
    MBConvConfig(6, 3, 2, 16, 24, 2),
    MBConvConfig(6, 5, 2, 24, 40, 2),
    MBConvConfig(6, 3, 2, 40, 80, 3),
    MBConvConfig(6, 5, 1, 80, 112, 3),
    MBConvConfig(6, 5, 2, 112, 192, 4),
    MBConvConfig(6, 3, 1, 192, 320, 1),
]


class StochasticDepth(nn.Module):
    """Drops the whole residual branch of random samples while training ("row" mode); identity in eval."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = torch.empty([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device)
        noise = noise.bernoulli_(survival).div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ConvBNAct(nn.Sequential):
    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        activation: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_planes),
        ]
        if activation:
            layers.append(nn.SiLU(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, input_channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = nn.SiLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class MBConv(nn.Module):
    def __init__(
        self, expand_ratio: int, kernel: int, stride: int, in_ch: int, out_ch: int, stochastic_depth_prob: float
    ) -> None:
        super().__init__()
        self.use_res_connect = stride == 1 and in_ch == out_ch
        expanded = make_divisible(in_ch * expand_ratio, 8)
        layers: list[nn.Module] = []
        if expanded != in_ch:
            layers.append(ConvBNAct(in_ch, expanded, kernel_size=1))
        layers.append(ConvBNAct(expanded, expanded, kernel, stride, groups=expanded))
        layers.append(SqueezeExcitation(expanded, max(1, in_ch // 4)))
        layers.append(ConvBNAct(expanded, out_ch, kernel_size=1, activation=False))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob)
        self.out_channels = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.block(x)
        if self.use_res_connect:
            result = self.stochastic_depth(result)
            result += x
        return result


class EfficientNet(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        setting: list[MBConvConfig] | None = None,
        stochastic_depth_prob: float = 0.2,
        dropout: float = 0.2,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        configs = [
            MBConvConfig(
                c.expand_ratio,
                c.kernel,
                c.stride,
                make_divisible(c.input_channels * width_mult, 8),
                make_divisible(c.out_channels * width_mult, 8),
                int(math.ceil(c.num_layers * depth_mult)),
            )
            for c in (setting or B0_SETTING)
        ]
        layers: list[nn.Module] = [ConvBNAct(3, configs[0].input_channels, 3, stride=stem_stride)]
        total_blocks = sum(c.num_layers for c in configs)
        block_id = 0
        for cnf in configs:
            stage: list[nn.Module] = []
            in_ch = cnf.input_channels
            for i in range(cnf.num_layers):
                sd_prob = stochastic_depth_prob * block_id / total_blocks  # deeper blocks are dropped more often
                stride = cnf.stride if i == 0 else 1
                stage.append(MBConv(cnf.expand_ratio, cnf.kernel, stride, in_ch, cnf.out_channels, sd_prob))
                in_ch = cnf.out_channels
                block_id += 1
            layers.append(nn.Sequential(*stage))
        last_in = configs[-1].out_channels
        last_out = 4 * last_in
        layers.append(ConvBNAct(last_in, last_out, kernel_size=1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(last_out, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                init_range = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -init_range, init_range)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def efficientnet_b0(num_classes: int = 10, width_mult: float = 1.0, depth_mult: float = 1.0, **kwargs) -> EfficientNet:
    return EfficientNet(num_classes=num_classes, width_mult=width_mult, depth_mult=depth_mult, **kwargs)
