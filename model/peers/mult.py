"""A MulT-style cross-modal transformer, our own implementation, used only as a speed peer for MMCL.

After Tsai et al., "Multimodal Transformer for Unaligned Multimodal Language Sequences" (ACL 2019);
written here from the paper's description, not copied from its code, and **not trained or evaluated**:
``mmcl bench`` runs it at the same shapes as MMCL so the MMCL/MulT latency ratio is measured side by side.

    X_m (B, L, D_m) ──Linear (≡ Conv1d k=1)──▶ (B, L, d) + sinusoidal time code            for m in v, a, t
    for each target m and each source s ≠ m:  CrossmodalLayer(q = m, kv = s) × cross_layers  → (B, L, d)
    concat the two cross streams of m ──▶ (B, L, 2d) ──self-attention layer × self_layers──▶ (B, L, 2d)
    masked mean over real steps ──▶ concat [v, a, t] (B, 6d) ──▶ head ──▶ (B, out_dim)

"Comparable size": the same d (256), heads, feed-forward multiplier and layer counts as the MMCL it is
compared with (one cross-modal and one self-attention layer per path, like MMCL's one enhancement and
one integration block per modality). Differences from the paper's model, on purpose: masks instead of
unaligned padding, masked-mean pooling instead of the last step, pre-LayerNorm residual blocks, no
dropout at inference. The structural cost MulT pays and MMCL does not is inherent to the design: six
directed cross-modal streams instead of three, and self-attention over 2d-wide memories.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from model.errors import ConfigError
from model.featureset import MODALITIES
from model.layers import FeedForward, MaskedMultiheadAttention, masked_mean
from model.mmcl import sinusoidal_code


@dataclass
class MulTConfig:
    dim_vision: int
    dim_audio: int
    dim_text: int
    d_model: int = 256
    n_heads: int = 4
    ff_mult: int = 2
    cross_layers: int = 1
    self_layers: int = 1
    head_hidden: int = 256
    out_dim: int = 1
    max_steps: int = 512

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads or min(self.cross_layers, self.self_layers, self.out_dim) < 1:
            raise ConfigError("MulT peer: d_model must divide by n_heads; layers and out_dim must be >= 1")

    @classmethod
    def like(cls, mmcl_cfg: object) -> MulTConfig:
        """The peer matched to an MMCL ``ModelConfig`` (same dims, d, heads, FF multiplier, layers,
        output)."""
        c = mmcl_cfg
        return cls(
            dim_vision=c.dim_vision,
            dim_audio=c.dim_audio,
            dim_text=c.dim_text,  # type: ignore[attr-defined]
            d_model=c.d_model,
            n_heads=c.n_heads,
            ff_mult=c.ff_mult,  # type: ignore[attr-defined]
            cross_layers=c.cross_layers,
            self_layers=c.enhance_layers,  # type: ignore[attr-defined]
            head_hidden=c.head_hidden,
            out_dim=c.out_dim,
            max_steps=c.max_steps,  # type: ignore[attr-defined]
        )


class TransformerLayer(nn.Module):
    """Pre-LN attention + feed-forward with residuals; query steps outside ``mask`` are kept at zero."""

    def __init__(self, d: int, n_heads: int, ff_mult: int, cross: bool) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d) if cross else None
        self.attn = MaskedMultiheadAttention(d, n_heads, 0.0)
        self.norm_ff = nn.LayerNorm(d)
        self.ff = FeedForward(d, ff_mult, 0.0)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        source: torch.Tensor | None = None,
        source_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        q = self.norm_q(x)
        if self.norm_kv is not None and source is not None and source_mask is not None:
            x = x + self.attn(q, self.norm_kv(source), source_mask)
        else:
            x = x + self.attn(q, q, mask)
        x = x + self.ff(self.norm_ff(x))
        return x * mask[:, :, None].to(x.dtype)


class MulTPeer(nn.Module):
    def __init__(self, cfg: MulTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        dims = {"vision": cfg.dim_vision, "audio": cfg.dim_audio, "text": cfg.dim_text}
        self.project = nn.ModuleDict({m: nn.Linear(dims[m], d) for m in MODALITIES})
        self.register_buffer("time_code", sinusoidal_code(cfg.max_steps, d))
        self.cross = nn.ModuleDict(
            {
                f"{s}_to_{m}": nn.ModuleList(
                    TransformerLayer(d, cfg.n_heads, cfg.ff_mult, True) for _ in range(cfg.cross_layers)
                )
                for m in MODALITIES
                for s in MODALITIES
                if s != m
            }
        )
        self.memory = nn.ModuleDict(
            {
                m: nn.ModuleList(
                    TransformerLayer(2 * d, cfg.n_heads, cfg.ff_mult, False) for _ in range(cfg.self_layers)
                )
                for m in MODALITIES
            }
        )
        self.pool_norm = nn.ModuleDict({m: nn.LayerNorm(2 * d) for m in MODALITIES})
        self.head = nn.Sequential(
            nn.Linear(6 * d, cfg.head_hidden), nn.GELU(), nn.Linear(cfg.head_hidden, cfg.out_dim)
        )

    def forward(
        self,
        vision: torch.Tensor,
        audio: torch.Tensor,
        text: torch.Tensor,
        vision_mask: torch.Tensor,
        audio_mask: torch.Tensor,
        text_mask: torch.Tensor,
    ) -> torch.Tensor:
        xs = {"vision": vision, "audio": audio, "text": text}
        masks = {"vision": vision_mask.bool(), "audio": audio_mask.bool(), "text": text_mask.bool()}
        z = {}
        for m in MODALITIES:
            x = torch.nan_to_num(xs[m].float(), nan=0.0, posinf=0.0, neginf=0.0)  # (B, L, D_m)
            h = self.project[m](x) + self.time_code[: x.shape[1]]  # (B, L, d)
            z[m] = h * masks[m][:, :, None].float()
        pooled = []
        for m in MODALITIES:
            streams = []
            for s in MODALITIES:
                if s == m:
                    continue
                h = z[m]
                for layer in self.cross[f"{s}_to_{m}"]:
                    h = layer(h, masks[m], z[s], masks[s])  # (B, L, d)
                streams.append(h)
            h = torch.cat(streams, dim=-1)  # (B, L, 2d)
            for layer in self.memory[m]:
                h = layer(h, masks[m])  # (B, L, 2d)
            pooled.append(self.pool_norm[m](masked_mean(h, masks[m])))  # (B, 2d)
        return self.head(torch.cat(pooled, dim=-1))  # (B, out_dim)
