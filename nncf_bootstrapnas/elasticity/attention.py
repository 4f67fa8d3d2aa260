"""Elastic number of heads for ``nn.MultiheadAttention``: q/k/v rows and out_proj columns of the first h heads.

The embedding width (the residual stream) stays fixed; the heads group's width is ``h * head_dim`` channels so that it
reads like every other width variable. Extraction gives ``SlicedMultiheadAttention``, a plain module with the same
maths (torch's own class cannot express "fewer heads than embed_dim / head_dim").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .modules import ELASTIC_CLASSES
from .views import ElasticState


def _attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    in_weight: torch.Tensor,
    in_bias: torch.Tensor | None,
    out_weight: torch.Tensor,
    out_bias: torch.Tensor | None,
    heads: int,
    key_padding_mask: torch.Tensor | None,
    need_weights: bool,
    attn_mask: torch.Tensor | None,
    average_attn_weights: bool,
    is_causal: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Multi-head attention with ``heads`` heads of ``module.head_dim`` (batch_first handled here)."""
    if module.batch_first:
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))
    length, batch, _ = query.shape
    inner = heads * module.head_dim
    wq, wk, wv = in_weight.split(inner)
    bq, bk, bv = in_bias.split(inner) if in_bias is not None else (None, None, None)
    q, k, v = F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def heads_first(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape[0], batch * heads, module.head_dim).transpose(0, 1)

    q, k, v = heads_first(q), heads_first(k), heads_first(v)
    mask = None
    if attn_mask is not None:
        mask = (
            attn_mask
            if attn_mask.dim() == 2
            else attn_mask.view(batch, -1, *attn_mask.shape[-2:])[:, :heads].reshape(-1, *attn_mask.shape[-2:])
        )
    if is_causal and mask is None:
        mask = torch.ones(length, k.shape[1], dtype=torch.bool, device=q.device).tril().logical_not()
    if mask is not None and mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(mask, float("-inf"))
    if key_padding_mask is not None:
        pad = key_padding_mask.view(batch, 1, 1, -1).expand(-1, heads, -1, -1).reshape(batch * heads, 1, -1)
        pad = (
            torch.zeros(pad.shape, dtype=q.dtype, device=q.device).masked_fill(pad, float("-inf"))
            if pad.dtype == torch.bool
            else pad
        )
        mask = pad if mask is None else mask + pad
    scores = torch.bmm(q / math.sqrt(module.head_dim), k.transpose(1, 2))
    if mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores, dim=-1)
    if module.training and module.dropout > 0:
        weights = F.dropout(weights, module.dropout)
    out = torch.bmm(weights, v).transpose(0, 1).reshape(length, batch, inner)
    out = F.linear(out, out_weight, out_bias)
    if module.batch_first:
        out = out.transpose(0, 1)
    if not need_weights:
        return out, None
    weights = weights.view(batch, heads, length, -1)
    return out, weights.mean(1) if average_attn_weights else weights


def _head_rows(module: nn.Module, heads: int) -> torch.Tensor:
    inner = heads * module.head_dim
    e = module.embed_dim
    return torch.cat([torch.arange(0, inner), torch.arange(e, e + inner), torch.arange(2 * e, 2 * e + inner)])


class ElasticMultiheadAttention(nn.MultiheadAttention):
    """``channel_index`` of its state is the prefix of active head channels (a multiple of ``head_dim``)."""

    _bnas: ElasticState

    def setup_elastic(self) -> None:
        self._bnas = ElasticState()

    def active_heads(self) -> int:
        idx = self._bnas.channel_index
        return self.num_heads if idx is None else (idx.stop - idx.start) // self.head_dim

    def active_parts(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None, int]:
        heads = self.active_heads()
        inner = heads * self.head_dim
        rows = _head_rows(self, heads)
        in_bias = self.in_proj_bias.index_select(0, rows) if self.in_proj_bias is not None else None
        return (self.in_proj_weight.index_select(0, rows), in_bias, self.out_proj.weight[:, :inner],
                self.out_proj.bias, heads)  # fmt: skip

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,  # noqa: ANN001
                average_attn_weights=True, is_causal=False):  # noqa: ANN001, ANN201  # fmt: skip
        if self._bnas.channel_index is None:
            return super().forward(query, key, value, key_padding_mask, need_weights, attn_mask,
                                   average_attn_weights, is_causal)  # fmt: skip
        in_w, in_b, out_w, out_b, heads = self.active_parts()
        return _attention(self, query, key, value, in_w, in_b, out_w, out_b, heads, key_padding_mask, need_weights,
                          attn_mask, average_attn_weights, is_causal)  # fmt: skip

    @torch.no_grad()
    def to_static(self) -> nn.Module:
        if self._bnas.channel_index is None:
            static = nn.MultiheadAttention(self.embed_dim, self.num_heads, self.dropout, self.in_proj_bias is not None,
                                           batch_first=self.batch_first)  # fmt: skip
            static.load_state_dict({k: v for k, v in self.state_dict().items()})
            return static.train(self.training)
        in_w, in_b, out_w, out_b, heads = self.active_parts()
        return SlicedMultiheadAttention(self.embed_dim, heads, self.head_dim, self.dropout, self.batch_first,
                                        in_w, in_b, out_w, out_b).train(self.training)  # fmt: skip


class SlicedMultiheadAttention(nn.Module):
    """Plain attention with ``num_heads`` heads of ``head_dim`` on an ``embed_dim`` stream (extraction result)."""

    def __init__(self, embed_dim: int, num_heads: int, head_dim: int, dropout: float, batch_first: bool,
                 in_proj_weight: torch.Tensor, in_proj_bias: torch.Tensor | None, out_weight: torch.Tensor,
                 out_bias: torch.Tensor | None) -> None:  # fmt: skip
        super().__init__()
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, head_dim
        self.dropout, self.batch_first = dropout, batch_first
        self.in_proj_weight = nn.Parameter(in_proj_weight.clone())
        self.in_proj_bias = nn.Parameter(in_proj_bias.clone()) if in_proj_bias is not None else None
        self.out_proj = nn.Linear(out_weight.shape[1], out_weight.shape[0], out_bias is not None)
        self.out_proj.weight.copy_(out_weight)
        if out_bias is not None:
            self.out_proj.bias.copy_(out_bias)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,  # noqa: ANN001
                average_attn_weights=True, is_causal=False):  # noqa: ANN001, ANN201  # fmt: skip
        return _attention(self, query, key, value, self.in_proj_weight, self.in_proj_bias, self.out_proj.weight,
                          self.out_proj.bias, self.num_heads, key_padding_mask, need_weights, attn_mask,
                          average_attn_weights, is_causal)  # fmt: skip


ELASTIC_CLASSES[nn.MultiheadAttention] = ElasticMultiheadAttention
