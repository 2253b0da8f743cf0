"""Assembling a monitor session from the app config: checkpoint → backend → engine, sources, pipeline.

``detect_devices()`` answers ``mmcl monitor --auto``: live devices when a camera *and* a microphone are
present, else the generated demo session (and the dashboard says so).
"""

from __future__ import annotations

import dataclasses
import glob
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.backends import create_backend
from model.errors import CheckpointError, DeviceError
from realtime.clock import Clock
from realtime.pipeline.eventlog import EventLog
from realtime.pipeline.inference import (
    InferenceEngine,
    checkpoint_interval_options,
    checkpoint_temperature,
)
from realtime.pipeline.pipeline import Pipeline
from realtime.sources.factory import SourcesConfig, audio_spec_is_file, build_sources

log = logging.getLogger(__name__)

DEMO_BANNER_AUTO = "DEMO session (no camera/microphone found)"
DEMO_BANNER = "DEMO session (--demo: generated speech and face)"


@dataclass(frozen=True)
class DeviceReport:
    camera: bool
    microphone: bool
    reason: str  # what was found / missing, one line


def detect_devices(camera: str = "0", microphone: str = "default") -> DeviceReport:
    """Is there a camera (``/dev/video*`` that OpenCV opens) and an audio input device (PortAudio)?"""
    cam_ok = False
    if not camera.isdigit():
        cam_ok = True  # a file or URL was named: trust it (opening errors are reported at start)
    elif glob.glob("/dev/video*"):
        try:
            import cv2

            cap = cv2.VideoCapture(int(camera))
            cam_ok = bool(cap.isOpened())
            cap.release()
        except Exception:  # any failure means "no usable camera"
            cam_ok = False
    mic_ok = audio_spec_is_file(microphone)
    if not mic_ok:
        try:
            from realtime.sources.microphone import list_input_devices

            devices = list_input_devices()
            if microphone in ("default", ""):
                mic_ok = bool(devices)
            elif microphone.isdigit():
                mic_ok = any(d.index == int(microphone) for d in devices)
            else:
                mic_ok = any(microphone.lower() in d.name.lower() for d in devices)
        except Exception:  # no PortAudio / no server: no microphone
            mic_ok = False
    missing = [n for n, ok in (("camera", cam_ok), ("microphone", mic_ok)) if not ok]
    reason = "camera and microphone found" if not missing else f"no {' and no '.join(missing)} found"
    return DeviceReport(cam_ok, mic_ok, reason)


def resolve_checkpoint(path: str | Path | None) -> Path:
    if path:
        p = Path(path)
        if not p.is_file():
            raise CheckpointError(
                f"checkpoint {p} does not exist; pass --checkpoint with a best.pt from `mmcl train`"
            )
        return p
    from model.pretrained import default_checkpoint_path

    return default_checkpoint_path()


def limit_blas_threads(threads: int) -> None:
    """Cap numpy's BLAS pool for this process (0 = leave it). The features' matrix products are small; a
    pool of N threads that spin between calls cost ≈ 30% of a core in the monitor (bench_monitor, 2 cores)."""
    if threads > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads, user_api="blas")


EngineOptions = Callable[[Any], dict[str, Any]]  # LoadedCheckpoint → extra InferenceEngine keyword arguments


def load_engine(
    app: Any, checkpoint: str | Path | None = None, engine_options: EngineOptions | None = None
) -> tuple[InferenceEngine, Path]:
    """Load the checkpoint, create the configured backend, wrap it. ``engine_options(loaded)`` adds
    keyword arguments of the engine that depend on the checkpoint (the calibration's ``window_transform``
    and ``window_recorder``: ``calibration.live.EngineCalibration``).

    The checkpoint decides the feature set: ``app.features.feature_set`` is set to the live feature set the
    checkpoint was trained on (live-v1 checkpoints keep working), and anything else is refused."""
    import torch

    from model.checkpoint import load_checkpoint
    from model.featureset import live_version_of

    mon = app.monitor
    path = resolve_checkpoint(checkpoint or mon.checkpoint or None)
    if mon.torch_threads > 0:
        torch.set_num_threads(mon.torch_threads)
    limit_blas_threads(mon.blas_threads)
    loaded = load_checkpoint(path)
    live = live_version_of(loaded.feature_set)
    if live is None:
        raise CheckpointError(
            f"{path} was trained on feature set {loaded.feature_set.ident} {loaded.feature_set.dims}, which the "
            "live monitor does not compute; use a checkpoint trained on `mmcl extract` output (mmcl-live@live-v1 "
            "or @live-v2), e.g. the shipped default"
        )
    app.features.feature_set = live.version
    if loaded.model_cfg.max_steps < app.features.window_steps:
        raise CheckpointError(
            f"{path} covers windows of at most {loaded.model_cfg.max_steps} steps, the monitor builds "
            f"{app.features.window_steps}; lower features.window_s or retrain with a larger model.max_steps"
        )
    backend = create_backend(mon.backend, loaded)
    engine = InferenceEngine(
        backend, loaded.task, contributions=mon.contributions, ema_tau_s=mon.ema_tau_s,
        temperature=checkpoint_temperature(loaded.extra), **checkpoint_interval_options(loaded.extra),
        feature_set=live.version, **(engine_options(loaded) if engine_options is not None else {}),
    )  # fmt: skip
    return engine, path


def build_pipeline(
    app: Any,
    *,
    mode: str = "live",
    banner: str | None = None,
    checkpoint: str | Path | None = None,
    clock: Clock | None = None,
    camera: bool = True,
    audio: bool = True,
    engine: InferenceEngine | None = None,
    engine_options: EngineOptions | None = None,
    **pipeline_kwargs: Any,
) -> Pipeline:
    """A ready-to-start Pipeline for ``app`` (an ``AppConfig``); opens the event log when configured.
    ``engine_options``: see ``load_engine`` (unused when ``engine`` is given)."""
    model_name = ""
    if engine is None:
        engine, path = load_engine(app, checkpoint, engine_options)
        model_name = path.name
    sources = build_sources(app.sources, clock, camera=camera, audio=audio)
    if sources.camera is None and sources.audio is None:
        raise DeviceError("neither a camera nor a microphone/audio file: pass --camera and/or --mic")
    event_log = EventLog(app.monitor.log) if app.monitor.log else None
    return Pipeline(
        sources, engine, monitor=app.monitor, features=app.features, asr=app.asr, mode=mode, banner=banner,
        model_name=model_name, event_log=event_log, **pipeline_kwargs,
    )  # fmt: skip


def demo_sources(sources: SourcesConfig, video: Path, audio: Path) -> SourcesConfig:
    """The sources config that plays the demo files in real time, looping."""
    return dataclasses.replace(
        sources,
        camera=dataclasses.replace(sources.camera, source=str(video)),
        microphone=dataclasses.replace(sources.microphone, device=str(audio)),
        replay=dataclasses.replace(sources.replay, mode="realtime", loop=True),
    )
