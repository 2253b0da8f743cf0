"""Wiring calibration into a running monitor: the per-user baseline and calibration-window recording.

``attach_live_calibration(engine, cfg)`` sets the inference engine's ``window_transform`` (a
:class:`~calibration.baseline.BaselineTransform` built from ``cfg.baseline`` and the checkpoint's
training means) and ``window_recorder`` (a :class:`~calibration.recorder.ShardRecorder` writing to
``cfg.record_calib``). The engine is duck-typed (``realtime.pipeline.inference.InferenceEngine``: it has
``backend.loaded``, ``window_transform`` and ``window_recorder``), so this package imports nothing from
``realtime``. Both are checked here, before the session starts: a baseline of another feature-set version
or a calibration folder of another feature set is refused with a clear error.
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


def attach_live_calibration(engine: Any, cfg: CalibrationConfig) -> LiveCalibration | None:
    """Install the baseline transform and/or the window recorder on ``engine``; None when neither is set."""
    if not cfg.baseline and not cfg.record_calib:
        return None
    loaded = engine.backend.loaded
    live = LiveCalibration()
    if cfg.baseline:
        baseline = load_baseline(cfg.baseline, loaded.feature_set)
        live.transform = BaselineTransform(baseline, reference_means(loaded.model), loaded.feature_set)
        engine.window_transform = live.transform
        log.info("%s (%s)", live.transform.describe(), cfg.baseline)
    if cfg.record_calib:
        live.recorder = ShardRecorder(cfg.record_calib, loaded.feature_set, cfg, source="monitor")
        engine.window_recorder = live.recorder
        log.info("recording calibration windows to %s", cfg.record_calib)
    return live
