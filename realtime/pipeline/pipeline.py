"""The live monitor pipeline: sources → stages (feature workers + streaming ASR) → window loop → state / log.

Threads (all daemon; every one stopped with an Event and joined with a timeout in ``stop()``):

==============  ==============================================================================================
``camera:*``    the camera source (device, file or URL) — latest-frame slot
``audio*``      the microphone (PortAudio callback → ring) or the audio-file replay
``face:face``   :class:`~realtime.pipeline.workers.FaceWorker` (MediaPipe)
``voice:voice`` :class:`~realtime.pipeline.workers.VoiceWorker` (100 ms voice steps)
``asr:asr``     :class:`~realtime.asr.AsrWorker` (faster-whisper, LocalAgreement-2)
``text:text``   :class:`~realtime.pipeline.workers.TextWorker` (phrase embeddings)
``windows``     the window loop: every ``monitor.hop_s`` drain the workers' queues, build the window of the
                last ``features.window_s`` s (``WindowAssembler``), score it (``InferenceEngine``), publish
                it to :class:`MonitorState`, write the event log
==============  ==============================================================================================

The four workers are :class:`~realtime.stage.Stage`\\ s held in ``stages`` (start order), so start, stop,
``threads()`` and the fast-replay horizon are loops over one list. When the window loop may build its next
window, and when a replay is over, is :class:`~realtime.pipeline.pacing.WindowPacer`'s business; at the end
of a replay the stages hand out what they hold, one last window is built and ``finished`` is set.

Nothing here imports the dashboard: readers call ``snapshot()`` — the stats of every source and stage,
read once each, composed by the pure ``realtime.pipeline.snapshot.compose_snapshot`` into facts the
panels word — and ``mark_shown()`` after drawing. Alerts and metrics attach as window listeners
(``add_window_listener``), called on the window thread after each window with its log event.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from model.errors import MmclError
from realtime.asr.config import AsrConfig
from realtime.asr.worker import AsrWorker
from realtime.features.config import FeatureConfig
from realtime.pipeline.config import MonitorConfig
from realtime.pipeline.eventlog import EventLog
from realtime.pipeline.inference import InferenceEngine
from realtime.pipeline.latency import LatencyTracker
from realtime.pipeline.pacing import WindowPacer
from realtime.pipeline.snapshot import SessionFacts, SnapshotInputs, compose_snapshot
from realtime.pipeline.state import AlertView, MonitorSnapshot, MonitorState, QueueView, ResourceMonitor
from realtime.pipeline.window_loop import WindowListener, WindowLoop
from realtime.pipeline.windows import SampleTap, WindowAssembler
from realtime.pipeline.workers import FaceWorker, Outbox, TextWorker, VoiceWorker
from realtime.sources.factory import SourceSet
from realtime.stage import Stage

log = logging.getLogger(__name__)



class Pipeline:
    """Composes one session. ``start()`` loads the models and starts every thread (raising DeviceError /
    ModelAssetError / MmclError with what to do); ``stop()`` stops them all, flushes and closes the log.
    Restartable: ``start()`` after ``stop()`` runs the same sources again. ``taps`` see every batch of
    samples the window loop adds (``WindowAssembler``; the baseline recording of ``mmcl calibrate``).

    ``phase`` (what ``snapshot().phase`` reports): idle → loading → opening → running, then ending →
    finished at the end of a replay, stopped after ``stop()``, failed when ``start()`` raised. A failure
    while running (inference, the window loop) is kept as ``fault_in``/``fault`` until the next phase."""

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
        taps: Sequence[SampleTap] = (),
    ) -> None:
        self.sources = sources
        self.engine = engine
        self.cfg = monitor or MonitorConfig()
        self.features = features or FeatureConfig()
        version = getattr(engine, "feature_set", None)
        if version and version != self.features.feature_set:  # compute what the model was trained on
            self.features = dataclasses.replace(self.features, feature_set=version)
        self.asr_cfg = asr or AsrConfig()
        self.mode, self.banner, self.model_name = mode, banner, model_name
        self.event_log = event_log
        self.session_info = dict(session_info or {})
        self.clock = sources.clock
        self.timeline = sources.timeline
        self.latency = LatencyTracker(self.cfg.latency_samples)
        self.state = MonitorState(self.cfg.history_s, self.cfg.transcript_words)
        self.resources = ResourceMonitor()
        self.assembler = WindowAssembler(
            self.features.window_s, self.features.grid_hz, self.features.vision_max_gap_s,
            dims=self.features.live_set.dims, taps=taps,
        )  # fmt: skip
        self.finished = threading.Event()  # a replay ended (``wait()``; the CLI polls it)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at: float | None = None
        self._running = False
        self._phase, self._fault_in, self._fault = "idle", "", ""
        self._build_stages(face_factory, embedder_factory, recognizer)
        self.pacer = WindowPacer(sources, self.timeline, self.stages, self._stop)
        self.loop = WindowLoop(
            self.cfg, self.assembler, engine, self.state, self.latency, (self.face_out, self.voice_out, self.text_out),
            clock=self.clock, resources=self.resources, event_log=event_log, on_fault=self._set_fault,
        )  # fmt: skip

    def _build_stages(self, face_factory: Any, embedder_factory: Any, recognizer: Any) -> None:
        q, tl, src = self.cfg.queue_size, self.timeline, self.sources
        self.face_out: Outbox = Outbox("face→windows", q)
        self.voice_out: Outbox = Outbox("voice→windows", q)
        self.text_out: Outbox = Outbox("text→windows", q)
        self.face: FaceWorker | None = None
        self.voice: VoiceWorker | None = None
        self.asr: AsrWorker | None = None
        self.text: TextWorker | None = None
        if src.camera is not None:
            self.face = FaceWorker(src.camera, self.face_out, self.clock, self.latency, config=self.features,
                                   extractor_factory=face_factory, timeline=tl)  # fmt: skip
        if src.audio is not None:
            self.voice = VoiceWorker(src.audio.open_reader("voice"), self.voice_out, self.clock, self.latency,
                                     config=self.features, timeline=tl)  # fmt: skip
            if self.asr_cfg.enabled:
                self.asr = AsrWorker(self.asr_cfg, self.clock, reader=src.audio.open_reader("asr"), timeline=tl,
                                     recognizer=recognizer)  # fmt: skip
                self.text = TextWorker(self.asr, self.text_out, self.clock, self.latency, config=self.features,
                                       embedder_factory=embedder_factory, timeline=tl)  # fmt: skip
        # start order (the text worker reads the ASR's words); stop in reverse
        self.stages: list[Stage] = [s for s in (self.face, self.voice, self.asr, self.text) if s is not None]
        self._outboxes = [(b, w) for b, w in ((self.face_out, self.face), (self.voice_out, self.voice),
                                              (self.text_out, self.text)) if w is not None]  # fmt: skip

    # ---- properties ----------------------------------------------------------------------------------------
    @property
    def is_replay(self) -> bool:
        return self.pacer.is_replay

    @property
    def replay_mode(self) -> str:
        return self.pacer.replay_mode

    @property
    def running(self) -> bool:
        return self._running

    def add_window_listener(self, fn: WindowListener) -> None:
        """Call ``fn(event, prediction)`` on the window thread after every window (the event is the log's
        ``window`` line, also without a log). Listeners must be quick (alerts, metrics); an exception is
        logged and the pipeline goes on."""
        self.loop.listeners.append(fn)

    def threads(self) -> list[threading.Thread]:
        """Every thread this pipeline started that is still alive (for tests and shutdown checks)."""
        sources = [getattr(s, "_thread", None) for s in (self.sources.camera, self.sources.audio) if s is not None]
        ours = [*sources, *(s.thread for s in self.stages), self._thread]
        return [t for t in ours if t is not None and t.is_alive()]

    def _set_phase(self, phase: str) -> None:
        self._phase, self._fault_in, self._fault = phase, "", ""

    def _set_fault(self, where: str, exc: BaseException) -> None:
        self._fault_in, self._fault = where, f"{type(exc).__name__}: {exc}"

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._running:
            raise MmclError("the pipeline is already running; stop() it first")
        self._stop.clear()
        self.finished.clear()
        self._set_phase("loading")
        self.loop.reset()
        started: list[Stage] = []
        try:
            self.pacer.begin()  # before the sources start, so the replay clock waits for the window loop
            for stage in self.stages:
                stage.start()
                started.append(stage)
            self._started_at = self.clock.now()
            self._thread = threading.Thread(target=self._window_main, name="windows", daemon=True)
            self._running = True
            self._thread.start()
            self._set_phase("opening")
            self.sources.start()
        except BaseException:
            self._running = False
            self._stop.set()
            self.pacer.end()
            if self._thread is not None:
                self._thread.join(self.cfg.stop_timeout_s)
            for stage in reversed(started):
                stage.stop(self.cfg.stop_timeout_s)
            self._set_phase("failed")
            raise
        self._set_phase("running")
        self._log_session()
        log.info("monitor started (%s, replay %s)", self.mode, self.replay_mode)

    def _log_session(self) -> None:
        if self.event_log is None:
            return
        cam = self.sources.camera
        self.event_log.session(
            mode=self.mode, replay=self.replay_mode, hop_s=self.cfg.hop_s, window_s=self.features.window_s,
            steps=self.assembler.n_steps, model=self.model_name,
            backend=self.engine.backend.describe() if self.engine else None,
            sources={"camera": cam.config.source if cam else None, "audio": self._audio_name()},
            clock_start=self._started_at, **self.session_info,
        )  # fmt: skip

    def stop(self, timeout: float | None = None) -> bool:
        """Stop sources (devices released first), then the stages and the window loop; close the event log
        with a latency summary. Returns True when every thread ended in time. Idempotent."""
        timeout = self.cfg.stop_timeout_s if timeout is None else timeout
        was_running = self._running
        self._stop.set()
        ok = self.sources.stop(timeout)
        self.pacer.end()
        for stage in reversed(self.stages):
            ok = stage.stop(max(timeout, stage.min_stop_timeout_s)) and ok
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            ok = ok and not self._thread.is_alive()
        self._running = False
        if self._phase != "finished":
            self._set_phase("stopped")
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
            assert self._started_at is not None
            self.loop.run(self._started_at, self.pacer, self._stop, self._on_phase)
        except Exception as exc:
            log.exception("window loop crashed")
            self._set_fault("window loop", exc)
        finally:
            self.pacer.end()

    def _on_phase(self, phase: str) -> None:
        self._set_phase(phase)
        if phase == "finished":
            self.finished.set()
            self.state.poke()

    # ---- readers -------------------------------------------------------------------------------------------
    def mark_shown(self, window: int | None, render_s: float | None = None) -> None:
        """A reader drew the prediction of ``window`` (render time; first time: end-to-end latency)."""
        self.loop.mark_shown(window, render_s)

    def wait_update(self, version: int, timeout: float) -> int:
        """Block up to ``timeout`` s for a state change after ``version`` (for readers)."""
        return self.state.wait_newer(version, timeout)

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
        """Latency percentiles, drops (by kind) and counts (the event log's last line and the exit table)."""
        snap = self.snapshot()
        cpu = self.resources.samples
        return {
            "latency_ms": {k: v.to_dict() for k, v in snap.latency.items()},
            "windows": snap.windows, "windows_skipped": snap.windows_skipped, "empty_windows": snap.empty_windows,
            "drops": snap.drops, "cpu_percent_mean": (sum(cpu) / len(cpu)) if cpu else None,
            "peak_rss_mb": snap.resources.peak_rss_mb,
            "words": snap.words,  # the transcript's count (published with the windows), as on the exit line
        }  # fmt: skip

    def snapshot(self, latency: bool = True) -> MonitorSnapshot:
        """Everything readers show; ``latency=False`` leaves the percentiles out (cheaper: the alert runtime)."""
        return compose_snapshot(self.snapshot_inputs(latency))

    def snapshot_inputs(self, latency: bool = True) -> SnapshotInputs:
        """The stats of every source and stage and the published state, each read once, and the session's
        own facts: what ``compose_snapshot`` turns into a snapshot."""
        cam, aud, asr = self.sources.camera, self.sources.audio, self.asr
        log_error = (self.event_log.error if self.event_log is not None else None) or ""
        decoder = self.engine.decoder if self.engine is not None else None
        session = SessionFacts(
            mode=self.mode, replay_mode=self.replay_mode, banner=self.banner, model=self.model_name,
            backend=self.engine.backend.describe() if self.engine else "none",
            score_range=decoder.score_range if decoder else (-1.0, 1.0), window_s=self.features.window_s,
            started_at=self._started_at, running=self._running, finished=self.finished.is_set(),
            phase=self._phase, fault_in=self._fault_in, fault=self._fault, last_window_empty=self.loop.last_empty,
            log_error=log_error, log_lines_lost=self.event_log.lines_lost if log_error else 0,
        )  # fmt: skip
        return SnapshotInputs(
            now=self.clock.now(), session=session, published=self.state.read(),
            camera=cam.stats() if cam is not None else None, audio=aud.stats() if aud is not None else None,
            face=self.face.stats() if self.face else None, voice=self.voice.stats() if self.voice else None,
            text=self.text.stats() if self.text else None, asr=asr.stats() if asr is not None else None,
            queues=tuple(QueueView(b.name, b.depth, b.capacity, b.dropped, b.peak) for b, _ in self._outboxes),
            latency=self.latency.summary() if latency else {}, resources=self.resources.sample(),
            partial=asr.partial() if asr is not None and asr.is_running else "",
        )  # fmt: skip
