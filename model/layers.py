"""Building blocks of MMCL: masked attention, enhancement and integration blocks, step pooling (the CSD: model/csd.py).

Masks are boolean (B, L) with True = a real step. Every block keeps padded steps at exactly zero and never
lets them influence real steps, and a modality with no real step at all yields zeros, never NaN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedMultiheadAttention(nn.Module):
    """Multi-head attention over keys with a padding mask (scaled dot-product attention).

    A query whose keys are all padding would give NaN in a plain softmax; here such rows attend to every
    key instead (finite values) and the callers zero them through the query mask.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(self, query: torch.Tensor, key: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        b, lq, d = query.shape
        lk = key.shape[1]
        q = self.q_proj(query).view(b, lq, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, Lq, hd)
        k = self.k_proj(key).view(b, lk, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, Lk, hd)
        v = self.v_proj(key).view(b, lk, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, Lk, hd)
        any_key = key_mask.any(dim=1, keepdim=True)  # (B, 1)
        safe_mask = key_mask | ~any_key  # all-padding rows attend everywhere (finite)
        attn_mask = safe_mask[:, None, None, :]  # (B, 1, 1, Lk)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, Lq, hd)
        out = out.transpose(1, 2).reshape(b, lq, d)  # (B, Lq, d)
        return self.out_proj(out)


class FeedForward(nn.Module):
    def __init__(self, d_model: int, mult: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, d_model * mult),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(d_model * mult, d_model),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class EnhanceBlock(nn.Module):
    """Crucial common feature enhancement: Z~c = Zc + SelfAttn(LN(Zc)) + FF(LN(Zc)) (paper §III-C)."""

    def __init__(self, d_model: int, n_heads: int, ff_mult: int, dropout: float, self_attn: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.attn = MaskedMultiheadAttention(d_model, n_heads, dropout) if self_attn else None
        self.ff = FeedForward(d_model, ff_mult, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        update = self.ff(h)
        if self.attn is not None:
            update = update + self.attn(h, h, mask)
        return (x + self.drop(update)) * mask[:, :, None].to(x.dtype)


class IntegrateBlock(nn.Module):
    """Complementary specific feature integration: CrossAttn(query = Z~c, key/value = Zs) (paper §III-D).

    Without cross-attention (ablation ``no_cross_attn``) the specific part is added step by step instead;
    ``specific_residual`` adds the specific steps beside the cross-attention too (``ModelConfig``).
    """

    def __init__(self, d_model: int, n_heads: int, ff_mult: int, dropout: float, cross_attn: bool,
                 specific_residual: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.specific_residual = specific_residual
        self.norm_q = nn.LayerNorm(d_model) if cross_attn else None
        self.norm_kv = nn.LayerNorm(d_model)
        self.attn = MaskedMultiheadAttention(d_model, n_heads, dropout) if cross_attn else None
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = FeedForward(d_model, ff_mult, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, common: torch.Tensor, specific: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask[:, :, None].to(common.dtype)
        if self.attn is not None and self.norm_q is not None:
            x = common + self.drop(self.attn(self.norm_q(common), self.norm_kv(specific), mask))
            if self.specific_residual:
                x = x + specific * keep
        else:
            x = common + self.norm_kv(specific) * keep
        x = x + self.drop(self.ff(self.norm_ff(x)))
        return x * keep


def masked_last(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The last real step: (B, L, d), (B, L) → (B, d); zero for a sample with no real step."""
    steps = torch.arange(1, mask.shape[1] + 1, device=x.device)
    last = (mask.long() * steps).argmax(dim=1)  # index of the last True (0 when none)
    picked = x.gather(1, last[:, None, None].expand(-1, 1, x.shape[-1]))[:, 0]
    return picked * mask.any(dim=1, keepdim=True).to(x.dtype)


class AttentionPool(nn.Module):
    """A learned masked softmax over the steps: (B, L, d), (B, L) → (B, d); zero with no real step."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.score = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.score(x)[..., 0].masked_fill(~mask, -1e4)  # finite: FP16 / export safe
        w = torch.softmax(logits, dim=1) * mask.to(x.dtype)
        return (x * w[:, :, None]).sum(dim=1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real steps: (B, L, d), (B, L) → (B, d); zero for a sample with no real step."""
    m = mask[:, :, None].to(x.dtype)
    return (x * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)
