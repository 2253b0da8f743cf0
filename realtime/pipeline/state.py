"""What the window loop publishes (``MonitorState``) and the process's resource use (``ResourceMonitor``).

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
from collections.abc import Sequence

from realtime.pipeline.inference import Prediction
from realtime.pipeline.snapshot import (
    DROP_KINDS,
    NOT_DROPS,
    PHASES,
    AlertView,
    DeviceView,
    ModalityView,
    MonitorSnapshot,
    QueueView,
    ResourceView,
)
from realtime.types import Word

# the snapshot's view types live with its composition (``realtime.pipeline.snapshot``); re-exported here
__all__ = [
    "DROP_KINDS", "NOT_DROPS", "PHASES", "AlertView", "DeviceView", "ModalityView", "MonitorSnapshot",
    "MonitorState", "QueueView", "ResourceMonitor", "ResourceView",
]  # fmt: skip


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
        self.words = 0  # words published since the start (the transcript keeps the last transcript_words)
        self.last_window_t: float | None = None
        self.alerts: tuple[AlertView, ...] = ()
        self.alert_events: tuple[AlertView, ...] = ()
        self.alert_delivery = ""

    def publish(
        self, prediction: Prediction | None, coverage: dict[str, float], t_end: float, words: Sequence[Word] = ()
    ) -> None:
        """One window's results, with the words that reached it since the last window (the transcript's only
        feeder: ``transcript`` keeps the last ``transcript_words``, ``words`` counts them all)."""
        with self._cond:
            self.windows += 1
            self.transcript.extend(words)
            self.words += len(words)
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
                "words": self.words,
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
