"""Layers as they are written in the wild: subclasses with their own ``forward`` that call functionals on their own
parameters, per-channel parameters and buffers in elementwise ops, a parameter in ``cat``. Each tiny model must get
elastic variables and pass ``check_supernet``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nncf_bootstrapnas.elasticity import SuperNetwork, create_supernet
from nncf_bootstrapnas.graph.macs import count_macs

pytestmark = pytest.mark.usefixtures("one_thread")
OPTIONS = {"width": {"min_width": 1, "width_multipliers": [1.0, 0.5]}, "kernel": {}}


def _flat(out) -> list[torch.Tensor]:  # noqa: ANN001
    return list(out) if isinstance(out, (tuple, list)) else [out]


def check_supernet(model: nn.Module, x, options=OPTIONS, samples: int = 3, kwargs=None) -> SuperNetwork:  # noqa: ANN001
    """Max == original exactly; for min, max and random subnets the extracted model equals the supernet, its MACs
    and parameters are the supernet's count; the supernet and the extracted model run a train-mode step."""
    args = x if isinstance(x, tuple) else (x,)
    kwargs = kwargs or {}
    model.eval()
    sn = create_supernet(model, options, example_input=args, example_kwargs=kwargs).eval()
    with torch.no_grad():
        for a, b in zip(_flat(sn(*args, **kwargs)), _flat(model(*args, **kwargs))):
            assert torch.equal(a, b), "maximum subnet differs from the original"
    space = sn.search_space
    rng = np.random.default_rng(0)
    for cfg in [space.maximum(), space.minimum()] + [space.sample(rng) for _ in range(samples)]:
        sn.activate(cfg)
        sub = sn.extract().eval()
        with torch.no_grad():
            for a, b in zip(_flat(sub(*args, **kwargs)), _flat(sn(*args, **kwargs))):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        assert sn.macs() == count_macs(sub, *args), f"MACs differ at {cfg}"
        assert sn.params() == sum(p.numel() for p in sub.parameters()), f"parameters differ at {cfg}"
        assert not any("_bnas" in vars(m) for m in sub.modules()), "elastic state left in the extracted model"
        if cfg != space.maximum():
            _train_step(sn, args, kwargs)
            _train_step(sub, args, kwargs)
    sn.activate(None)
    return sn


def _train_step(model: nn.Module, args: tuple, kwargs: dict) -> None:
    model.train()
    loss = sum(t.float().square().mean() for t in _flat(model(*args, **kwargs)))
    loss.backward()
    model.zero_grad(set_to_none=True)
    model.eval()


def widths(sn: SuperNetwork) -> dict[str, tuple[int, ...]]:
    return {v.key: v.choices for v in sn.search_space.variables if v.dim == "width"}


def kernels(sn: SuperNetwork) -> dict[str, tuple[int, ...]]:
    return {v.key: v.choices for v in sn.search_space.variables if v.dim == "kernel"}


