"""When the window loop builds its next window, and when a replay is over (replay co-ordination).

Replays (file sources) follow the sources' three modes (``realtime.sources.replay``):

* ``realtime`` — wall-clock pace: wait until the clock reaches the window's end.
* ``clock-stopped`` — the window loop is a replay participant (registered in :meth:`WindowPacer.begin`,
  before the sources start) and every stage registered an idle check (``realtime.stage.Stage``), so the
  session clock only advances when everything before it has been processed: deterministic, compute
  costs no clock time.
* ``fast`` — a window is built once every source has delivered past its end and every stage is idle
  (:meth:`WindowPacer.horizon`); slow consumers drop, counted.

Live sessions pace on the clock like ``realtime``. When every file source has ended and the clock passed
the last item (:meth:`WindowPacer.replay_over`), :meth:`WindowPacer.finish_inputs` lets each stage hand out
what it still holds (``Stage.finish_input``) before the pipeline builds one last window.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from realtime.sources.audio_file import AudioFileSource
from realtime.sources.base import SourceStatus
from realtime.sources.factory import SourceSet
from realtime.sources.replay import ReplayMode, ReplayParticipant, ReplayTimeline
from realtime.stage import Stage


class WindowPacer:
    def __init__(
        self, sources: SourceSet, timeline: ReplayTimeline, stages: Sequence[Stage], stop: threading.Event
    ) -> None:
        self.sources = sources
        self.timeline = timeline
        self.stages = stages
        self.stop = stop
        self.clock = sources.clock
        self._participant: ReplayParticipant | None = None

    @property
    def _sources(self) -> list[Any]:
        return [s for s in (self.sources.camera, self.sources.audio) if s is not None]

    @property
    def is_replay(self) -> bool:
        cam, aud = self.sources.camera, self.sources.audio
        return (cam is not None and cam.config.source_kind == "file") or isinstance(aud, AudioFileSource)

    @property
    def replay_mode(self) -> str:
        return self.timeline.mode.value if self.is_replay else "realtime"

    def begin(self) -> None:
        """Before the sources start: in a clock-stopped replay the clock waits for the window loop."""
        self._participant = None
        if self.timeline.mode is ReplayMode.CLOCK_STOPPED and self.is_replay:
            self._participant = self.timeline.participant("windows")

    def end(self) -> None:
        """The window loop is done (or never ran): the replay clock no longer waits for it. Idempotent."""
        if self._participant is not None:
            self._participant.finish()

    def wait_tick(self, t: float) -> bool:
        """Block until the window ending at ``t`` may be built; False when stopped first."""
        if self._participant is not None:
            return self._participant.wait_until(t, self.stop)
        if self.is_replay and self.timeline.mode is ReplayMode.FAST:
            while not self.stop.is_set():
                if self.horizon() >= t:
                    return True
                self.stop.wait(0.002)
            return False
        while not self.stop.is_set():
            remaining = t - self.clock.now()
            if remaining <= 0:
                return True
            self.stop.wait(min(remaining, 0.05))
        return False

    def horizon(self) -> float:
        """Fast replay: the time up to which every source has delivered and every stage has caught up."""
        if any(not s.is_idle() for s in self.stages):
            return -float("inf")
        times = []
        for src in self._sources:
            if not src.ended:
                last = src.stats().last_t
                times.append(-float("inf") if last is None else last)
        return min(times) if times else float("inf")

    def data_end(self) -> float:
        """Clock time just after the last item any source delivered."""
        ends = [s.stats().last_t for s in self._sources]
        return max((t for t in ends if t is not None), default=-float("inf")) + 0.1

    def sources_ended(self) -> bool:
        srcs = self._sources
        return bool(srcs) and all(s.ended or s.status in (SourceStatus.FAILED, SourceStatus.STOPPED) for s in srcs)

    def replay_over(self, next_t: float) -> bool:
        """Every file source ended and the next window starts past the last delivered item."""
        return self.is_replay and self.sources_ended() and next_t >= self.data_end()

    def finish_inputs(self) -> None:
        """End of a replay: each stage in order hands out what it holds (voice flush, ASR commit, embed)."""
        for stage in self.stages:
            if self.stop.is_set():
                return
            stage.finish_input(self.stop)
