"""What the dashboard and the headless printer read: an immutable snapshot of the monitor.

``MonitorState`` holds what the window loop publishes (prediction, history, per-modality evidence) under
a lock, with a version counter readers can wait on (``wait_newer``) — the pipeline never waits for a
reader. ``realtime.pipeline.snapshot.compose_snapshot`` composes a :class:`MonitorSnapshot` from it plus the
stats of the sources and workers (``Pipeline.snapshot()``). Snapshots hold facts (statuses, rates,
levels, counters); the dashboard's panels write every word shown.
"""

from __future__ import annotations

import collections
import os
import resource
import threading
import time
from dataclasses import dataclass, field

from realtime.pipeline.inference import Prediction
from realtime.pipeline.latency import LatencyStat
from realtime.types import Word


@dataclass(frozen=True)
class ModalityView:
    """Presence and evidence of one modality, as facts (the dashboard words them).

    ``live`` = present right now (vision: a face found in a frame at most ``FACE_LIVE_S`` old; audio:
    speech or voice; text: a word in the last few seconds); ``coverage`` = share of observed steps in the
    last window; ``contribution`` = masked-modality delta of the last prediction (None when absent).
    ``source`` names the input behind it (``camera``, the audio source's kind, ``asr``; ``""`` = none
    configured) and ``source_status`` / ``source_message`` its state. Vision: ``rate_hz`` = camera frames
    per second. Audio: ``voiced`` (the newest step above the silence floor), ``speaking`` (the ASR is in an
    utterance), ``level_dbfs`` = level of the last voiced audio (None before any). Text: ``words`` = words
    that ended in the last ``window_s`` seconds."""

    name: str
    live: bool
    coverage: float
    contribution: float | None
    source: str = ""
    source_status: str = ""
    source_message: str = ""
    rate_hz: float | None = None
    voiced: bool = False
    speaking: bool = False
    level_dbfs: float | None = None
    words: int | None = None
    window_s: float = 0.0


@dataclass(frozen=True)
class DeviceView:
    name: str
    kind: str
    status: str
    message: str
    rate_hz: float = 0.0
    delivered: int = 0
    dropped: int = 0
    overflow: int = 0
    reconnects: int = 0
    commit_p50_s: float | None = None  # the ASR: commit latency p50 (word end → committed)


@dataclass(frozen=True)
class QueueView:
    name: str
    depth: int
    capacity: int
    dropped: int
    peak: int = 0


@dataclass(frozen=True)
class ResourceView:
    cpu_percent: float  # whole process, % of one core, since the previous sample
    rss_mb: float
    peak_rss_mb: float
    threads: dict[str, float] = field(default_factory=dict)  # % of one core per named thread group


@dataclass(frozen=True)
class AlertView:
    """One alert as readers see it (published by ``realtime.alerts.runtime``): an event (``kind`` fire /
    clear, ``seq`` increasing) or a banner entry (``kind`` active / cleared, ``seq`` 0)."""

    seq: int
    kind: str
    rule: str
    severity: str  # info | warning | critical
    message: str
    t: float  # seconds since the session started (banner: when it fired or cleared)
    fired_at: float  # seconds since the session started
    headless: bool = True  # print it in --headless output
    bell: bool = False  # ring the terminal bell (fire events)


PHASES = ("idle", "loading", "opening", "running", "ending", "finished", "stopped", "failed")
# drop counters of a snapshot, by kind (also the ``kind`` label of the mmcl_drops metric); plus queue:NAME
DROP_KINDS = (
    "camera_frames_replaced_slot", "camera_frames_skipped_fps_cap", "camera_corrupt_frames_skipped",
    "audio_overflow_events", "audio_dropped_s", "audio_non_finite_samples_zeroed", "asr_dropped_s_backlog",
    "windows_skipped", "event_log_lines_not_written",
)  # fmt: skip
NOT_DROPS = frozenset({"camera_frames_skipped_fps_cap"})


