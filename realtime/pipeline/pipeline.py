"""The live monitor pipeline: sources → feature workers (+ streaming ASR) → window loop → state / event log.

Threads (all daemon; every one stopped with an Event and joined with a timeout in ``stop()``):

==============  ==============================================================================================
``camera:*``    the camera source (device, file or URL) — latest-frame slot
``audio*``      the microphone (PortAudio callback → ring) or the audio-file replay
``face:face``   :class:`~realtime.pipeline.workers.FaceWorker` (MediaPipe)
``voice:voice`` :class:`~realtime.pipeline.workers.VoiceWorker` (100 ms voice steps)
``asr:asr``     :class:`~realtime.asr.AsrWorker` (faster-whisper, LocalAgreement-2)
``text:text``   :class:`~realtime.pipeline.workers.TextWorker` (MiniLM phrase embeddings)
``windows``     the window loop: every ``monitor.hop_s`` drain the workers' queues, build the window of the
                last ``features.window_s`` s (``WindowAssembler``), score it (``InferenceEngine``), publish
                it to :class:`MonitorState`, write the event log
==============  ==============================================================================================

Replays (file sources) follow the sources' three modes: ``realtime`` (wall-clock pace), ``clock-stopped``
(the window loop is a replay participant and every worker registers an idle check, so the session clock
only advances when everything before it has been processed — deterministic, compute costs no clock
time) and ``fast`` (each window is built once the sources have delivered past its end; slow consumers
drop, counted). When every file source has ended, the loop commits the ASR's pending words, builds one
last window and sets ``finished``.

Nothing here imports the dashboard: readers call ``snapshot()`` (and ``mark_shown()`` after drawing).
Alerts and metrics attach as window listeners (``add_window_listener``), called on the window thread
after each window with its log event.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from model.errors import MmclError
from realtime.asr.config import AsrConfig
from realtime.asr.worker import AsrWorker
from realtime.features.config import FeatureConfig
from realtime.pipeline.config import MonitorConfig
from realtime.pipeline.eventlog import EventLog
from realtime.pipeline.inference import InferenceEngine
from realtime.pipeline.latency import LatencyTracker
from realtime.pipeline.state import (
    AlertView,
    DeviceView,
    ModalityView,
    MonitorSnapshot,
    MonitorState,
    QueueView,
    ResourceMonitor,
)
from realtime.pipeline.windows import Window, WindowAssembler
from realtime.pipeline.workers import FaceWorker, Outbox, TextWorker, VoiceWorker
from realtime.sources.audio_file import AudioFileSource
from realtime.sources.base import SourceStatus
from realtime.sources.factory import SourceSet
from realtime.sources.replay import ReplayMode
from realtime.types import Word

log = logging.getLogger(__name__)

WindowListener = Callable[[dict[str, Any], Any], None]  # (window event, Prediction | None)

WORD_LIVE_S = 3.0  # a word ending this recently counts as "words: live"
FACE_LIVE_S = 1.0  # a frame older than this no longer says "face found"


class Pipeline:
    """Composes one session. ``start()`` loads the models and starts every thread (raising DeviceError /
    ModelAssetError / MmclError with what to do); ``stop()`` stops them all, flushes and closes the log.
    Restartable: ``start()`` after ``stop()`` runs the same sources again."""

    def __init__(
        self,
        sources: SourceSet,
        engine: InferenceEngine | None,
        *,
        monitor: MonitorConfig | None = None,
        features: FeatureConfig | None = None,
        asr: AsrConfig | None = None,
        mode: str = "live",
        banner: str | None = None,
        model_name: str = "",
        event_log: EventLog | None = None,
        session_info: dict[str, Any] | None = None,
        face_factory: Callable[[], Any] | None = None,
        embedder_factory: Callable[[], Any] | None = None,
        recognizer: Any | None = None,
    ) -> None:
        self.sources = sources
        self.engine = engine
        self.cfg = monitor or MonitorConfig()
        self.features = features or FeatureConfig()
        version = getattr(engine, "feature_set", None)
        if version and version != self.features.feature_set:  # compute what the model was trained on
            self.features = dataclasses.replace(self.features, feature_set=version)
        self.asr_cfg = asr or AsrConfig()
        self.mode = mode
        self.banner = banner
        self.model_name = model_name
        self.event_log = event_log
        self.session_info = dict(session_info or {})
        self.clock = sources.clock
        self.timeline = sources.timeline
        self.latency = LatencyTracker(self.cfg.latency_samples)
        self.state = MonitorState(self.cfg.history_s, self.cfg.transcript_words)
        self.resources = ResourceMonitor()
        self.assembler = WindowAssembler(
            self.features.window_s, self.features.grid_hz, self.features.vision_max_gap_s,
            dims=self.features.live_set.dims,
        )
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._participant: Any = None
        self._started_at: float | None = None
        self._running = False
        self._status = "idle"
        self._errors = 0
        self._shown: collections.OrderedDict[int, float | None] = collections.OrderedDict()
        self._last_shown = -1
        self._last_empty = False
        self._window_listeners: list[WindowListener] = []
        q = self.cfg.queue_size
        self.face_out: Outbox = Outbox("face→windows", q)
        self.voice_out: Outbox = Outbox("voice→windows", q)
        self.text_out: Outbox = Outbox("text→windows", q)
        tl = self.timeline
        self.face: FaceWorker | None = None
        self.voice: VoiceWorker | None = None
        self.asr: AsrWorker | None = None
        self.text: TextWorker | None = None
        if sources.camera is not None:
            self.face = FaceWorker(
                sources.camera, self.face_out, self.clock, self.latency,
                config=self.features, extractor_factory=face_factory, timeline=tl,
            )  # fmt: skip
        if sources.audio is not None:
            self.voice = VoiceWorker(
                sources.audio.open_reader("voice"), self.voice_out, self.clock, self.latency,
                config=self.features, timeline=tl,
            )  # fmt: skip
            if self.asr_cfg.enabled:
                self.asr = AsrWorker(
                    self.asr_cfg, self.clock, reader=sources.audio.open_reader("asr"), timeline=tl,
                    recognizer=recognizer,
                )  # fmt: skip
                self.text = TextWorker(
                    self.asr, self.text_out, self.clock, self.latency, config=self.features,
                    embedder_factory=embedder_factory, on_words=self._on_words, timeline=tl,
                )  # fmt: skip

    # ---- properties ----------------------------------------------------------------------------------------
    @property
    def is_replay(self) -> bool:
        cam, aud = self.sources.camera, self.sources.audio
        return (cam is not None and cam.config.source_kind == "file") or isinstance(aud, AudioFileSource)

    @property
    def replay_mode(self) -> str:
        return self.timeline.mode.value if self.is_replay else "realtime"

    @property
    def running(self) -> bool:
        return self._running

    def add_window_listener(self, fn: WindowListener) -> None:
        """Call ``fn(event, prediction)`` on the window thread after every window (the event is the log's
        ``window`` line, also without a log). Listeners must be quick (alerts, metrics); an exception is
        logged and the pipeline goes on."""
        self._window_listeners.append(fn)

    def threads(self) -> list[threading.Thread]:
        """Every thread this pipeline started that is still alive (for tests and shutdown checks)."""
        out = []
        for s in (self.sources.camera, self.sources.audio):
            t = getattr(s, "_thread", None) if s is not None else None
            if t is not None and t.is_alive():
                out.append(t)
        for w in (self.face, self.voice, self.text):
            if w is not None and w.thread is not None and w.thread.is_alive():
                out.append(w.thread)
        at = getattr(self.asr, "_thread", None)
        if at is not None and at.is_alive():
            out.append(at)
        if self._thread is not None and self._thread.is_alive():
            out.append(self._thread)
        return out

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._running:
            raise MmclError("the pipeline is already running; stop() it first")
        self._stop.clear()
        self.finished.clear()
        self._status = "loading models"
        self.assembler.reset()
        for box in (self.face_out, self.voice_out, self.text_out):
            box.drain()
        started: list[Any] = []
        try:
            if self.timeline.mode is ReplayMode.CLOCK_STOPPED and self.is_replay:
                # register before the sources start, so the replay clock waits for the window loop
                self._participant = self.timeline.participant("windows")
            for w in (self.face, self.voice, self.asr, self.text):
                if w is not None:
                    w.start()
                    started.append(w)
            self._started_at = self.clock.now()
            self._thread = threading.Thread(target=self._window_main, name="windows", daemon=True)
            self._running = True
            self._thread.start()
            self._status = "opening devices"
            self.sources.start()
        except BaseException:
            self._running = False
            self._stop.set()
            if self._participant is not None:
                self._participant.finish()
            if self._thread is not None:
                self._thread.join(self.cfg.stop_timeout_s)
            for w in reversed(started):
                w.stop(self.cfg.stop_timeout_s)
            self._status = "failed to start"
            raise
        self._status = "running"
        if self.event_log is not None:
            self.event_log.session(
                mode=self.mode, replay=self.replay_mode, hop_s=self.cfg.hop_s,
                window_s=self.features.window_s,
                steps=self.assembler.n_steps, model=self.model_name,
                backend=self.engine.backend.describe() if self.engine else None,
                sources={"camera": self.sources.camera.config.source if self.sources.camera else None,
                         "audio": self._audio_name()},
                clock_start=self._started_at, **self.session_info,
            )  # fmt: skip
        log.info("monitor started (%s, replay %s)", self.mode, self.replay_mode)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop sources (devices released first), then workers and the window loop; close the event log
        with a latency summary. Returns True when every thread ended in time. Idempotent."""
        timeout = self.cfg.stop_timeout_s if timeout is None else timeout
        was_running = self._running
        self._stop.set()
        ok = self.sources.stop(timeout)
        if self._participant is not None:
            self._participant.finish()
        for w in (self.face, self.voice, self.text):
            if w is not None:
                ok = w.stop(timeout) and ok
        if self.asr is not None:
            ok = self.asr.stop(max(timeout, 5.0)) and ok
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            ok = ok and not self._thread.is_alive()
        self._running = False
        if self._status != "replay finished":
            self._status = "stopped"
        if was_running and self.event_log is not None:
            self.event_log.close(self.summary())
        self.state.poke()
        return ok

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a replay finished (True) or ``timeout`` (False)."""
        return self.finished.wait(timeout)

    def __enter__(self) -> Pipeline:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- window loop ---------------------------------------------------------------------------------------
    def _window_main(self) -> None:
        try:
            self._window_loop()
        except Exception as exc:
            log.exception("window loop crashed")
            self._status = f"window loop failed: {type(exc).__name__}: {exc}"
        finally:
            if self._participant is not None:
                self._participant.finish()

    def _window_loop(self) -> None:
        hop = self.cfg.hop_s
        assert self._started_at is not None
        next_t = self._started_at + hop
        ending = False
        while not self._stop.is_set():
            if not self._wait_tick(next_t):
                break
            if self._stop.is_set():
                break
            behind = self.clock.now() - next_t
            if self.timeline.mode is not ReplayMode.FAST and behind > hop:
                missed = int(behind // hop)
                self.state.note_skipped(missed)
                log.warning("window loop fell behind by %.2f s; skipped %d window(s)", behind, missed)
                next_t += missed * hop
            self._tick(next_t, final=ending)
            next_t += hop
            if ending:
                self._status = "replay finished"
                self.finished.set()
                self.state.poke()
                break
            if self.is_replay and self._sources_ended() and next_t >= self._data_end():
                self._status = "replay ended: committing the last words"
                self._finish_inputs()
                ending = True

    def _wait_tick(self, t: float) -> bool:
        if self._participant is not None:
            return self._participant.wait_until(t, self._stop)
        if self.is_replay and self.timeline.mode is ReplayMode.FAST:
            while not self._stop.is_set():
                if self._horizon() >= t:
                    return True
                self._stop.wait(0.002)
            return False
        while not self._stop.is_set():
            remaining = t - self.clock.now()
            if remaining <= 0:
                return True
            self._stop.wait(min(remaining, 0.05))
        return False

    def _horizon(self) -> float:
        """fast replay: the time up to which every source has delivered and every worker has caught up."""
        workers = (self.face, self.voice, self.asr, self.text)
        if any(w is not None and not w.is_idle() for w in workers):
            return -float("inf")
        times = []
        for src in (self.sources.camera, self.sources.audio):
            if src is not None and not src.ended:
                last = src.stats().last_t
                times.append(-float("inf") if last is None else last)
        return min(times) if times else float("inf")

    def _data_end(self) -> float:
        """Clock time just after the last item any source delivered."""
        ends = [s.stats().last_t for s in (self.sources.camera, self.sources.audio) if s is not None]
        return max((t for t in ends if t is not None), default=-float("inf")) + 0.1

    def _sources_ended(self) -> bool:
        srcs = [s for s in (self.sources.camera, self.sources.audio) if s is not None]
        return bool(srcs) and all(
            s.ended or s.status in (SourceStatus.FAILED, SourceStatus.STOPPED) for s in srcs
        )

    def _finish_inputs(self) -> None:
        """End of a replay: let the voice worker flush, commit the ASR's pending words, embed them."""
        deadline = time.monotonic() + 10.0
        while self.voice is not None and self.voice.stats().status == "running":
            if time.monotonic() > deadline or self._stop.wait(0.01):
                return
        if self.asr is not None:
            self.asr.stop(30.0)  # finish_on_stop: commits what is left of the utterance
        while self.text is not None and not self.text.is_idle() and time.monotonic() < deadline + 20.0:
            if self._stop.wait(0.01):
                return

    def _tick(self, t_end: float, final: bool = False) -> None:
        tick_at = self.clock.now()
        t0 = time.perf_counter()
        self.assembler.add_vision(self.face_out.drain())
        self.assembler.add_audio(self.voice_out.drain())
        self.assembler.add_text(self.text_out.drain())
        window = self.assembler.build(t_end)
        build_s = time.perf_counter() - t0
        prediction = None
        infer_s = attr_s = None
        if self.engine is not None and window.any_present:
            t1 = time.perf_counter()
            try:
                prediction = self.engine.predict(window)
            except Exception as exc:
                self._errors += 1
                log.exception("inference failed on window %d", window.index)
                self._status = f"inference failed: {type(exc).__name__}: {exc}"
            infer_s = time.perf_counter() - t1
        published = self.clock.now()
        newest = window.newest
        self._last_empty = not window.any_present
        with self._lock:
            self._shown[window.index] = newest if (prediction is not None and not final) else None
            while len(self._shown) > 64:
                self._shown.popitem(last=False)
        self.state.publish(prediction, window.coverage, t_end)
        # the window after the end of a replay holds no new input: no end-to-end figure for it
        e2e = published - newest if (newest is not None and prediction is not None and not final) else None
        if prediction is not None and self.engine is not None and self.engine.contributions:
            t2 = time.perf_counter()  # attribution after publishing: it never delays the sentiment shown
            try:
                prediction = self.engine.attribute(window, prediction)
                self.state.update_prediction(prediction)
            except Exception:
                self._errors += 1
                log.exception("attribution failed on window %d", window.index)
            attr_s = time.perf_counter() - t2
        self.latency.record("window", build_s)
        if infer_s is not None:
            self.latency.record("inference", infer_s)
        if attr_s is not None:
            self.latency.record("attribution", attr_s)
        if e2e is not None:
            self.latency.record("e2e_published", e2e)
        res = self.resources.sample()
        if self.event_log is None and not self._window_listeners:
            return
        event = self._window_event(window, prediction, build_s, infer_s, attr_s, e2e, published)
        event.update(tick_at=tick_at, queues={b.name: b.depth for b in (self.face_out, self.voice_out, self.text_out)},
                     cpu_percent=round(res.cpu_percent, 1), rss_mb=round(res.rss_mb, 1))  # fmt: skip
        if self.event_log is not None:
            self.event_log.write(event)
        for fn in self._window_listeners:
            try:
                fn(event, prediction)
            except Exception:
                log.exception("window listener %r failed on window %d", fn, window.index)

    def _window_event(
        self,
        w: Window,
        p: Any,
        build_s: float,
        infer_s: float | None,
        attr_s: float | None,
        e2e: float | None,
        published: float,
    ) -> dict[str, Any]:
        ms = {"window": build_s * 1000.0}
        if infer_s is not None:
            ms["inference"] = infer_s * 1000.0
        if attr_s is not None:
            ms["attribution"] = attr_s * 1000.0
        if e2e is not None:
            ms["e2e_published"] = e2e * 1000.0
        for stage in ("face", "voice", "asr_commit", "text"):  # the newest input of each kind
            last = self.latency.last(stage)
            if last is not None:
                ms[stage] = last * 1000.0
        return {
            "type": "window",
            "window": w.index,
            "t_start": w.t_start,
            "t_end": w.t_end,
            "published_at": published,
            "newest_input": w.newest,
            "newest_by_modality": w.newest_input,
            "prediction": p.to_dict() if p is not None else None,
            "masks": {"steps": w.steps, **{m: int(w.masks[m].sum()) for m in w.masks}},
            "samples": w.samples,
            **({"words": w.text} if self.cfg.log_transcript else {}),  # what was said: personal data
            "latency_ms": ms,
        }

    # ---- readers -------------------------------------------------------------------------------------------
    def _on_words(self, words: list[Word]) -> None:
        self.state.add_words(words)

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

    def wait_update(self, version: int, timeout: float) -> int:
        """Block up to ``timeout`` s for a state change after ``version`` (for readers)."""
        return self.state.wait_newer(version, timeout)

    def _partial_text(self) -> str:
        partial = getattr(self.asr, "partial", None)  # AsrWorker.partial(): uncommitted hypothesis
        return partial() if callable(partial) and self.asr is not None and self.asr.is_running else ""

    def alert_events(self) -> tuple[AlertView, ...]:
        """The most recent alert events (cheap; for the --headless printer)."""
        return self.state.alert_events

    def latest_window(self) -> int | None:
        """Index of the newest published prediction (cheap; no snapshot)."""
        p = self.state.prediction
        return p.window if p is not None else None

    def _audio_name(self) -> str | None:
        aud = self.sources.audio
        if aud is None:
            return None
        return getattr(aud, "path", None) or getattr(getattr(aud, "config", None), "device", None) or aud.name

    def summary(self) -> dict[str, Any]:
        """Latency percentiles, drops and counts (the event log's last line and the exit table)."""
        snap = self.snapshot()
        return {
            "latency_ms": {k: v.to_dict() for k, v in snap.latency.items()},
            "windows": snap.windows,
            "windows_skipped": snap.windows_skipped,
            "empty_windows": snap.empty_windows,
            "drops": snap.drops,
            "cpu_percent_mean": (sum(self.resources.samples) / len(self.resources.samples))
            if self.resources.samples else None,
            "peak_rss_mb": snap.resources.peak_rss_mb,
            "words": len(self.asr.transcript()) if self.asr is not None else 0,
        }  # fmt: skip

    def snapshot(self, latency: bool = True) -> MonitorSnapshot:
        """Everything readers show; ``latency=False`` leaves the percentiles out (cheaper: the alert runtime)."""
        now = self.clock.now()
        st = self.state.read()
        pred = st["prediction"]
        cov = st["coverage"]
        contrib = pred.contributions if pred is not None else {}
        devices: list[DeviceView] = []
        cam, aud = self.sources.camera, self.sources.audio
        for s in (cam, aud):
            if s is None:
                continue
            ss = s.stats()
            devices.append(DeviceView(ss.name, ss.kind, ss.status.value, ss.message, ss.rate_hz, ss.delivered,
                                      ss.dropped, ss.overflow, ss.reconnects))  # fmt: skip
        for w in (self.face, self.voice, self.text):
            if w is not None:
                ws = w.stats()
                devices.append(DeviceView(ws.name, "worker", ws.status, ws.message, 0.0, ws.items, 0, 0, 0))
        asr_stats = self.asr.stats() if self.asr is not None else None
        if asr_stats is not None:
            msg = asr_stats.message or (
                f"commit p50 {asr_stats.latency_p50_s:.2f} s" if asr_stats.latency_p50_s is not None else ""
            )
            devices.append(DeviceView("asr", "worker", asr_stats.status, msg, 0.0, asr_stats.committed_words,
                                      0, asr_stats.drop_events, 0))  # fmt: skip

        # presence and evidence
        mods: list[ModalityView] = []
        if cam is not None and self.face is not None:
            fs = self.face.stats()
            cs = cam.stats()
            fresh = fs.last_t is not None and now - fs.last_t <= FACE_LIVE_S
            live = fs.live and fresh
            if cs.status is not SourceStatus.RUNNING and cs.status is not SourceStatus.ENDED:
                detail = f"camera {cs.status.value}" + (f": {cs.message}" if cs.message else "")
            else:
                detail = ("face found" if live else "no face") + f" · {cs.rate_hz:.0f} fps"
            mods.append(ModalityView("vision", live, cov.get("vision", 0.0), contrib.get("vision"), detail))
        else:
            mods.append(ModalityView("vision", False, 0.0, None, "no camera"))
        speaking = bool(asr_stats and asr_stats.in_utterance)
        if aud is not None and self.voice is not None:
            vs = self.voice.stats()
            fresh = vs.last_t is not None and now - vs.last_t <= 1.0
            voiced = vs.live and fresh
            level = f"{vs.level_dbfs:.0f} dBFS" if vs.level_dbfs is not None else "level –"
            a_status = aud.stats()
            if a_status.status not in (SourceStatus.RUNNING, SourceStatus.ENDED):
                detail = f"{a_status.kind} {a_status.status.value}" + (
                    f": {a_status.message}" if a_status.message else ""
                )
            else:
                detail = "speech" if speaking else "voice" if voiced else "silence"
                detail += f" · {level}" if speaking or voiced else ""  # the last voiced audio's level
            mods.append(ModalityView("audio", speaking or voiced, cov.get("audio", 0.0), contrib.get("audio"),
                                     detail))  # fmt: skip
        else:
            mods.append(ModalityView("audio", False, 0.0, None, "no microphone"))
        transcript = st["transcript"]
        if self.text is not None:
            recent = bool(transcript) and now - transcript[-1].end <= WORD_LIVE_S
            n_words = sum(1 for w in transcript if w.end > now - self.features.window_s)
            detail = f"{n_words} word(s) in the last {self.features.window_s:g} s"
            mods.append(ModalityView("text", recent, cov.get("text", 0.0), contrib.get("text"), detail))
        else:
            mods.append(ModalityView("text", False, 0.0, None, "no transcription"))

        queues = tuple(
            QueueView(b.name, b.depth, b.capacity, b.dropped, b.peak)
            for b, w in ((self.face_out, self.face), (self.voice_out, self.voice), (self.text_out, self.text))
            if w is not None
        )
        drops: dict[str, float] = {}
        if cam is not None:
            cs = cam.stats()
            drops["camera frames replaced (slot)"] = cs.dropped
            drops["camera frames skipped (fps cap)"] = cs.skipped
            drops["camera corrupt frames skipped"] = int(cs.extra.get("corrupt_frames", 0))
        if aud is not None:
            a_s = aud.stats()
            drops["audio overflow events"] = a_s.overflow
            drops["audio dropped s"] = round(float(a_s.extra.get("dropped_s", 0.0)), 3)
            drops["audio non-finite samples zeroed"] = int(a_s.extra.get("nonfinite_samples", 0))
        if asr_stats is not None:
            drops["ASR dropped s (backlog)"] = round(asr_stats.dropped_s, 3)
        for q in queues:
            drops[f"queue {q.name}"] = q.dropped
        drops["windows skipped"] = st["windows_skipped"]
        status = self._status
        if status == "running":
            if st["windows"] == 0:
                status = "waiting for the first window"
            elif self._last_empty:
                status = "no face, no speech: nothing to score"
        log_error = self.event_log.error if self.event_log is not None else None
        if log_error:  # the monitor goes on without its log: say so on screen
            drops["event log lines not written"] = self.event_log.lines_lost
            status = f"{status} · EVENT LOG STOPPED: {log_error}"
        decoder = self.engine.decoder if self.engine is not None else None
        started = self._started_at if self._started_at is not None else now
        return MonitorSnapshot(
            now=now, elapsed_s=max(0.0, now - started), mode=self.mode, replay_mode=self.replay_mode,
            banner=self.banner, backend=self.engine.backend.describe() if self.engine else "none",
            model=self.model_name, running=self._running, finished=self.finished.is_set(), prediction=pred,
            score_range=decoder.score_range if decoder else (-1.0, 1.0), history=st["history"],
            trend_history=st["trend_history"], windows=st["windows"], windows_skipped=st["windows_skipped"],
            empty_windows=st["empty_windows"], status=status, modalities=tuple(mods), transcript=transcript,
            speaking=speaking, latency=self.latency.summary() if latency else {}, queues=queues, devices=tuple(devices),
            drops=drops, resources=self.resources.sample(),
            asr_lag_s=asr_stats.pending_s if asr_stats is not None else 0.0,
            partial=self._partial_text(), alerts=st["alerts"], alert_events=st["alert_events"],
            alert_delivery=st["alert_delivery"], arousal_history=st["arousal_history"],
        )  # fmt: skip

