"""Configuration of the live monitor (composed into ``AppConfig.monitor``).

The window length and grid rate are *not* repeated here: they are ``features.window_s`` (5 s) and
``features.grid_hz`` (10 Hz → L = 50), shared with ``mmcl extract`` so that live windows and training
windows have the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.errors import ConfigError


@dataclass
class MonitorConfig:
    """Settings of the window assembler, inference, dashboard and event log of ``mmcl monitor``."""

    hop_s: float = 0.5  # a window (the last features.window_s seconds) is built and scored every hop
    backend: str = "auto"  # a model.backends registry name, optionally name:precision (e.g. compile:bf16)
    checkpoint: str = ""  # "" = the shipped default (model.pretrained.default_checkpoint_path)
    contributions: bool = True  # per-modality evidence: masked-modality deltas (one batch of 4 per window)
    torch_threads: int = 1  # intra-op threads for inference (1 keeps the other workers' latency steady)
    blas_threads: int = 1  # numpy's BLAS pool (voice, text features); idle pool threads spin, 0 = BLAS default
    ema_tau_s: float = 3.0  # time constant of the smoothed trend (exponential moving average)
    history_s: float = 120.0  # sentiment history kept for the sparkline
    queue_size: int = 512  # capacity of each worker → assembler hand-off queue (drop-oldest, counted)
    transcript_words: int = 60  # words of rolling transcript kept in the snapshot
    refresh_hz: float = 8.0  # dashboard redraws per second (also redraws at once on a new window)
    headless_interval_s: float = 1.0  # --headless: one summary line every this many seconds
    log: str = ""  # JSONL event log path ("" = none)
    log_transcript: bool = True  # write the words of each window to the log (--no-transcript-log: False)
    latency_samples: int = 4000  # per-stage latency samples kept for the percentiles
    stop_timeout_s: float = 5.0  # join timeout per thread at stop
    demo_dir: str = ""  # "" = $XDG_CACHE_HOME/mmcl-live/demo (default ~/.cache/mmcl-live/demo)
    demo_fps: float = 15.0  # frame rate of the generated demo video
    end_of_replay_tail_s: float = 0.5  # replays: windows continue this long past the end of the media

    def __post_init__(self) -> None:
        if not 0.05 <= self.hop_s <= 10.0:
            raise ConfigError(f"monitor.hop_s must be between 0.05 and 10 seconds, got {self.hop_s}")
        check_backend_spec(self.backend, "monitor.backend")
        if self.torch_threads < 0:
            raise ConfigError("monitor.torch_threads must be >= 0 (0 = torch's default)")
        if self.blas_threads < 0:
            raise ConfigError("monitor.blas_threads must be >= 0 (0 = the BLAS library's default)")
        if self.ema_tau_s <= 0 or self.history_s <= 0:
            raise ConfigError("monitor.ema_tau_s and monitor.history_s must be > 0")
        if self.queue_size < 8:
            raise ConfigError("monitor.queue_size must be >= 8")
        if self.transcript_words < 1 or self.latency_samples < 10:
            raise ConfigError("monitor.transcript_words must be >= 1 and monitor.latency_samples >= 10")
        if not 1.0 <= self.refresh_hz <= 30.0:
            raise ConfigError(f"monitor.refresh_hz must be between 1 and 30, got {self.refresh_hz}")
        if self.headless_interval_s <= 0 or self.stop_timeout_s <= 0:
            raise ConfigError("monitor.headless_interval_s and monitor.stop_timeout_s must be > 0")
        if not 1.0 <= self.demo_fps <= 60.0:
            raise ConfigError("monitor.demo_fps must be between 1 and 60")
        if self.end_of_replay_tail_s < 0:
            raise ConfigError("monitor.end_of_replay_tail_s must be >= 0")


def check_backend_spec(spec: str, where: str) -> None:
    """``name`` or ``name:precision``: a name in the backend registry with a precision it supports (the
    registry's own ``parse_backend``, so the config accepts exactly what ``create_backend`` accepts)."""
    from model.backends import backend_names, parse_backend

    try:
        parse_backend(spec)
    except ConfigError as exc:
        raise ConfigError(
            f"{where} must be one of {', '.join(backend_names())}, optionally with :precision "
            f"(e.g. compile:bf16); got {spec!r}: {exc}"
        ) from None
