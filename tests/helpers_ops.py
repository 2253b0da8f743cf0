"""Shared pieces of the alert / metrics / profiling tests: a real replay pipeline on the live-v1 feature set.

The checkpoint is a small real MMCL (random weights, fixed seed) on ``live-v1`` and the monitor computes
``live-v1`` features (``features.feature_set=live-v1``): old checkpoints keep working, and v1 is the
cheaper feature set on the test machines. The engine is built here (a real eager backend) and handed to
``build_pipeline``."""

from __future__ import annotations

from pathlib import Path

from helpers_monitor import ffmpeg, shared_recognizer, shared_text_embedder


def v1_checkpoint(path: Path, seed: int = 0) -> Path:
    import torch

    from model.checkpoint import save_checkpoint
    from model.config import ModelConfig
    from model.evaluate import TaskInfo
    from model.featureset import live_feature_set
    from model.mmcl import MMCL

    fs = live_feature_set("live-v1")
    d = fs.dims
    torch.manual_seed(seed)
    cfg = ModelConfig(dim_vision=d["vision"], dim_audio=d["audio"], dim_text=d["text"], d_model=32, n_heads=4,
                      head_hidden=32)  # fmt: skip
    save_checkpoint(path, MMCL(cfg).eval(), task=TaskInfo(task="regression", label_kind="msa"), feature_set=fs)
    return path


def v1_engine(checkpoint: Path):
    from model.backends import create_backend
    from model.checkpoint import load_checkpoint
    from model.featureset import live_feature_set
    from realtime.pipeline.inference import InferenceEngine

    loaded = load_checkpoint(checkpoint, expected_features=live_feature_set("live-v1"))
    return InferenceEngine(create_backend("eager", loaded), loaded.task, contributions=True)


def ops_pipeline(checkpoint: Path, clip: Path, *, mode: str = "clock-stopped", log: Path | None = None,
                 overrides: list[str] | None = None):  # fmt: skip
    """A real Pipeline replaying ``clip`` (camera + audio) on live-v1 (shared text/ASR models)."""
    from mmcl.app_config import load_app_config
    from realtime.pipeline.session import build_pipeline

    ov = [f"sources.replay.mode={mode}", f"sources.camera.source={clip}", f"sources.microphone.device={clip}",
          "features.feature_set=live-v1", *([f"monitor.log={log}"] if log else []), *(overrides or [])]  # fmt: skip
    app = load_app_config(overrides=ov)
    return build_pipeline(app, mode="replay", engine=v1_engine(checkpoint), embedder_factory=shared_text_embedder,
                          recognizer=shared_recognizer())  # fmt: skip


def blocked_camera_clip(crema3: Path, out: Path, start_s: float = 2.0, end_s: float = 4.6) -> Path:
    """The CREMA-D clip with the camera blocked (black picture) from ``start_s`` to ``end_s``: the face is
    lost for 2.6 s while the speech goes on (the "looked away" case)."""
    box = f"drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='between(t,{start_s},{end_s})'"
    ffmpeg("-i", str(crema3), "-vf", box, "-c:v", "mpeg4", "-q:v", "4", "-c:a", "copy", str(out))
    return out
