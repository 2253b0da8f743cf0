"""The Improved MMCL network (paper §III), reading top to bottom.

    X_m (B, L, D_m) ──normalise──▶ project ──▶ Z_m (B, L, d)                       for m in v, a, t
    Z_m, Z_p, Z_q ──CSD──▶ common Zc_m, specific Zs_m (B, L, d)
    Zc_m ──[SelfAttn + FF + residual] × enhance_layers──▶ Z~c_m
    (Z~c_m, Zs_m) ──[CrossAttn(q=Z~c, kv=Zs) + FF] × cross_layers──▶ Z~_m
    masked mean over real steps ──▶ LN ──▶ concat [v, a, t] (B, 3d) ──▶ head ──▶ (B, num_labels·num_classes)

Ablations (Table I): ``no_csd`` (common = specific = Z), ``no_self_attn`` (FF only), ``no_cross_attn``
(specific added instead of attended). Inputs may contain NaN/inf (replaced by 0) and absent modalities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from model.config import ModelConfig
from model.csd import common_specific
from model.errors import ConfigError
from model.featureset import MODALITIES
from model.layers import AttentionPool, EnhanceBlock, IntegrateBlock, masked_last, masked_mean


@dataclass
class MMCLOutput:
    prediction: torch.Tensor  # (B, num_labels * num_classes)
    common: dict[str, torch.Tensor]  # pooled enhanced common embedding per modality, (B, d)
    present: dict[str, torch.Tensor]  # (B,) bool: the modality has at least one real step


class MMCL(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        dims = cfg.input_dims
        missing = [m for m, d in dims.items() if d <= 0]
        if missing:
            raise ConfigError(
                f"model input sizes are unknown for {', '.join(missing)}: set model.dim_<modality> or build the "
                "model from a dataset (sizes are read from the data)"
            )
        self.cfg = cfg
        d = cfg.d_model
        use_self = cfg.ablation != "no_self_attn"
        use_cross = cfg.ablation != "no_cross_attn"
        for m in MODALITIES:
            # Per-feature standardisation with statistics of the training data (set by the trainer).
            self.register_buffer(f"mean_{m}", torch.zeros(dims[m]))
            self.register_buffer(f"std_{m}", torch.ones(dims[m]))
        self.project = nn.ModuleDict({m: nn.Linear(dims[m], d) for m in MODALITIES})  # ≡ Conv1d(k=1)
        self.register_buffer("time_code", sinusoidal_code(cfg.max_steps, d) if cfg.positional else None)
        self.enhance = nn.ModuleDict(
            {
                m: nn.ModuleList(
                    EnhanceBlock(d, cfg.n_heads, cfg.ff_mult, cfg.dropout, use_self)
                    for _ in range(cfg.enhance_layers)
                )
                for m in MODALITIES
            }
        )
        self.integrate = nn.ModuleDict(
            {
                m: nn.ModuleList(
                    IntegrateBlock(d, cfg.n_heads, cfg.ff_mult, cfg.dropout, use_cross, cfg.specific_residual)
                    for _ in range(cfg.cross_layers)
                )
                for m in MODALITIES
            }
        )
        width = 2 * d if cfg.pool == "mean_last" else d  # per modality, into the head
        self.pool_norm = nn.ModuleDict({m: nn.LayerNorm(width) for m in MODALITIES})
        if cfg.pool == "attention":
            self.attn_pool = nn.ModuleDict({m: AttentionPool(d) for m in MODALITIES})
        self.head = nn.Sequential(
            nn.Linear(3 * width, cfg.head_hidden),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.head_hidden, cfg.out_dim),
        )

    @torch.no_grad()
    def set_input_stats(self, stats: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Set the per-feature mean/std used to standardise inputs (std floored to avoid blow-ups)."""
        for m, (mean, std) in stats.items():
            getattr(self, f"mean_{m}").copy_(torch.as_tensor(mean, dtype=torch.float32))
            getattr(self, f"std_{m}").copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-3))

    def encode(
        self,
        vision: torch.Tensor,
        audio: torch.Tensor,
        text: torch.Tensor,
        vision_mask: torch.Tensor,
        audio_mask: torch.Tensor,
        text_mask: torch.Tensor,
    ) -> MMCLOutput:
        xs = {"vision": vision, "audio": audio, "text": text}
        masks = {"vision": vision_mask.bool(), "audio": audio_mask.bool(), "text": text_mask.bool()}
        z = {m: self.latent_steps(m, xs[m], masks[m]) for m in MODALITIES}

        common: dict[str, torch.Tensor] = {}
        specific: dict[str, torch.Tensor] = {}
        for m in MODALITIES:
            if self.cfg.ablation == "no_csd":
                common[m], specific[m] = z[m], z[m]
            else:
                others = [o for o in MODALITIES if o != m]
                common[m], specific[m] = common_specific(
                    z[m], [z[o] for o in others], masks[m], [masks[o] for o in others], self.cfg.csd,
                    self.cfg.csd_alone,
                )  # (B, L, d) each

        pooled: list[torch.Tensor] = []
        pooled_common: dict[str, torch.Tensor] = {}
        for m in MODALITIES:
            h = common[m]
            for block in self.enhance[m]:
                h = block(h, masks[m])  # (B, L, d)
            pooled_common[m] = masked_mean(h, masks[m])  # (B, d)
            for block in self.integrate[m]:
                h = block(h, specific[m], masks[m])  # (B, L, d)
            pooled.append(self.pool_norm[m](self._pool(m, h, masks[m])))  # (B, d) or (B, 2d)
        fused = torch.cat(pooled, dim=-1)  # (B, 3d) or (B, 6d)
        return MMCLOutput(
            prediction=self.head(fused),
            common=pooled_common,
            present={m: masks[m].any(dim=1) for m in MODALITIES},
        )

    def latent_steps(self, m: str, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Z_m (B, L, d): modality ``m``'s steps (B, L, D_m) standardised, projected (+ time code), zero at padding."""
        x = torch.nan_to_num(x.float(), nan=0.0, posinf=0.0, neginf=0.0)
        x = (x - getattr(self, f"mean_{m}")) / getattr(self, f"std_{m}")
        h = self.project[m](x)  # (B, L, d)
        if self.time_code is not None:
            h = h + self.time_code[: h.shape[1]]
        return h * mask[:, :, None].float()

    def _pool(self, m: str, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.cfg.pool == "attention":
            return self.attn_pool[m](h, mask)
        if self.cfg.pool == "mean_last":
            return torch.cat([masked_mean(h, mask), masked_last(h, mask)], dim=-1)
        return masked_mean(h, mask)

    def forward(
        self,
        vision: torch.Tensor,
        audio: torch.Tensor,
        text: torch.Tensor,
        vision_mask: torch.Tensor,
        audio_mask: torch.Tensor,
        text_mask: torch.Tensor,
    ) -> torch.Tensor:
        """(B, L, D_v), (B, L, D_a), (B, L, D_t), three (B, L) masks → (B, num_labels·num_classes)."""
        return self.encode(vision, audio, text, vision_mask, audio_mask, text_mask).prediction


def sinusoidal_code(steps: int, d: int) -> torch.Tensor:
    """The Transformer's sinusoidal position code (steps, d). Shared by all modalities, so the CSD
    similarity between step i of one modality and step j of another also reflects |i − j|."""
    pos = torch.arange(steps, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    code = torch.zeros(steps, d)
    code[:, 0::2] = torch.sin(pos * div)
    code[:, 1::2] = torch.cos(pos * div[: d // 2])
    return code


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
