"""Shared pieces of the calibration tests: live-shaped windows, planted datasets on the live feature set."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np

from model.backends.base import ModelInputs
from model.featureset import LIVE_FEATURE_SET, FeatureSet

OLD_FEATURE_SET: FeatureSet = dataclasses.replace(LIVE_FEATURE_SET, version="live-v0")


def live_windows(n: int, steps: int = 50, seed: int = 0, dims: dict[str, int] | None = None) -> ModelInputs:
    """n windows on the live feature set (``dims``: another one's) with masked steps (face lost, silence, …)."""
    rng = np.random.default_rng(seed)
    dims = dims or LIVE_FEATURE_SET.dims
    vision = rng.random((n, steps, dims["vision"])).astype(np.float32)
    vision[..., 52:55] = rng.normal(0, 10, (n, steps, 3))  # head pose in degrees
    vision[..., 55] = 1.0
    audio = rng.normal(0, 5, (n, steps, dims["audio"])).astype(np.float32)
    text = rng.normal(0, 0.05, (n, steps, dims["text"])).astype(np.float32)
    masks = {m: rng.random((n, steps)) > 0.2 for m in ("vision", "audio", "text")}
    for m, x in (("vision", vision), ("audio", audio), ("text", text)):
        x[~masks[m]] = 0.0
    return ModelInputs(vision, audio, text, masks["vision"], masks["audio"], masks["text"])


def planted_live_pickle(
    path: Path, n: tuple[int, int, int] = (60, 30, 30), steps: int = 10, seed: int = 0, dims: dict | None = None
) -> Path:
    """A planted-signal MMSA pickle; with the live dims it carries the live feature-set record."""
    from model.data.planted import make_planted_mmsa

    raw = make_planted_mmsa(*n, seq_len=steps, dims=dims or LIVE_FEATURE_SET.dims, seed=seed)
    if dims is None:
        raw["feature_set"] = LIVE_FEATURE_SET.to_dict()
    with path.open("wb") as f:
        pickle.dump(raw, f)
    return path


def snapshot_with(prediction, score_range: tuple[float, float] = (-3.0, 3.0)):
    """A minimal monitor snapshot holding ``prediction`` (for rendering dashboard panels)."""
    from realtime.pipeline.state import MonitorSnapshot, ResourceView

    return MonitorSnapshot(
        now=1.0,
        elapsed_s=1.0,
        mode="replay",
        replay_mode="fast",
        banner=None,
        backend="eager",
        model="m.pt",
        running=True,
        finished=False,
        prediction=prediction,
        score_range=score_range,
        history=(),
        trend_history=(),
        windows=1,
        windows_skipped=0,
        empty_windows=0,
        phase="running",
        modalities=(),
        transcript=(),
        speaking=False,
        latency={},
        queues=(),
        devices=(),
        drops={},
        resources=ResourceView(cpu_percent=0.0, rss_mb=0.0, peak_rss_mb=0.0),
    )
