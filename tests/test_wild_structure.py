"""Model structure as it is written in the wild: fused-qkv attention, blocks called with extra arguments, tuple and
nested inputs, branches that run only in training, tied weights, VGG-style depth."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_wild_layers import OPTIONS, check_supernet, widths
from torch import nn

from nncf_bootstrapnas.elasticity import SuperNetwork, create_supernet
from nncf_bootstrapnas.elasticity.depth import SkippedBlock

pytestmark = pytest.mark.usefixtures("one_thread")


class FusedAttention(nn.Module):
    """timm's Attention: one qkv linear, ``reshape(B, N, 3, self.num_heads, self.head_dim)``, whole heads."""

    def __init__(self, dim: int, heads: int, sdpa: bool) -> None:
        super().__init__()
        self.num_heads, self.head_dim, self.sdpa = heads, dim // heads, sdpa
        self.attn_dim = dim
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if self.sdpa:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            x = (q * self.head_dim**-0.5 @ k.transpose(-2, -1)).softmax(-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, self.attn_dim))


class ViT(nn.Module):
    def __init__(self, sdpa: bool) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 16, 4, stride=4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, 16))
        self.pos_embed = nn.Parameter(torch.randn(1, 5, 16))
        self.norm = nn.LayerNorm(16)
        self.attn = FusedAttention(16, 4, sdpa)
        self.mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        x = x + self.attn(self.norm(x))
        x = x + self.mlp(x)
        return self.head(x[:, 0])


@pytest.mark.parametrize("sdpa", [False, True])
def test_fused_qkv_attention_gets_whole_heads_and_the_embedding_width(sdpa: bool) -> None:
    torch.manual_seed(0)
    options = {"width": {"min_width": 1, "width_multipliers": [1.0, 0.5, 0.25]}}
    model, x = ViT(sdpa).eval(), torch.randn(2, 3, 8, 8)
    sn = check_supernet(model, x, options)
    w = widths(sn)
    assert w["attn.qkv"] == (16, 8, 4)  # 4 heads of 4 channels: whole heads only
    assert w["patch"] == (16, 8, 4) and w["mlp.0"] == (32, 16, 8)  # the residual stream, cls token and pos embedding
    sn.activate({"width": {"attn.qkv": 8, "patch": 8}})
    sub = sn.extract()
    assert sub.attn.num_heads == 2 and sub.attn.attn_dim == 8 and sub.attn.qkv.out_features == 24
    assert sub.cls_token.shape == (1, 1, 8) and sub.pos_embed.shape == (1, 5, 8)
    sn.activate(None)
    with torch.no_grad():
        sn.reorganize_weights("L1")  # permutes whole heads (q, k, v rows and proj columns alike)
        torch.testing.assert_close(sn(x), model(x), atol=1e-5, rtol=1e-5)
    assert not torch.equal(sn.model.attn.qkv.weight, model.attn.qkv.weight)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor, drop_rate: float | None = None, *, scale: float = 1.0) -> torch.Tensor:
        y = self.bn(self.conv(x)) * scale
        if drop_rate and self.training:
            y = F.dropout(y, drop_rate)
        return x + y


class KwargsNet(nn.Module):
    """EfficientNet-Lite's parent loop: ``block(x, drop_connect_rate=...)``; also a block called by keyword."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 1)
        self.blocks = nn.ModuleList(Block() for _ in range(3))
        self.last = Block()
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            x = block(x, 0.1 * i, scale=1.0)
        x = self.last(x=x)
        return self.head(x.mean((2, 3)))


def test_skipped_blocks_accept_whatever_their_parent_passes() -> None:
    torch.manual_seed(0)
    sn = check_supernet(KwargsNet(), torch.randn(2, 3, 4, 4), {"depth": {"min_block_size": 1}})
    depth = {v.key: v.choices for v in sn.search_space.variables if v.dim == "depth"}
    assert depth == {"blocks.0": (0, 1, 2, 3, 4)}  # blocks.0 .. last are chained: one group of four
    sub = sn.extract({"depth": {"blocks.0": 4}})
    assert all(isinstance(sub.blocks[i], SkippedBlock) for i in range(3)) and isinstance(sub.last, SkippedBlock)


class TupleNet(nn.Module):
    """``forward`` takes one tuple (NNCF's test zoo) and a dict of extras."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(1, 8, 3, padding=1)
        self.c = nn.Conv2d(8, 4, 1)
        self.head = nn.Linear(4, 2)

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor], extra: dict) -> torch.Tensor:
        image, mask = inputs
        y = self.c(F.relu(self.a(image) + self.b(mask) * extra["gain"]))
        return self.head(y.mean((2, 3)))


