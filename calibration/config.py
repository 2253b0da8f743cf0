"""Configuration of the calibration package (composed into ``AppConfig.calibration``).

``record_calib`` / ``baseline`` are what ``mmcl monitor --record-calib DIR`` / ``--baseline FILE`` set;
the rest tunes how recorded windows are stored, how many feed a quantiser, and how a baseline is taken.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.errors import ConfigError


@dataclass
class CalibrationConfig:
    """Settings of calibration-window recording, quantisation, confidence calibration and user baselines."""

    record_calib: str = ""  # folder for recorded model-input windows ("" = do not record)
    record_stride: int = 2  # keep every k-th scored window (hop 0.5 s → one window per second by default)
    record_max_windows: int = 512  # stop recording after this many windows (ModelOpt wants 128–512)
    shard_windows: int = 64  # windows per shard file
    writer_queue: int = 4  # shards waiting for the writer thread (drop-newest beyond, counted)
    quant_windows: int = 256  # calibration windows fed to the quantiser (evenly spaced over the shards)
    quant_batch: int = 16  # windows per calibration batch
    baseline: str = ""  # per-user baseline YAML applied to live features ("" = none)
    baseline_min_face_frames: int = 20  # fewer frames with a face than this: the recording is refused
    baseline_min_voice_steps: int = 20  # fewer voiced 100 ms steps than this: the voice part is refused
    interval_level: float = 0.9  # coverage of the regression interval fitted by `calibrate confidence`
    ece_bins: int = 15  # equal-width confidence bins of the ECE and the reliability diagram

    def __post_init__(self) -> None:
        if self.record_stride < 1:
            raise ConfigError("calibration.record_stride must be >= 1")
        if self.record_max_windows < 1 or self.shard_windows < 1 or self.writer_queue < 1:
            raise ConfigError(
                "calibration.record_max_windows, calibration.shard_windows and calibration.writer_queue must be >= 1"
            )
        if self.quant_windows < 1 or self.quant_batch < 1:
            raise ConfigError("calibration.quant_windows and calibration.quant_batch must be >= 1")
        if self.baseline_min_face_frames < 1 or self.baseline_min_voice_steps < 1:
            raise ConfigError("calibration.baseline_min_face_frames / baseline_min_voice_steps must be >= 1")
        if not 0.5 <= self.interval_level < 1.0:
            raise ConfigError(f"calibration.interval_level must be in [0.5, 1), got {self.interval_level}")
        if not 2 <= self.ece_bins <= 100:
            raise ConfigError(f"calibration.ece_bins must be between 2 and 100, got {self.ece_bins}")
