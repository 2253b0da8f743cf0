"""The one injectable monotonic clock. Every frame, audio chunk, word and stage timestamp comes from it.

``MonotonicClock`` wraps ``time.perf_counter`` (seconds since the clock was made); ``ManualClock`` only
moves when told to, for tests and for clock-stopped replay.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on this clock (monotonic)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class MonotonicClock:
    """Real time: ``time.perf_counter`` relative to the moment the clock was created."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self._t0

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that only advances through ``advance``/``set``; ``sleep`` advances it instead of waiting."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._t += max(0.0, seconds)
            return self._t

    def set(self, t: float) -> None:
        with self._lock:
            self._t = max(self._t, float(t))

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
