"""Elastic layers, Once-for-All style: the user's own module objects with their class swapped to a subclass.

Parameter names and shapes stay those of the original model, so checkpoints load unchanged. The active sub-layer is
set by the super-network (``ElasticState``) and applied in ``forward`` by slicing; at full size ``forward`` is the
original code path. ``to_static()`` returns a plain, physically smaller torch module with the same output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

Index = slice | torch.Tensor | None


@dataclass
class ElasticState:
    """What the active subnet keeps of one layer (set by ``SuperNetwork.activate``)."""

    out_index: Index = None  # output channels kept (producers)
    in_index: Index = None  # input channels kept (consumers)
    channel_index: Index = None  # channels kept by channelwise layers (BN, LayerNorm, depthwise conv)
    kernel: int | None = None  # active kernel size (elastic-kernel convolutions)

    def is_full(self, max_kernel: int | None = None) -> bool:
        return (
            self.out_index is None
            and self.in_index is None
            and self.channel_index is None
            and (self.kernel is None or self.kernel == max_kernel)
        )


def _take(t: torch.Tensor | None, dim: int, index: Index) -> torch.Tensor | None:
    if t is None or index is None:
        return t
    if isinstance(index, slice):
        return t.narrow(dim, index.start, index.stop - index.start)
    return t.index_select(dim, index)


def index_len(index: Index, full: int) -> int:
    if index is None:
        return full
    if isinstance(index, slice):
        return index.stop - index.start
    return int(index.numel())


class _ElasticConvMixin:
    """Elastic width (in/out or channelwise) and elastic kernel for Conv1d/2d/3d and ConvTranspose (width only)."""

    _bnas: ElasticState
    kernel_choices: tuple[int, ...] = ()

    def setup_elastic(self, kernel_choices: tuple[int, ...] = ()) -> None:
        self._bnas = ElasticState()
        self.kernel_choices = tuple(kernel_choices)
        for small, large in zip(kernel_choices[1:], kernel_choices[:-1]):
            n = small ** len(self.kernel_size)
            name = f"kernel_transform_{large}to{small}"
            if not hasattr(self, name):
                self.register_parameter(name, nn.Parameter(torch.eye(n, dtype=self.weight.dtype)))

    @property
    def max_kernel(self) -> int | None:
        return self.kernel_choices[0] if self.kernel_choices else None

    def kernel_weight(self, kernel: int) -> torch.Tensor:
        """Centre-crop chain from the largest kernel, each step through its learnable transform matrix."""
        weight = self.weight
        for small, large in zip(self.kernel_choices[1:], self.kernel_choices[:-1]):
            if large <= kernel:
                continue
            start = (large - small) // 2
            for d in range(2, weight.dim()):
                weight = weight.narrow(d, start, small)
            shape = weight.shape
            matrix = getattr(self, f"kernel_transform_{large}to{small}")
            weight = (weight.reshape(-1, matrix.shape[0]) @ matrix.t()).reshape(shape)
            if small == kernel:
                break
        return weight

    def active_padding(self, kernel: int | None):  # noqa: ANN201
        if kernel is None or kernel == self.max_kernel or isinstance(self.padding, str):
            return self.padding
        shrink = (self.max_kernel - kernel) // 2
        return tuple(p - shrink * d for p, d in zip(self.padding, self.dilation))

    def active_parts(self) -> tuple[torch.Tensor, torch.Tensor | None, object, int]:
        s = self._bnas
        transposed = isinstance(self, nn.modules.conv._ConvTransposeNd)
        weight = self.weight if s.kernel in (None, self.max_kernel) else self.kernel_weight(s.kernel)
        bias = self.bias
        groups = self.groups
        out_dim, in_dim = (1, 0) if transposed else (0, 1)
        if s.channel_index is not None:  # depthwise: channels in = channels out
            weight = _take(weight, 0, s.channel_index)
            bias = _take(bias, 0, s.channel_index)
            groups = index_len(s.channel_index, self.groups)
        weight = _take(weight, out_dim, s.out_index)
        bias = _take(bias, 0, s.out_index)
        weight = _take(weight, in_dim, s.in_index)
        return weight, bias, self.active_padding(s.kernel), groups

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:  # noqa: ANN002, ANN003
        if self._bnas.is_full(self.max_kernel):
            return super().forward(x, *args, **kwargs)
        weight, bias, padding, groups = self.active_parts()
        nd = len(self.kernel_size)
        if isinstance(self, nn.modules.conv._ConvTransposeNd):
            fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[nd - 1]
            return fn(x, weight, bias, self.stride, padding, self.output_padding, groups, self.dilation)
        fn = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
        if self.padding_mode != "zeros":
            pads = [p for p in reversed(padding) for _ in range(2)]
            x = F.pad(x, pads, mode=self.padding_mode)
            padding = 0
        return fn(x, weight, bias, self.stride, padding, self.dilation, groups)

    @torch.no_grad()
    def to_static(self) -> nn.Module:
        weight, bias, padding, groups = self.active_parts()
        transposed = isinstance(self, nn.modules.conv._ConvTransposeNd)
        base = type(self).__mro__[2]
        kernel = tuple(weight.shape[2:])
        if transposed:
            in_ch, out_ch = weight.shape[0], weight.shape[1] * groups
            static = base(in_ch, out_ch, kernel, self.stride, padding, self.output_padding, groups,
                          bias is not None, self.dilation, self.padding_mode)  # fmt: skip
        else:
            in_ch, out_ch = weight.shape[1] * groups, weight.shape[0]
            static = base(in_ch, out_ch, kernel, self.stride, padding, self.dilation, groups, bias is not None,
                          self.padding_mode)  # fmt: skip
        static.weight.copy_(weight)
        if bias is not None:
            static.bias.copy_(bias)
        return static.to(self.weight.device).train(self.training)


class ElasticConv1d(_ElasticConvMixin, nn.Conv1d):
    pass


class ElasticConv2d(_ElasticConvMixin, nn.Conv2d):
    pass


class ElasticConv3d(_ElasticConvMixin, nn.Conv3d):
    pass


class ElasticConvTranspose1d(_ElasticConvMixin, nn.ConvTranspose1d):
    pass


class ElasticConvTranspose2d(_ElasticConvMixin, nn.ConvTranspose2d):
    pass


class ElasticConvTranspose3d(_ElasticConvMixin, nn.ConvTranspose3d):
    pass


class ElasticLinear(nn.Linear):
    _bnas: ElasticState

    def setup_elastic(self) -> None:
        self._bnas = ElasticState()

    def active_parts(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        s = self._bnas
        weight = _take(_take(self.weight, 0, s.out_index), 1, s.in_index)
        return weight, _take(self.bias, 0, s.out_index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._bnas.is_full():
            return super().forward(x)
        return F.linear(x, *self.active_parts())

    @torch.no_grad()
    def to_static(self) -> nn.Module:
        weight, bias = self.active_parts()
        static = nn.Linear(weight.shape[1], weight.shape[0], bias is not None)
        static.weight.copy_(weight)
        if bias is not None:
            static.bias.copy_(bias)
        return static.to(self.weight.device).train(self.training)


class _ElasticBatchNormMixin:
    _bnas: ElasticState

    def setup_elastic(self) -> None:
        self._bnas = ElasticState()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = self._bnas.channel_index
        if idx is None:
            return super().forward(x)
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch = self.training or self.running_mean is None
        mean = _take(self.running_mean, 0, idx) if self.running_mean is not None else None
        var = _take(self.running_var, 0, idx) if self.running_var is not None else None
        track = not self.training or self.track_running_stats
        out = F.batch_norm(x, mean if track else None, var if track else None, _take(self.weight, 0, idx),
                           _take(self.bias, 0, idx), use_batch, factor, self.eps)  # fmt: skip
        if self.training and mean is not None and not isinstance(idx, slice):  # index_select copied: write back
            with torch.no_grad():
                self.running_mean[idx] = mean
                self.running_var[idx] = var
        return out

    @torch.no_grad()
    def to_static(self) -> nn.Module:
        idx = self._bnas.channel_index
        base = type(self).__mro__[2]
        n = index_len(idx, self.num_features)
        static = base(n, self.eps, self.momentum, self.affine, self.track_running_stats)
        if self.affine:
            static.weight.copy_(_take(self.weight, 0, idx))
            static.bias.copy_(_take(self.bias, 0, idx))
        if self.track_running_stats:
            static.running_mean.copy_(_take(self.running_mean, 0, idx))
            static.running_var.copy_(_take(self.running_var, 0, idx))
            static.num_batches_tracked.copy_(self.num_batches_tracked)
        return static.to(x_device(self)).train(self.training)


def x_device(module: nn.Module) -> torch.device:
    for t in list(module.parameters()) + list(module.buffers()):
        return t.device
    return torch.device("cpu")


class ElasticBatchNorm1d(_ElasticBatchNormMixin, nn.BatchNorm1d):
    pass


class ElasticBatchNorm2d(_ElasticBatchNormMixin, nn.BatchNorm2d):
    pass


class ElasticBatchNorm3d(_ElasticBatchNormMixin, nn.BatchNorm3d):
    pass


class ElasticLayerNorm(nn.LayerNorm):
    _bnas: ElasticState

    def setup_elastic(self) -> None:
        self._bnas = ElasticState()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = self._bnas.channel_index
        if idx is None:
            return super().forward(x)
        n = index_len(idx, self.normalized_shape[0])
        return F.layer_norm(x, (n,), _take(self.weight, 0, idx), _take(self.bias, 0, idx), self.eps)

    @torch.no_grad()
    def to_static(self) -> nn.Module:
        idx = self._bnas.channel_index
        n = index_len(idx, self.normalized_shape[0])
        static = nn.LayerNorm(n, self.eps, self.elementwise_affine, bias=self.bias is not None)
        if self.weight is not None:
            static.weight.copy_(_take(self.weight, 0, idx))
        if self.bias is not None:
            static.bias.copy_(_take(self.bias, 0, idx))
        return static.to(x_device(self)).train(self.training)


ELASTIC_CLASSES: dict[type[nn.Module], type[nn.Module]] = {
    nn.Conv1d: ElasticConv1d,
    nn.Conv2d: ElasticConv2d,
    nn.Conv3d: ElasticConv3d,
    nn.ConvTranspose1d: ElasticConvTranspose1d,
    nn.ConvTranspose2d: ElasticConvTranspose2d,
    nn.ConvTranspose3d: ElasticConvTranspose3d,
    nn.Linear: ElasticLinear,
    nn.BatchNorm1d: ElasticBatchNorm1d,
    nn.BatchNorm2d: ElasticBatchNorm2d,
    nn.BatchNorm3d: ElasticBatchNorm3d,
    nn.LayerNorm: ElasticLayerNorm,
}


def make_elastic(module: nn.Module, **options: object) -> nn.Module:
    """Swap the class of ``module`` (in place) to its elastic subclass; parameters are untouched."""
    if getattr(module, "_bnas", None) is not None:
        return module
    cls = ELASTIC_CLASSES[type(module)]
    module.__class__ = cls
    module.setup_elastic(**options)
    return module


def is_elastic(module: nn.Module) -> bool:
    return isinstance(module, tuple(ELASTIC_CLASSES.values()))


def conv_kernel_choices(conv: nn.Module, max_num_kernels: int) -> tuple[tuple[int, ...], str | None]:
    """Odd square kernels >= 5 shrink by 2 down to 3 while the output shape can be kept; else the reason not."""
    if not isinstance(conv, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return (), None
    ks = conv.kernel_size
    if len(set(ks)) != 1:
        return (), f"non-square kernel {ks}"
    k = ks[0]
    if k % 2 == 0 and k >= 4:
        return (), f"even kernel {k}"
    if k < 5:
        return (), None
    if conv.stride[0] == k and k > 1:
        return (), "patch embedding (stride equals kernel)"
    if conv.padding_mode != "zeros":
        return (), f"padding mode {conv.padding_mode!r}"
    choices = [k]
    for small in range(k - 2, 2, -2):
        if isinstance(conv.padding, str):
            if conv.padding != "same":
                break
        elif any(p - (k - small) // 2 * d < 0 for p, d in zip(conv.padding, conv.dilation)):
            break
        choices.append(small)
    if max_num_kernels and max_num_kernels > 0:
        choices = choices[:max_num_kernels]
    if len(choices) < 2:
        return (), f"padding {conv.padding} too small to keep the output shape with a smaller kernel"
    return tuple(choices), None


@torch.no_grad()
def active_param_count(module: nn.Module) -> int:
    """Parameters the active sub-layer keeps (what ``to_static()`` would hold), without building it."""
    if hasattr(module, "active_heads"):
        return sum(t.numel() for t in module.active_parts()[:4] if t is not None)
    if isinstance(module, (_ElasticConvMixin, ElasticLinear)):
        weight, bias = module.active_parts()[:2]
        return math.prod(weight.shape) + (math.prod(bias.shape) if bias is not None else 0)
    n = index_len(module._bnas.channel_index, module.weight.shape[0] if module.weight is not None else 0)
    return sum(n for p in (module.weight, module.bias) if p is not None)
