"""Channel-coupling, kernel and depth rules on small hand-written models: each construct either becomes elastic
exactly, or freezes only the channels it touches with a logged reason."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nncf_bootstrapnas.elasticity import SearchSpaceError, create_supernet
from nncf_bootstrapnas.elasticity.modules import index_len
from nncf_bootstrapnas.graph.analysis import scope_to_path
from nncf_bootstrapnas.graph.macs import count_macs

OPTS = {"width": {"min_width": 1, "width_multipliers": [1.0, 0.5]}}


def check_all(model: nn.Module, x: torch.Tensor, options=OPTS, samples: int = 6):  # noqa: ANN001, ANN201
    model.eval()
    sn = create_supernet(model, options, example_input=x).eval()
    rng = np.random.default_rng(0)
    space = sn.search_space
    for cfg in [space.maximum(), space.minimum()] + [space.sample(rng) for _ in range(samples)]:
        sn.activate(cfg)
        with torch.no_grad():
            y = sn(x)
            sub = sn.extract().eval()
            torch.testing.assert_close(sub(x), y, atol=1e-5, rtol=1e-5)
        assert sn.macs() == count_macs(sub, x)
    sn.activate(None)
    return sn


def widths(sn) -> dict[str, tuple[int, ...]]:  # noqa: ANN001
    return {v.key: v.choices for v in sn.search_space.variables if v.dim == "width"}


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a = nn.Conv2d(8, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = x + self.b(F.relu(self.a(x)))
        if x.sum() > -1e9:  # Python control flow on data runs eagerly
            x = F.relu(x)
        return self.head(x.mean((2, 3)))


def test_residual_add_couples_producers_and_control_flow_is_fine() -> None:
    sn = check_all(Residual(), torch.randn(2, 3, 8, 8))
    w = widths(sn)
    assert set(w) == {"stem", "a"}  # b is coupled to stem by the add; head's output is the model output
    group = next(g for g in sn.width_groups if g.name == "stem")
    assert set(group.producers) == {"stem", "b"}


class Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 6, 1)
        self.bn = nn.BatchNorm2d(13)
        self.c = nn.Conv2d(13, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(torch.cat([self.a(x), x, self.b(x)], dim=1))  # the raw input is a fixed segment
        y = F.adaptive_avg_pool2d(self.c(y), 4)
        return self.fc(torch.flatten(y, 1))  # flatten into linear with a 4x4 spatial map


def test_concat_with_fixed_segment_and_flatten_into_linear() -> None:
    sn = check_all(Concat(), torch.randn(2, 3, 8, 8))
    assert set(widths(sn)) == {"a", "b", "c"}
    sn.activate({"width": {"a": 2, "b": 3, "c": 4}})
    assert sn.model.c._bnas.in_index.tolist() == [0, 1, 4, 5, 6, 7, 8, 9]
    assert index_len(sn.model.fc._bnas.in_index, 128) == 4 * 16


class Shuffle(nn.Module):
    """ShuffleNet-style: channel shuffle and chunk freeze the trunk, the branch stays elastic."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 1)
        self.branch1 = nn.Conv2d(4, 12, 1)
        self.branch2 = nn.Conv2d(12, 4, 1)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        a, b = x.chunk(2, dim=1)
        x = torch.cat([a, self.branch2(F.relu(self.branch1(b)))], dim=1)
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.head(x)


def test_split_and_shuffle_freeze_only_their_channels(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="nncf_bootstrapnas"):
        sn = check_all(Shuffle(), torch.randn(1, 3, 4, 4))
    assert set(widths(sn)) == {"branch1"}
    assert "split along channels" in caplog.text or "channels split by a reshape" in caplog.text


class SE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1 = nn.Conv2d(8, 4, 1)
        self.fc2 = nn.Conv2d(4, 8, 1)
        self.dw = nn.Conv2d(8, 8, 5, padding=2, groups=8)
        self.out = nn.Conv2d(8, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(y, 1)))))
        return self.out(self.dw(y * s))


def test_squeeze_excitation_mul_and_depthwise_kernel() -> None:
    sn = check_all(SE(), torch.randn(1, 3, 8, 8), {**OPTS, "kernel": {}})
    assert set(widths(sn)) == {"conv", "fc1"}  # fc2 is coupled to conv through the multiplication
    assert {v.key: v.choices for v in sn.search_space.variables if v.dim == "kernel"} == {"dw": (5, 3)}


