"""Wiring calibration into a running monitor: the per-user baseline and calibration-window recording.

``live_calibration(loaded, cfg)`` builds, for a session on the loaded checkpoint, the inference engine's
``window_transform`` (a :class:`~calibration.baseline.BaselineTransform` built from ``cfg.baseline`` and the
checkpoint's training means) and ``window_recorder`` (a :class:`~calibration.recorder.ShardRecorder`
writing to ``cfg.record_calib``); they are passed in when the engine is built (``engine_options()``;
:class:`EngineCalibration` is the hook ``mmcl monitor`` hands to ``realtime.pipeline.session.load_engine``),
never set on a running engine. This package imports nothing from ``realtime``. Both are checked here,
before the session starts: a baseline of another feature-set version or a calibration folder of another
feature set is refused with a clear error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from calibration.baseline import BaselineTransform, load_baseline, reference_means
from calibration.config import CalibrationConfig
from calibration.recorder import RecordStats, ShardRecorder

log = logging.getLogger(__name__)


@dataclass
class LiveCalibration:
    transform: BaselineTransform | None = None
    recorder: ShardRecorder | None = None

    def engine_options(self) -> dict[str, Any]:
        """Keyword arguments of ``InferenceEngine``: what it applies to and records from every window."""
        return {"window_transform": self.transform, "window_recorder": self.recorder}

    def close(self) -> RecordStats | None:
        return self.recorder.close() if self.recorder is not None else None

    def session_info(self, cfg: CalibrationConfig) -> dict[str, Any]:
        """What the event log's session record should say about calibration."""
        info: dict[str, Any] = {}
        if self.transform is not None:
            info["baseline"] = cfg.baseline
        if self.recorder is not None:
            info["record_calib"] = str(self.recorder.directory)
        return info


def live_calibration(loaded: Any, cfg: CalibrationConfig) -> LiveCalibration | None:
    """The baseline transform and/or window recorder for a session on ``loaded`` (a ``LoadedCheckpoint``);
    None when neither is configured. Pass ``engine_options()`` to the inference engine when it is built."""
    if not cfg.baseline and not cfg.record_calib:
        return None
    live = LiveCalibration()
    if cfg.baseline:
        baseline = load_baseline(cfg.baseline, loaded.feature_set)
        live.transform = BaselineTransform(baseline, reference_means(loaded.model), loaded.feature_set)
        log.info("%s (%s)", live.transform.describe(), cfg.baseline)
    if cfg.record_calib:
        live.recorder = ShardRecorder(cfg.record_calib, loaded.feature_set, cfg, source="monitor")
        log.info("recording calibration windows to %s", cfg.record_calib)
    return live


class EngineCalibration:
    """The ``engine_options`` hook of ``load_engine`` / ``connect_remote_engine``: called with the loaded
    checkpoint before the engine is built, it builds the session's :class:`LiveCalibration` (kept in
    ``live``) and returns the engine's ``window_transform`` / ``window_recorder`` arguments."""

    def __init__(self, cfg: CalibrationConfig) -> None:
        self.cfg = cfg
        self.live: LiveCalibration | None = None

    def __call__(self, loaded: Any) -> dict[str, Any]:
        self.live = live_calibration(loaded, self.cfg)
        return self.live.engine_options() if self.live is not None else {}