# ---- subclassed layers -------------------------------------------------------------------------------------------------
class BatchNormAct2d(nn.BatchNorm2d):
    """timm's BatchNormAct2d: its own forward calls F.batch_norm, then the activation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training, factor,
                         self.eps)  # fmt: skip
        return F.relu(x)


class StaticSamePadConv(nn.Conv2d):
    """EfficientNet-Lite's Conv2dStaticSamePadding: TF 'same' padding computed at construction, in a child."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, image_size: int = 8, **kw) -> None:
        super().__init__(cin, cout, k, stride, **kw)
        out = math.ceil(image_size / stride)
        pad = max((out - 1) * stride + k - image_size, 0)
        self.static_padding = nn.ZeroPad2d((pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.static_padding(x), self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)  # fmt: skip


class DynamicSamePadConv(nn.Conv2d):
    """timm's Conv2dSame: the padding is computed from ``kernel_size`` on every call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = [(k - 1) // 2 for k in self.kernel_size for _ in range(2)]
        return F.conv2d(F.pad(x, pad), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class StdConv2d(nn.Conv2d):
    """Weight standardisation (BiT / NF-Nets): F.batch_norm over the weight, then F.conv2d; with a per-channel gain."""

    def __init__(self, *args, **kw) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kw)
        self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1) * 1.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None, weight=self.gain.view(-1),
                         training=True, momentum=0.0, eps=1e-5).reshape_as(self.weight)  # fmt: skip
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of NCHW (ConvNeXt)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2)  # fmt: skip


class GroupNormAct(nn.GroupNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps))


class ScaledLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * 0.5, self.bias)


class SubclassedCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = StaticSamePadConv(3, 8, 3, stride=2)
        self.bn = BatchNormAct2d(8)
        self.dw = StaticSamePadConv(8, 8, 5, groups=8, image_size=4, bias=False)
        self.dyn = DynamicSamePadConv(8, 8, 5, groups=8)
        self.std = StdConv2d(8, 12, 3, padding=1)
        self.ln = LayerNorm2d(12)
        self.pw = nn.Conv2d(12, 8, 1)
        self.gn = GroupNormAct(4, 8)
        self.fc = ScaledLinear(8, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dyn(self.dw(self.bn(self.stem(x))))
        x = self.gn(self.pw(self.ln(self.std(x))))
        return self.head(F.relu(self.fc(x.mean((2, 3)))))


def test_subclassed_layers_become_elastic_and_extract_to_their_own_classes() -> None:
    torch.manual_seed(0)
    sn = check_supernet(SubclassedCNN(), torch.randn(2, 3, 8, 8))
    assert widths(sn) == {"stem": (8, 4), "std": (12, 6), "pw": (8, 4), "fc": (6, 3)}  # gn: whole groups of 2
    assert kernels(sn) == {"dw": (5, 3), "dyn": (5, 3)}
    plans = sn.kernel_plans
    assert plans["dw"].mode == "pad_child" and plans["dyn"].mode == "dynamic"
    sn.activate(sn.search_space.minimum())
    sub = sn.extract()
    assert type(sub.stem) is StaticSamePadConv and type(sub.bn) is BatchNormAct2d and type(sub.std) is StdConv2d
    assert sub.dw.weight.shape == (4, 1, 3, 3) and sub.dw.groups == 4 and sub.dw.static_padding.padding == (1, 1, 1, 1)
    assert sub.dyn.kernel_size == (3, 3) and sub.std.gain.shape == (6, 1, 1, 1)
    assert sub.ln.normalized_shape == (6,) and sub.gn.num_groups == 2 and sub.fc.in_features == 4
    assert set(sn.model.state_dict()) >= set(SubclassedCNN().state_dict())  # names unchanged (+ kernel transforms)


class PerChannel(nn.Module):
    """Layer scale (NCHW and NHWC), a fixed scale buffer, and a parameter concatenated with two convolutions."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.gamma = nn.Parameter(torch.rand(8))
        self.register_buffer("scale", torch.rand(1, 8, 1, 1) + 0.5)
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 8)
        self.gamma2 = nn.Parameter(torch.rand(8))
        self.c = nn.Conv2d(8, 4, 1)
        self.d = nn.Conv2d(8, 6, 1)
        self.extra = nn.Parameter(torch.randn(1, 2, 1, 1))
        self.head = nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        y = y + self.b(y) * self.gamma[:, None, None]
        y = (y * self.scale).permute(0, 2, 3, 1)
        y = (y + self.fc2(F.gelu(self.fc1(y))) * self.gamma2).permute(0, 3, 1, 2)  # NHWC block with layer scale
        n, _, h, w = y.shape
        y = torch.cat([self.c(y), self.d(y), self.extra.expand(n, -1, h, w)], 1)
        return self.head(y.mean((2, 3)) + self.gamma2.sum() * 0)  # a parameter reduced to a scalar: never sliced


def test_per_channel_parameters_and_buffers_are_sliced_with_their_group() -> None:
    torch.manual_seed(0)
    sn = check_supernet(PerChannel(), torch.randn(2, 3, 6, 6))
    assert set(widths(sn)) == {"a", "fc1", "c", "d"}  # b and fc2 share a's group through the adds
    sn.activate({"width": {"a": 4, "c": 2, "d": 3}})
    sub = sn.extract()
    assert sub.gamma.shape == (4,) and sub.scale.shape == (1, 4, 1, 1) and sub.gamma2.shape == (4,)
    assert sub.extra.shape == (1, 2, 1, 1) and sub.head.in_features == 7


class DenseBN(nn.Module):
    """A norm after a concat: its active channels are not a prefix (training must write its statistics back)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bn(torch.cat([self.a(x), self.b(x)], 1)))


def test_batch_norm_statistics_through_a_non_prefix_index_are_written_back() -> None:
    torch.manual_seed(0)
    sn = create_supernet(DenseBN(), OPTIONS, example_input=torch.randn(1, 3, 4, 4))
    sn.activate({"width": {"a": 2, "b": 2}})
    before = sn.model.bn.running_mean.clone()
    sn.train()
    x = torch.randn(4, 3, 4, 4)
    with torch.no_grad():
        sn(x)
        features = torch.cat([sn.model.a(x)[:, :2], sn.model.b(x)[:, :2]], 1)
    kept = torch.tensor([0, 1, 4, 5])
    expected = 0.9 * before[kept] + 0.1 * features.mean((0, 2, 3))
    torch.testing.assert_close(sn.model.bn.running_mean[kept], expected)
    untouched = torch.tensor([2, 3, 6, 7])
    assert torch.equal(sn.model.bn.running_mean[untouched], before[untouched])