@dataclass(frozen=True)
class MonitorSnapshot:
    now: float  # session clock
    elapsed_s: float  # since the pipeline started (session clock)
    mode: str  # live | replay | demo
    replay_mode: str  # realtime | clock-stopped | fast
    banner: str | None  # e.g. "DEMO session (no camera/microphone found)"
    backend: str
    model: str
    running: bool
    finished: bool
    prediction: Prediction | None
    score_range: tuple[float, float]
    history: tuple[tuple[float, float], ...]  # (t, score)
    trend_history: tuple[tuple[float, float], ...]  # (t, trend)
    windows: int
    windows_skipped: int
    empty_windows: int  # windows without any modality present (not scored)
    phase: str  # idle | loading | opening | running | ending | finished | stopped | failed (see PHASES)
    modalities: tuple[ModalityView, ...]
    transcript: tuple[Word, ...]
    speaking: bool
    latency: dict[str, LatencyStat]
    queues: tuple[QueueView, ...]
    devices: tuple[DeviceView, ...]
    drops: dict[str, float]  # cumulative, by kind (DROP_KINDS; ``queue:NAME`` per queue); audio in seconds
    resources: ResourceView
    asr_lag_s: float = 0.0  # audio waiting for the ASR
    partial: str = ""  # the ASR's not-yet-committed hypothesis (may still change; display only)
    alerts: tuple[AlertView, ...] = ()  # banner: active alerts, then recently cleared ones
    alert_events: tuple[AlertView, ...] = ()  # the most recent fire/clear events (seq increasing)
    alert_delivery: str = ""  # command/webhook counters, one line ("" = none configured)
    arousal_history: tuple[tuple[float, float], ...] = ()  # (t, arousal): models with an arousal head
    fault_in: str = ""  # where the last failure happened (``inference``, ``window loop``); "" = none
    fault: str = ""  # that failure ("ValueError: …"); cleared by the next phase change
    last_window_empty: bool = False  # the newest window had no modality present (nothing to score)
    log_error: str = ""  # the event log stopped writing, and why

    @property
    def drops_total(self) -> float:
        """Every drop counter added up, frame-rate-cap skips left out (a cap is a setting, not a loss)."""
        return sum(float(v) for k, v in self.drops.items() if k not in NOT_DROPS)


class MonitorState:
    """Published results of the window loop (thread-safe)."""

    def __init__(self, history_s: float = 120.0, transcript_words: int = 60) -> None:
        self.history_s = history_s
        self._cond = threading.Condition()
        self.version = 0
        self.prediction: Prediction | None = None
        self.coverage: dict[str, float] = {}
        self.windows = 0
        self.windows_skipped = 0
        self.empty_windows = 0
        self.history: collections.deque[tuple[float, float]] = collections.deque()
        self.trend_history: collections.deque[tuple[float, float]] = collections.deque()
        self.arousal_history: collections.deque[tuple[float, float]] = collections.deque()
        self.transcript: collections.deque[Word] = collections.deque(maxlen=transcript_words)
        self.last_window_t: float | None = None
        self.alerts: tuple[AlertView, ...] = ()
        self.alert_events: tuple[AlertView, ...] = ()
        self.alert_delivery = ""

    def publish(self, prediction: Prediction | None, coverage: dict[str, float], t_end: float) -> None:
        with self._cond:
            self.windows += 1
            self.last_window_t = t_end
            self.coverage = dict(coverage)
            if prediction is None:
                self.empty_windows += 1
            else:
                self.prediction = prediction
                self.history.append((t_end, prediction.score))
                self.trend_history.append((t_end, prediction.trend))
                if prediction.arousal is not None:
                    self.arousal_history.append((t_end, prediction.arousal))
                for hist in (self.history, self.trend_history, self.arousal_history):
                    while hist and hist[0][0] < t_end - self.history_s:
                        hist.popleft()
            self.version += 1
            self._cond.notify_all()

    def update_prediction(self, prediction: Prediction) -> None:
        """Replace the current prediction by a completed version of the same window (contributions)."""
        with self._cond:
            if self.prediction is not None and self.prediction.window == prediction.window:
                self.prediction = prediction
                self.version += 1
                self._cond.notify_all()

    def add_words(self, words: list[Word]) -> None:
        if not words:
            return
        with self._cond:
            self.transcript.extend(words)
            self.version += 1
            self._cond.notify_all()

    def set_alerts(self, banner: tuple[AlertView, ...], events: tuple[AlertView, ...], delivery: str) -> None:
        """The alert runtime's view (banner entries, recent events, delivery counters)."""
        with self._cond:
            changed = events != self.alert_events or banner != self.alerts
            self.alerts, self.alert_events, self.alert_delivery = banner, events, delivery
            if changed:
                self.version += 1
                self._cond.notify_all()

    def note_skipped(self, n: int) -> None:
        with self._cond:
            self.windows_skipped += n

    def poke(self) -> None:
        """Wake readers (e.g. a status change)."""
        with self._cond:
            self.version += 1
            self._cond.notify_all()

    def wait_newer(self, version: int, timeout: float) -> int:
        """Block up to ``timeout`` s until the version differs from ``version``; returns the current one."""
        with self._cond:
            self._cond.wait_for(lambda: self.version != version, timeout)
            return self.version

    def read(self) -> dict:
        with self._cond:
            return {
                "prediction": self.prediction,
                "coverage": dict(self.coverage),
                "windows": self.windows,
                "windows_skipped": self.windows_skipped,
                "empty_windows": self.empty_windows,
                "history": tuple(self.history),
                "trend_history": tuple(self.trend_history),
                "arousal_history": tuple(self.arousal_history),
                "transcript": tuple(self.transcript),
                "version": self.version,
                "alerts": self.alerts,
                "alert_events": self.alert_events,
                "alert_delivery": self.alert_delivery,
            }


