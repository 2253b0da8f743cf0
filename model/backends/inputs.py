"""Real-shaped model inputs for parity checks, warm-up and benchmarks (no data files needed).

Features are drawn around the model's own input statistics (``mean_m + std_m · N(0, 1)``, the scale the
trained network sees after its standardisation), on the live grid (``LIVE_STEPS`` = 5 s at 10 Hz = 50
steps). ``parity_cases`` adds the situations a live window really contains: masked steps (no face,
silence), a fully missing modality (no words yet), NaN/inf inside masked steps, batch 1 and batch > 1,
and a second window length for graphs with a dynamic time axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from model.backends.base import ModelInputs
from model.featureset import MODALITIES

LIVE_STEPS = 50  # the live window: features.window_s (5 s) × features.grid_hz (10 Hz)


def input_dims(model: nn.Module) -> dict[str, int]:
    """Feature sizes per modality, read from the model's config (MMCL and the MulT-style peer)."""
    cfg = model.cfg
    return {m: int(getattr(cfg, f"dim_{m}")) for m in MODALITIES}


def _stats(model: nn.Module, m: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    mean = getattr(model, f"mean_{m}", None)
    std = getattr(model, f"std_{m}", None)
    if isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor):
        return mean.detach().float().cpu().numpy(), std.detach().float().cpu().numpy()
    return np.zeros(dim, np.float32), np.ones(dim, np.float32)


def synthetic_inputs(model: nn.Module, batch: int, steps: int = LIVE_STEPS, seed: int = 0) -> ModelInputs:
    """A batch with every step real, features at the model's training scale."""
    rng = np.random.default_rng(seed)
    feats: dict[str, np.ndarray] = {}
    for m, dim in input_dims(model).items():
        mean, std = _stats(model, m, dim)
        feats[m] = (mean + std * rng.standard_normal((batch, steps, dim))).astype(np.float32)  # (B, L, D_m)
    masks = {f"{m}_mask": np.ones((batch, steps), dtype=bool) for m in MODALITIES}
    return ModelInputs(**feats, **masks)


def live_like_inputs(model: nn.Module, batch: int, steps: int = LIVE_STEPS, seed: int = 0) -> ModelInputs:
    """Like ``synthetic_inputs`` with the live window's typical gaps, cycling over the batch rows:
    row 0 complete; row 1 face lost for the last third (NaN written into those masked steps);
    row 2 audio fully missing; row 3 no words yet (text fully missing) and a short silence."""
    x = synthetic_inputs(model, batch, steps, seed)
    cut = max(1, steps - steps // 3)
    for row in range(batch):
        kind = row % 4
        if kind == 1:
            x.vision_mask[row, cut:] = False
            x.vision[row, cut:] = np.nan
            x.audio[row, cut:, 0] = np.inf
            x.audio_mask[row, cut:] = False
        elif kind == 2:
            x.audio_mask[row] = False
            x.audio[row] = 0.0
        elif kind == 3:
            x.text_mask[row] = False
            x.text[row] = 0.0
            x.audio_mask[row, : steps // 5] = False
    return x


@dataclass(frozen=True)
class ParityCase:
    name: str
    inputs: ModelInputs


def parity_cases(
    model: nn.Module, steps: int = LIVE_STEPS, batch: int = 4, dynamic_steps: bool = True, seed: int = 0
) -> list[ParityCase]:
    """The inputs every export and backend is checked on against eager PyTorch."""
    cases = [
        ParityCase(f"batch 1, L={steps}, all present", synthetic_inputs(model, 1, steps, seed)),
        ParityCase(
            f"batch 1, L={steps}, audio missing", live_like_inputs(model, 3, steps, seed + 1).select([2])
        ),
        ParityCase(
            f"batch {batch}, L={steps}, masked steps + missing modalities",
            live_like_inputs(model, batch, steps, seed + 2),
        ),
    ]
    if dynamic_steps:
        short = max(2, steps // 2 + 3)
        cases.append(
            ParityCase(f"batch 3, L={short}, masked steps", live_like_inputs(model, 3, short, seed + 3))
        )
    return cases
