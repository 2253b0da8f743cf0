"""Tiny MMCL checkpoints for the backend/export/bench tests (fast to export and compile)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import LoadedCheckpoint, save_checkpoint
from model.config import ModelConfig
from model.evaluate import TaskInfo
from model.featureset import FeatureSet
from model.mmcl import MMCL

TINY_DIMS = {"dim_vision": 5, "dim_audio": 4, "dim_text": 6}
TINY_STEPS = 8
# Every distinct network: both CSD variants of the full model, and each ablation (no_csd ignores the variant).
VARIANTS: list[tuple[str, str]] = [
    ("none", "paper"),
    ("none", "reference"),
    ("no_csd", "reference"),
    ("no_self_attn", "paper"),
    ("no_cross_attn", "reference"),
]


def tiny_model(ablation: str = "none", csd: str = "reference", seed: int = 0, pool: str = "mean") -> MMCL:
    torch.manual_seed(seed)
    cfg = ModelConfig(**TINY_DIMS, d_model=16, n_heads=2, head_hidden=8, ablation=ablation, csd=csd, max_steps=64,
                      pool=pool)  # fmt: skip
    model = MMCL(cfg)
    # Non-trivial input statistics, as a trained checkpoint has (exercises the standardisation).
    rng = np.random.default_rng(seed)
    model.set_input_stats(
        {
            m: (
                torch.from_numpy(rng.normal(0, 2, d).astype(np.float32)),
                torch.from_numpy(rng.uniform(0.5, 3, d).astype(np.float32)),
            )
            for m, d in cfg.input_dims.items()
        }
    )
    return model.eval()


def tiny_loaded(ablation: str = "none", csd: str = "reference", seed: int = 0, pool: str = "mean") -> LoadedCheckpoint:
    model = tiny_model(ablation, csd, seed, pool)
    return LoadedCheckpoint(
        model=model,
        model_cfg=model.cfg,
        task=TaskInfo(task="regression", label_kind="msa"),
        feature_set=FeatureSet.generic("tiny", model.cfg.input_dims),
    )


def tiny_checkpoint(path: Path, ablation: str = "none", csd: str = "reference") -> Path:
    loaded = tiny_loaded(ablation, csd)
    return save_checkpoint(path, loaded.model, task=loaded.task, feature_set=loaded.feature_set)


_SHARED: list[Path] = []


def shared_cache_dir() -> str:
    """One backend cache (ONNX exports, auto choices) for the whole test process, so the tiny model is
    exported to ONNX once rather than once per test; removed when the process exits."""
    if not _SHARED:
        _SHARED.append(Path(tempfile.mkdtemp(prefix="mmcl-backend-cache-")))
        atexit.register(shutil.rmtree, _SHARED[0], True)
    return str(_SHARED[0])
