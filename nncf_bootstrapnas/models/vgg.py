"""VGG11 with batch norm for 32x32 inputs, laid out like torchvision's (``features``, ``avgpool``, ``classifier``).

The last max-pool of configuration "A" is dropped so the features end at 2x2 and the classifier flattens a spatial map
(512 * 2 * 2) into its first ``nn.Linear``: the case where channel pruning of the last conv must prune the linear's
input in groups of ``H * W``.
"""

from __future__ import annotations

import torch
from torch import nn

from nncf_bootstrapnas.models._utils import make_divisible

VGG11_CFG: list[int | str] = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512]


def make_layers(cfg: list[int | str], width: float = 1.0, in_channels: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            out = make_divisible(int(v) * width, 8)
            layers += [
                nn.Conv2d(in_channels, out, kernel_size=3, padding=1),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            in_channels = out
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(
        self,
        features: nn.Sequential,
        num_classes: int = 10,
        hidden: int = 512,
        spatial: int = 2,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.features = features
        out_channels = [m for m in features if isinstance(m, nn.Conv2d)][-1].out_channels
        self.avgpool = nn.AdaptiveAvgPool2d((spatial, spatial))  # a no-op at 32x32, as torchvision's at 224x224
        self.classifier = nn.Sequential(
            nn.Linear(out_channels * spatial * spatial, hidden),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
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


def vgg11_bn(num_classes: int = 10, width: float = 1.0, hidden: int = 512, **kwargs) -> VGG:
    return VGG(make_layers(VGG11_CFG, width), num_classes=num_classes, hidden=hidden, **kwargs)