class Opaque(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(8, 8, 1)
        self.scale = nn.Parameter(torch.ones(1, 8, 1, 1))
        self.c = nn.Conv2d(8, 6, 1)
        self.d = nn.Linear(6, 6)
        self.e = nn.Conv2d(6, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b(self.a(x)) * self.scale  # a per-channel parameter: sliced with b's group
        y = self.c(y).permute(0, 2, 3, 1)
        y = F.linear(y, self.d.weight)  # a layer's weight used by a function: d is a layer like any other
        return self.e(y.permute(0, 3, 1, 2).reshape(1, 6, 4, 4))  # hard-coded channel count


def test_parameters_used_by_functions_and_hard_coded_shapes(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="nncf_bootstrapnas"):
        sn = check_all(Opaque(), torch.randn(1, 3, 4, 4))
    assert set(widths(sn)) == {"a", "b", "c"}
    assert "width/d is not elastic: fails at a smaller width" in caplog.text and "(model: reshape)" in caplog.text
    sn.activate({"width": {"b": 4}})
    assert sn.extract().scale.shape == (1, 4, 1, 1)


class Various(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(2, 8, 3, padding=1)
        self.g = nn.Conv1d(8, 8, 3, padding=1, groups=2)  # grouped: its input shrinks by whole conv groups
        self.c3 = nn.Conv3d(1, 4, 3, padding="same")
        self.up = nn.ConvTranspose2d(4, 6, 2, stride=2)
        self.ln = nn.LayerNorm(6)
        self.even = nn.Conv2d(6, 6, 4, padding="same")
        self.valid = nn.Conv2d(6, 4, 5)
        self.head = nn.Linear(8 + 4, 3)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        a = self.g(F.relu(self.c1(seq))).mean(2)
        v = self.c3(seq.unsqueeze(1).unsqueeze(-1).expand(-1, -1, -1, -1, 4))[..., 0]
        u = self.ln(self.up(v).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        u = self.valid(F.pad(self.even(u), (2, 2, 2, 2))).mean((2, 3))
        return self.head(torch.cat([a, u], 1))


def test_conv1d_conv3d_transpose_layernorm_and_static_kernels(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="nncf_bootstrapnas"):
        sn = check_all(Various(), torch.randn(1, 2, 8), {**OPTS, "kernel": {}})
    assert widths(sn) == {"c1": (8, 4), "c3": (4, 2), "up": (6, 3), "even": (6, 3), "valid": (4, 2)}
    assert "even kernel 4" in caplog.text
    assert "padding (0, 0) too small" in caplog.text


def test_schema_defaults_apply_to_a_bare_elasticity_section() -> None:
    sn = create_supernet(Concat(), {}, torch.randn(1, 3, 8, 8))  # legacy defaults: min_width 32, width_step 32
    assert widths(sn) == {}
    with pytest.raises(ValueError, match="unknown key 'min_widht'"):
        create_supernet(Concat(), {"width": {"min_widht": 1}}, torch.randn(1, 3, 8, 8))


def test_scopes_multipliers_and_overwrite_groups() -> None:
    x = torch.randn(1, 3, 8, 8)
    sn = create_supernet(
        Concat(), {"width": {"min_width": 1, "width_multipliers": [1, 0.5]}, "ignored_scopes": ["b"]}, x
    )
    assert set(widths(sn)) == {"a", "c"}
    sn = create_supernet(Concat(), {"width": {"width_step": 2, "min_width": 2}, "target_scopes": ["{re}^c$"]}, x)
    assert widths(sn) == {"c": (8, 6, 4, 2)}
    sn = create_supernet(Concat(), {"width": {"min_width": 1, "max_num_widths": 2, "width_step": 1}}, x)
    assert widths(sn)["b"] == (6, 5)
    sn = create_supernet(
        Residual(), {"width": {"min_width": 1, "overwrite_groups": [["stem"]], "overwrite_groups_widths": [[8, 3]]}}, x
    )
    assert widths(sn)["stem"] == (8, 3)
    with pytest.raises(ValueError, match=r"overwrite_groups\[0\]: 'nope'"):
        create_supernet(Residual(), {"width": {"overwrite_groups": [["nope"]], "overwrite_groups_widths": [[8]]}}, x)


class Blocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 1)
        self.blocks = nn.Sequential(*[nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()) for _ in range(3)])
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def test_explicit_skipped_blocks_and_spans() -> None:
    x = torch.randn(1, 3, 4, 4)
    sn = check_all(Blocks(), x, {"depth": {"skipped_blocks": ["blocks.1", "blocks.2"]}})
    depth = [(v.key, v.choices) for v in sn.search_space.variables if v.dim == "depth"]
    assert depth == [("blocks.1", (0, 1, 2))]
    sn = check_all(Blocks(), x, {"depth": {"skipped_blocks": [["blocks.0", "blocks.1"]]}})
    assert [v.key for v in sn.search_space.variables if v.dim == "depth"] == ["blocks.0..blocks.1"]
    sn = create_supernet(Residual(), {"depth": {"min_block_size": 1}}, torch.randn(1, 3, 8, 8))
    assert sn.search_space.dims == []  # no residual *module* to skip: Residual's add is in the root forward
    assert scope_to_path("Net/Sequential[blocks]/Sequential[1]/Conv2d[0]/conv2d_0") == "blocks.1.0"


def test_search_space_validation_messages() -> None:
    sn = create_supernet(Residual(), OPTS, torch.randn(1, 3, 8, 8))
    space = sn.search_space
    with pytest.raises(SearchSpaceError, match=r"width/stem: 5 is not an allowed choice; allowed: 8, 4"):
        sn.activate({"width": {"stem": 5}})
    with pytest.raises(SearchSpaceError, match=r"unknown variable width/nope"):
        space.validate({"width": {"nope": 1}})
    with pytest.raises(SearchSpaceError, match=r"unknown dimension 'height'"):
        space.validate({"height": {"stem": 1}})
    cfg = space.sample(np.random.default_rng(3))
    assert space.decode(space.encode(cfg)) == cfg
    assert space.size == 4 and space.encode(space.minimum()).tolist() == [1, 1]
    stage = space.restrict(["width"], width_indicator=1)
    assert stage.size == 1 and stage.maximum() == space.maximum()


class Attention(nn.Module):
    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 16)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=batch_first)
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        h = h + self.attn(h, h, h, need_weights=False)[0]
        h = h + self.fc2(F.gelu(self.fc1(h)))
        return self.head(h.mean(1 if self.attn.batch_first else 0))