class ResourceMonitor:
    """CPU use (% of one core) and memory of this process, sampled on demand (wall-time based).

    ``thread_groups`` maps a thread-name prefix (``face``, ``asr``, …) to a label; per-group CPU comes
    from psutil's per-thread times when psutil is available. ``samples`` keeps the CPU figure of the last
    hour only (bounded: a monitor runs for hours), so the exit summary's mean is over at most that hour.
    """

    def __init__(self, min_interval_s: float = 0.5) -> None:
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._last_wall: float | None = None
        self._last_cpu = 0.0
        self._last_threads: dict[int, float] = {}
        self._view = ResourceView(0.0, 0.0, 0.0)
        self.samples: collections.deque[float] = collections.deque(maxlen=7200)  # the last hour at 2 Hz
        try:
            import psutil

            self._proc = psutil.Process(os.getpid())
        except ImportError:  # pragma: no cover - psutil is a dependency
            self._proc = None

    def sample(self) -> ResourceView:
        now = time.monotonic()
        with self._lock:
            if self._last_wall is not None and now - self._last_wall < self.min_interval_s:
                return self._view
            t = os.times()
            cpu = t.user + t.system
            rss = peak = 0.0
            threads: dict[str, float] = {}
            if self._proc is not None:
                rss = self._proc.memory_info().rss / 2**20
                names = {th.native_id: th.name for th in threading.enumerate() if th.native_id is not None}
                per: dict[int, float] = {}
                for th in self._proc.threads():
                    per[th.id] = th.user_time + th.system_time
                if self._last_wall is not None:
                    dt = now - self._last_wall
                    for tid, c in per.items():
                        group = _group_of(names.get(tid))
                        d = c - self._last_threads.get(tid, c)
                        threads[group] = threads.get(group, 0.0) + 100.0 * d / dt
                self._last_threads = per
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
            pct = 0.0
            if self._last_wall is not None:
                pct = 100.0 * (cpu - self._last_cpu) / (now - self._last_wall)
                self.samples.append(pct)
            self._last_wall, self._last_cpu = now, cpu
            self._view = ResourceView(pct, rss, max(peak, rss), dict(sorted(threads.items())))
            return self._view

    @property
    def view(self) -> ResourceView:
        with self._lock:
            return self._view


def _group_of(thread_name: str | None) -> str:
    if not thread_name:
        return "other"  # native threads (MediaPipe, onnxruntime, torch, PortAudio)
    head = thread_name.split(":", 1)[0]
    return {"MainThread": "main"}.get(head, head)
