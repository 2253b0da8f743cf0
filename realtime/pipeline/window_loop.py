"""The ``windows`` thread's body: every hop, drain the stages' queues, build the window, score it, publish it.

:class:`WindowLoop` owns one session's window work: ``run()`` paces the hops (through the
:class:`~realtime.pipeline.pacing.WindowPacer`; windows the clock left behind are skipped and counted,
except in fast replay) and, once a replay is over, lets the stages hand out what they hold and builds one
last window. ``tick()`` builds the window of the last ``features.window_s`` s (``WindowAssembler``), scores
it (``InferenceEngine.predict``; modality contributions after publishing, so they never delay the
sentiment shown), publishes it to :class:`~realtime.pipeline.state.MonitorState` together with the words
that reached the window (the one feeder of the transcript: the dashboard's transcript, the summary's and the
exit line's word count and the log's ``words`` all come from what the windows saw), records the per-window
latencies, writes the event log's ``window`` line and calls the window listeners (alerts, metrics).
``mark_shown()`` turns a reader's "drew window N" into the end-to-end latency newest input → shown.

Failures never end the session: inference errors are logged and reported through ``on_fault`` (the
status line says so), a failing listener is logged and the loop goes on.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from realtime.pipeline.config import MonitorConfig
from realtime.pipeline.eventlog import EventLog, window_event
from realtime.pipeline.inference import InferenceEngine
from realtime.pipeline.latency import LatencyTracker
from realtime.pipeline.pacing import WindowPacer
from realtime.pipeline.state import MonitorState, ResourceMonitor
from realtime.pipeline.windows import Window, WindowAssembler
from realtime.pipeline.workers import Outbox
from realtime.sources.replay import ReplayMode

log = logging.getLogger(__name__)

WindowListener = Callable[[dict[str, Any], Any], None]  # (window event, Prediction | None)
SHOWN_KEPT = 64  # windows remembered for mark_shown (a reader lags a few windows at most)


class WindowLoop:
    def __init__(
        self,
        cfg: MonitorConfig,
        assembler: WindowAssembler,
        engine: InferenceEngine | None,
        state: MonitorState,
        latency: LatencyTracker,
        outboxes: tuple[Outbox, Outbox, Outbox],  # face, voice, text
        *,
        clock: Any,
        resources: ResourceMonitor | None = None,
        event_log: EventLog | None = None,
        on_fault: Callable[[str, BaseException], None] = lambda where, exc: None,
    ) -> None:
        self.cfg, self.assembler, self.engine, self.state, self.latency = cfg, assembler, engine, state, latency
        self.outboxes = outboxes
        self.clock = clock
        self.event_log = event_log
        self.on_fault = on_fault
        self.resources = resources or ResourceMonitor()
        self.listeners: list[WindowListener] = []
        self.last_empty = False  # the newest window had nothing to score
        self._lock = threading.Lock()
        self._shown: collections.OrderedDict[int, float | None] = collections.OrderedDict()  # window → newest
        self._last_shown = -1

    def reset(self) -> None:
        """Before a (re)start: an empty assembler and empty queues."""
        self.assembler.reset()
        for box in self.outboxes:
            box.drain()

    def run(self, start_at: float, pacer: WindowPacer, stop: threading.Event, on_phase: Callable[[str], None]) -> None:
        """Windows every ``hop_s`` from ``start_at`` until ``stop``, or until a replay is over (the phases
        ``ending`` then ``finished`` are reported through ``on_phase``)."""
        hop = self.cfg.hop_s
        next_t = start_at + hop
        ending = False
        while not stop.is_set():
            if not pacer.wait_tick(next_t) or stop.is_set():
                break
            behind = self.clock.now() - next_t
            if pacer.timeline.mode is not ReplayMode.FAST and behind > hop:
                missed = int(behind // hop)
                self.state.note_skipped(missed)
                log.warning("window loop fell behind by %.2f s; skipped %d window(s)", behind, missed)
                next_t += missed * hop
            self.tick(next_t, final=ending)
            next_t += hop
            if ending:
                on_phase("finished")
                return
            if pacer.replay_over(next_t):
                on_phase("ending")
                pacer.finish_inputs()  # the voice worker's last step, the ASR's last words, embedded
                ending = True

    def tick(self, t_end: float, final: bool = False) -> None:
        """Build, score and publish the window ending at ``t_end`` (``final``: the one after a replay's end)."""
        tick_at = self.clock.now()
        t0 = time.perf_counter()
        face, voice, text = self.outboxes
        self.assembler.add_vision(face.drain())
        self.assembler.add_audio(voice.drain())
        words = self.assembler.add_text(text.drain())
        window = self.assembler.build(t_end)
        build_s = time.perf_counter() - t0
        prediction, infer_s = self._predict(window)
        published = self.clock.now()
        newest = window.newest
        self.last_empty = not window.any_present
        with self._lock:
            self._shown[window.index] = newest if (prediction is not None and not final) else None
            while len(self._shown) > SHOWN_KEPT:
                self._shown.popitem(last=False)
        self.state.publish(prediction, window.coverage, t_end, words)  # the words arrive with their window
        # the window after the end of a replay holds no new input: no end-to-end figure for it
        e2e = published - newest if (newest is not None and prediction is not None and not final) else None
        prediction, attr_s = self._attribute(window, prediction)
        timings = {"window": build_s, "inference": infer_s, "attribution": attr_s, "e2e_published": e2e}
        for stage, seconds in timings.items():
            if seconds is not None:
                self.latency.record(stage, seconds)
        res = self.resources.sample()
        if self.event_log is None and not self.listeners:
            return
        event = window_event(window, prediction, timings, self.latency, published, self.cfg.log_transcript)
        event.update(tick_at=tick_at, queues={b.name: b.depth for b in self.outboxes},
                     cpu_percent=round(res.cpu_percent, 1), rss_mb=round(res.rss_mb, 1))  # fmt: skip
        if self.event_log is not None:
            self.event_log.write(event)
        for fn in self.listeners:
            try:
                fn(event, prediction)
            except Exception:
                log.exception("window listener %r failed on window %d", fn, window.index)

    def _predict(self, window: Window) -> tuple[Any, float | None]:
        if self.engine is None or not window.any_present:
            return None, None
        t1 = time.perf_counter()
        try:
            prediction = self.engine.predict(window)
        except Exception as exc:
            log.exception("inference failed on window %d", window.index)
            self.on_fault("inference", exc)
            prediction = None
        return prediction, time.perf_counter() - t1

    def _attribute(self, window: Window, prediction: Any) -> tuple[Any, float | None]:
        """Modality contributions, after publishing: they never delay the sentiment shown."""
        if prediction is None or self.engine is None or not self.engine.contributions:
            return prediction, None
        t2 = time.perf_counter()
        try:
            prediction = self.engine.attribute(window, prediction)
            self.state.update_prediction(prediction)
        except Exception:
            log.exception("attribution failed on window %d", window.index)
        return prediction, time.perf_counter() - t2

    def mark_shown(self, window: int | None, render_s: float | None = None) -> None:
        """A reader drew the prediction of ``window``: record render time and (first time only) the
        end-to-end latency newest input → shown."""
        if render_s is not None:
            self.latency.record("render", render_s)
        if window is None:
            return
        with self._lock:
            if window <= self._last_shown:
                return
            self._last_shown = window
            newest = self._shown.get(window)
        if newest is not None:
            shown_at = self.clock.now()
            self.latency.record("e2e", shown_at - newest)
            if self.event_log is not None:  # for `mmcl profile --trace` (the shown span of the window)
                self.event_log.write({"type": "shown", "window": window, "shown_at": shown_at})
