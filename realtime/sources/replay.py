"""Replaying files through the live sources, in the three modes whisper_streaming uses.

* ``realtime`` — items are delivered at wall-clock pace (the file plays like a live device).
* ``clock-stopped`` — a :class:`ManualClock` is advanced only by the replay, and only after every consumer
  has taken what was delivered (and any registered idle checks hold), so timestamps are exactly as if in
  real time but computation costs no clock time: deterministic, for tests.
* ``fast`` — as fast as the sources can decode; timestamps still follow the media time.

The camera-file and audio-file sources of one clip share one :class:`ReplayTimeline`: media time ``m`` of
either maps to clock time ``t0 + m``, so they stay in step. In ``clock-stopped`` mode every thread that
does timed work registers as a *participant*; the clock moves to the earliest time any participant waits
for, only when all of them are waiting (a small discrete-event scheduler). Threads that merely sleep on
``timeline.clock`` (a dashboard, say) wait for the replay to move the clock and never move it themselves
while a participant is active. File sources (:class:`~realtime.sources.audio_file.AudioFileSource`, a
:class:`~realtime.sources.camera.CameraSource` on a file) register when they are *constructed*, so the
clock waits until every source of the replay has started; consumers register idle checks
(``add_idle_check``) so that it also waits for them ("as fast as the consumer takes it").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from model.errors import ConfigError
from realtime.clock import Clock, ManualClock, MonotonicClock

log = logging.getLogger(__name__)


class ReplayMode(str, Enum):
    REALTIME = "realtime"
    CLOCK_STOPPED = "clock-stopped"
    FAST = "fast"


@dataclass
class ReplayConfig:
    """How file sources are replayed (see module docstring)."""

    mode: Literal["realtime", "clock-stopped", "fast"] = "realtime"
    loop: bool = False  # restart files at their end (media time keeps increasing)
    # clock-stopped: hold the clock until readers took every item (audio: all readers drained; camera:
    # each frame taken by a wait_next reader); a source with no reader yet waits for its first one
    wait_for_readers: bool = True
    stall_timeout_s: float = 10.0  # clock-stopped: wall seconds to wait for slow readers before moving on
    audio_block_s: float = 0.05  # audio-file sources deliver blocks of this length

    def __post_init__(self) -> None:
        if self.mode not in ("realtime", "clock-stopped", "fast"):
            raise ConfigError(f"replay.mode must be realtime, clock-stopped or fast, got {self.mode!r}")
        if self.stall_timeout_s <= 0:
            raise ConfigError("replay.stall_timeout_s must be > 0")
        if not 0.005 <= self.audio_block_s <= 1.0:
            raise ConfigError("replay.audio_block_s must be between 0.005 and 1.0 seconds")


class _TimelineClock:
    """Clock facade for clock-stopped replay: ``now`` reads the manual clock; ``sleep`` waits until the
    replay has moved it (or moves it itself when no participant is active)."""

    def __init__(self, timeline: ReplayTimeline) -> None:
        self._tl = timeline

    def now(self) -> float:
        return self._tl._manual.now()

    def sleep(self, seconds: float) -> None:
        tl = self._tl
        with tl._cond:
            target = tl._manual.now() + max(0.0, seconds)
            while tl._manual.now() < target:
                if not tl._participants:
                    tl._manual.set(target)
                    tl._gen += 1
                    tl._cond.notify_all()
                    break
                tl._cond.wait(0.05)


class ReplayParticipant:
    """A thread that delivers items at given clock times through the timeline."""

    def __init__(self, timeline: ReplayTimeline, name: str) -> None:
        self.timeline = timeline
        self.name = name
        self.waiting_for: float | None = None
        self.finished = False

    def wait_until(self, t: float, stop: threading.Event | None = None) -> bool:
        """Block until the clock reaches ``t`` (per the mode). False if ``stop`` was set meanwhile."""
        return self.timeline._wait_until(self, t, stop)

    def finish(self) -> None:
        self.timeline._finish(self)

    def __enter__(self) -> ReplayParticipant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


class ReplayTimeline:
    """Shared media-time → clock-time mapping and pacing for the file sources of one replay."""

    def __init__(
        self,
        mode: ReplayMode | str = ReplayMode.REALTIME,
        clock: Clock | None = None,
        stall_timeout_s: float = 10.0,
    ) -> None:
        self.mode = ReplayMode(mode)
        self.stall_timeout_s = stall_timeout_s
        self._cond = threading.Condition()
        self._participants: list[ReplayParticipant] = []
        self._idle_checks: dict[str, Callable[[], bool]] = {}
        self._t0: float | None = None
        self._gen = 0
        self.stalls = 0
        if self.mode is ReplayMode.CLOCK_STOPPED:
            if isinstance(clock, ManualClock):
                self._manual = clock
            else:
                self._manual = ManualClock(clock.now() if clock is not None else 0.0)
            self.clock: Clock = _TimelineClock(self)
        else:
            self._manual = ManualClock()
            self.clock = clock if clock is not None else MonotonicClock()

    @classmethod
    def from_config(cls, config: ReplayConfig, clock: Clock | None = None) -> ReplayTimeline:
        return cls(config.mode, clock, stall_timeout_s=config.stall_timeout_s)

    # ---- time mapping --------------------------------------------------------------------------------------
    def start(self, at: float | None = None) -> float:
        """Fix clock time of media time 0 (first call wins; sources call it on their first item)."""
        with self._cond:
            if self._t0 is None:
                self._t0 = self.clock.now() if at is None else float(at)
            return self._t0

    @property
    def t0(self) -> float | None:
        with self._cond:
            return self._t0

    def to_clock(self, media_t: float) -> float:
        t0 = self._t0 if self._t0 is not None else self.start()
        return t0 + media_t

    # ---- participants and consumers ------------------------------------------------------------------------
    def participant(self, name: str) -> ReplayParticipant:
        p = ReplayParticipant(self, name)
        with self._cond:
            self._participants.append(p)
            self._gen += 1
        return p

    def add_idle_check(self, name: str, check: Callable[[], bool]) -> None:
        """clock-stopped: the clock only advances while ``check()`` is True (e.g. a worker drained its
        queue). Checks run without the timeline lock held; they must be quick and non-blocking."""
        with self._cond:
            self._idle_checks[name] = check

    def remove_idle_check(self, name: str) -> None:
        with self._cond:
            self._idle_checks.pop(name, None)

    def notify(self) -> None:
        """Consumers may call this when they become idle, to advance a clock-stopped replay sooner."""
        with self._cond:
            self._cond.notify_all()

    def _finish(self, p: ReplayParticipant) -> None:
        with self._cond:
            if not p.finished:
                p.finished = True
                p.waiting_for = None
                if p in self._participants:
                    self._participants.remove(p)
                self._gen += 1
                self._cond.notify_all()

    def _consumers_idle(self) -> bool:
        with self._cond:
            checks = list(self._idle_checks.items())
        for name, check in checks:
            try:
                if not check():
                    return False
            except Exception:  # a broken check must not wedge the replay
                log.exception("replay idle check '%s' raised; ignoring it", name)
        return True

    def _wait_until(self, p: ReplayParticipant, t: float, stop: threading.Event | None) -> bool:
        if self.mode is ReplayMode.FAST:
            return not (stop is not None and stop.is_set())
        if self.mode is ReplayMode.REALTIME:
            while True:
                if stop is not None and stop.is_set():
                    return False
                remaining = t - self.clock.now()
                if remaining <= 0:
                    return True
                if stop is not None:
                    stop.wait(min(remaining, 0.5))
                else:
                    time.sleep(min(remaining, 0.5))
        # clock-stopped
        with self._cond:
            p.waiting_for = t
            self._gen += 1
            self._cond.notify_all()
            blocked_since: float | None = None
            try:
                while True:
                    if stop is not None and stop.is_set():
                        return False
                    if self._manual.now() >= t - 1e-9:
                        return True
                    waiting = [q.waiting_for for q in self._participants]
                    if waiting and all(w is not None for w in waiting):
                        target = min(w for w in waiting if w is not None)
                        gen = self._gen
                        self._cond.release()
                        try:
                            idle = self._consumers_idle()
                        finally:
                            self._cond.acquire()
                        # stall watchdog: wall time, only to survive a reader that never reads
                        wall = time.monotonic()
                        if idle:
                            blocked_since = None
                        elif blocked_since is None:
                            blocked_since = wall
                        stalled = blocked_since is not None and wall - blocked_since > self.stall_timeout_s
                        if gen == self._gen and (idle or stalled):
                            if stalled:
                                self.stalls += 1
                                log.warning(
                                    "clock-stopped replay: consumers not idle after %.1f s; "
                                    "advancing the clock anyway",
                                    self.stall_timeout_s,
                                )
                                blocked_since = None
                            self._manual.set(target)
                            self._gen += 1
                            self._cond.notify_all()
                            continue
                    self._cond.wait(0.002)
            finally:
                p.waiting_for = None
                self._gen += 1


def is_url(text: str) -> bool:
    """True for stream addresses (``scheme://…``) as opposed to file paths and device indices."""
    return "://" in text