@pytest.mark.parametrize("batch_first", [True, False])
def test_attention_heads_and_mlp_hidden_width(batch_first: bool) -> None:
    sn = check_all(
        Attention(batch_first), torch.randn(2, 5, 4), {"width": {"min_width": 1, "width_multipliers": [1.0, 0.5, 0.25]}}
    )
    w = widths(sn)
    assert w["attn.heads"] == (16, 8, 4)  # whole heads of head_dim 4
    assert w["fc1"] == (32, 16, 8)
    sn.activate({"width": {"attn.heads": 8}})
    sub = sn.extract()
    assert type(sub.attn).__name__ == "SlicedMultiheadAttention" and sub.attn.num_heads == 2
    sn.train()
    sn(torch.randn(2, 5, 4)).sum().backward()  # the sliced path trains


class HiddenCoupling(nn.Module):
    """A channel count hard-coded outside torch: invisible to any tracer."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(3, 4, 1)
        self.c = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        mask = np.ones((1, 8, 1, 1), dtype=np.float32)  # numpy: the tracer cannot follow it
        return self.c(self.b(x)) + torch.from_numpy(mask * y.detach().numpy()).sum(1, keepdim=True)


class AttributeCoupling(HiddenCoupling):
    """The same count read from the layer at run time: it follows the active width."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        mask = torch.ones(1, self.a.out_channels, 1, 1).numpy()
        return self.c(self.b(x)) + torch.from_numpy(mask * y.detach().numpy()).sum(1, keepdim=True)


def test_misjudged_construct_freezes_only_the_failing_variable(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="nncf_bootstrapnas"):
        sn = create_supernet(HiddenCoupling(), OPTS, torch.randn(1, 3, 4, 4))
    assert set(widths(sn)) == {"b"}
    assert "width/a is not elastic: fails at a smaller width: ValueError" in caplog.text
    assert set(widths(create_supernet(AttributeCoupling(), OPTS, torch.randn(1, 3, 4, 4)))) == {"a", "b"}


def test_block_size_bounds_limit_discovered_blocks() -> None:
    from nncf_bootstrapnas.models import build_model, example_input

    model, x = build_model("resnet18", small=True), example_input("resnet18")
    assert "depth" in create_supernet(model, {}, x).search_space.dims  # BasicBlocks: 7 ops, within [5, 50]
    assert "depth" not in create_supernet(model, {"depth": {"max_block_size": 6}}, x).search_space.dims
    assert "depth" not in create_supernet(model, {"depth": {"min_block_size": 8}}, x).search_space.dims