def test_nested_example_inputs_and_input_info() -> None:
    torch.manual_seed(0)
    image, mask = torch.randn(2, 3, 4, 4), torch.randn(2, 1, 4, 4)
    args = ((image, mask), {"gain": torch.tensor(0.5)})
    sn = check_supernet(TupleNet(), args)
    assert set(widths(sn)) == {"a", "c"}
    rebuilt = SuperNetwork.from_state(TupleNet(), sn.get_state())  # the nested structure survives the JSON state
    assert rebuilt.search_space == sn.search_space
    info = [{"tuple": [{"sample_size": [1, 3, 4, 4]}, {"sample_size": [1, 1, 4, 4]}]},
            {"dict": {"gain": {"sample_size": [], "filler": "ones"}}}]  # fmt: skip
    from_config = create_supernet(
        TupleNet(), {"input_info": info, "bootstrapNAS": {"training": {"elasticity": OPTIONS}}}
    )
    assert from_config.search_space == sn.search_space


class AuxNet(nn.Module):
    """Inception-v3 with ``aux_logits``: an auxiliary head that runs only in training."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.aux = nn.Sequential(nn.Conv2d(8, 6, 1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 4, 1))
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        y = F.relu(self.a(x))
        out = self.head(F.relu(self.b(y))).mean((2, 3))
        return (out, self.aux(y).mean((2, 3))) if self.training else out


def test_train_only_branches_are_analysed() -> None:
    torch.manual_seed(0)
    sn = check_supernet(AuxNet(), torch.randn(2, 3, 4, 4))
    assert set(widths(sn)) == {"a", "b"}  # the aux head's own width is used only in training: kept
    sn.activate(sn.search_space.minimum())
    sn.train()
    out, aux = sn(torch.randn(2, 3, 4, 4))  # the aux head reads a's channels at their active width
    assert aux.shape == (2, 4) and sn.model.aux[0].__dict__["_bnas"].views["weight"].slices
    report = sn.generation_report()
    assert any(g["reason"] == "used only in training mode" for g in report.groups)


class TiedLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(20, 8)
        self.fc = nn.Linear(8, 16)
        self.proj = nn.Linear(16, 8)
        self.norm = nn.LayerNorm(8)
        self.lm_head = nn.Linear(8, 20, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.wte(ids)
        h = h + self.proj(F.gelu(self.fc(h)))
        return self.lm_head(self.norm(h))


def test_tied_weights_stay_tied_through_reorganisation_and_extraction() -> None:
    torch.manual_seed(0)
    ids = torch.randint(0, 20, (2, 5))
    model = TiedLM().eval()
    sn = check_supernet(model, ids)
    assert set(widths(sn)) == {"wte", "fc"}
    with torch.no_grad():
        sn.reorganize_weights("L1")
        torch.testing.assert_close(sn(ids), model(ids), atol=1e-5, rtol=1e-5)  # function preserved, tie permuted once
    assert sn.model.lm_head.weight is sn.model.wte.weight
    sub = sn.extract(sn.search_space.minimum())
    assert sub.lm_head.weight is sub.wte.weight and sub.wte.weight.shape == (20, 4)
    unique = sum(p.numel() for p in sub.parameters())
    assert unique == sn.params(sn.search_space.minimum())


class VGG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers = [nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()]
        for _ in range(2):
            layers += [nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()]
        layers += [
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.ReLU(),
        ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


def test_vgg_style_depth_is_an_option() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    assert "depth" not in create_supernet(VGG(), OPTIONS, example_input=x).search_space.dims  # off by default
    sn = check_supernet(VGG(), x, {**OPTIONS, "depth": {"sequential_blocks": True}})
    groups = [[list(b.paths) for b in g.blocks] for g in sn.block_groups]
    assert groups == [[["features.3", "features.4", "features.5"], ["features.6", "features.7", "features.8"]],
                      [["features.12", "features.13"]]]  # fmt: skip
    assert set(widths(sn)) == {"features.0", "features.10"}  # a skippable span shares its input's width
