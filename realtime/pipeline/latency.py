"""Per-stage latency accounting (DESIGN §8): recent samples per stage, percentiles on demand.

Stages recorded by the monitor (all in seconds; summaries in milliseconds):

==================  ==========================================================================================
``face``            frame capture → face features ready (face worker), on the session clock
``voice``           end of a 100 ms audio step → its voice features ready (includes the 21 ms look-ahead)
``asr_commit``      end of a spoken word → word committed by the streaming ASR
``text``            word committed → its phrase embedding ready (text worker)
``window``          compute time of one window build (drain queues + resample, ``perf_counter``)
``inference``       compute time of the backend call that scores a window (batch 1, ``perf_counter``)
``attribution``     compute time of the masked-modality call (batch 3), run after the prediction is published
``render``          compute time of one dashboard render (``perf_counter``)
``e2e_published``   capture of the newest input in a window → its prediction published in the state
``e2e``             capture of the newest input in a window → that prediction shown on screen
==================  ==========================================================================================

Latencies between a capture time and a later event use the one session clock; pure compute stages use
``time.perf_counter``. In clock-stopped replay the session clock does not move while computing, so the
clock-based stages show the *algorithmic* latency (buffering, look-ahead, ASR agreement) without compute.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

STAGES: tuple[str, ...] = (
    "face",
    "voice",
    "asr_commit",
    "text",
    "window",
    "inference",
    "attribution",
    "render",
    "e2e_published",
    "e2e",
)
STAGE_LABELS: dict[str, str] = {
    "face": "capture → face features",
    "voice": "capture → voice features",
    "asr_commit": "speech → ASR commit",
    "text": "commit → text features",
    "window": "window build",
    "inference": "inference",
    "attribution": "attribution (batch 3)",
    "render": "render",
    "e2e_published": "newest input → published",
    "e2e": "newest input → shown",
}


@dataclass(frozen=True)
class LatencyStat:
    """Percentiles of one stage in milliseconds over the recent samples; ``count`` = all samples ever."""

    stage: str
    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "mean_ms": self.mean_ms,
        }


def stat_of(stage: str, seconds: np.ndarray | list[float], count: int | None = None) -> LatencyStat:
    """Percentiles (ms) of ``seconds``; None fields when there is no sample."""
    x = np.asarray(seconds, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = int(x.size if count is None else count)
    if x.size == 0:
        return LatencyStat(stage, n, None, None, None, None, None)
    ms = x * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return LatencyStat(stage, n, float(p50), float(p95), float(p99), float(ms.max()), float(ms.mean()))


class LatencyTracker:
    """Thread-safe: any worker records, any reader summarises. Keeps the last ``max_samples`` per stage."""

    def __init__(self, max_samples: int = 4000) -> None:
        self.max_samples = max_samples
        self._lock = threading.Lock()
        self._samples: dict[str, collections.deque[float]] = {}
        self._counts: dict[str, int] = {}
        self._last: dict[str, float] = {}
        self._listeners: list[Callable[[str, float], None]] = []

    def add_listener(self, fn: Callable[[str, float], None]) -> None:
        """Also hand every sample ``(stage, seconds)`` to ``fn`` (e.g. Prometheus histograms); ``fn`` runs on
        the recording thread and must be quick."""
        self._listeners.append(fn)

    def record(self, stage: str, seconds: float) -> None:
        if seconds != seconds:  # NaN
            return
        for fn in self._listeners:
            fn(stage, float(seconds))
        with self._lock:
            d = self._samples.get(stage)
            if d is None:
                d = self._samples[stage] = collections.deque(maxlen=self.max_samples)
                self._counts[stage] = 0
            d.append(float(seconds))
            self._counts[stage] += 1
            self._last[stage] = float(seconds)

    def last(self, stage: str) -> float | None:
        """The most recent sample of ``stage`` (seconds), or None."""
        with self._lock:
            return self._last.get(stage)

    def record_many(self, stage: str, values: list[float]) -> None:
        for v in values:
            self.record(stage, v)

    def stat(self, stage: str) -> LatencyStat:
        with self._lock:
            values = list(self._samples.get(stage, ()))
            count = self._counts.get(stage, 0)
        return stat_of(stage, values, count)

    def summary(self) -> dict[str, LatencyStat]:
        """Every stage that has samples, in ``STAGES`` order (unknown stages after)."""
        with self._lock:
            names = list(self._samples)
        order = [s for s in STAGES if s in names] + [s for s in names if s not in STAGES]
        return {s: self.stat(s) for s in order}

    def reset(self) -> None:
        with self._lock:
            self._samples.clear()
            self._counts.clear()
            self._last.clear()
