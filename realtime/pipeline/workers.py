"""Feature workers of the live monitor: one thread each, handing finished samples to the window loop.

* :class:`FaceWorker` — takes every new frame from the camera's latest-frame slot (``wait_next``; frames
  replaced before it got to them are the camera's ``dropped``), runs ``FaceFeatureExtractor`` (MediaPipe,
  created on this thread) and hands out ``VisionSample``\\ s.
* :class:`VoiceWorker` — reads all audio through its own ring reader and hands out the
  feature set's voice extractor's 100 ms ``AudioStep``\\ s (``voice_extractor_for``: live-v1 descriptors, or
  live-v2's descriptors + Whisper-encoder states, speaker-normalised over the session; flushing at the end
  of a file).
* :class:`TextWorker` — takes the words the ASR worker commits and hands out their phrase embeddings
  (``WordTextTrack`` over the feature set's embedder — MiniLM for live-v1, e5 + sentiment head for
  live-v2 — created on this thread).

Each hands its results to an :class:`Outbox`: a bounded queue, drop-oldest, with a drop counter and a
peak depth the dashboard shows. Workers never raise out of their thread: a failing item is logged and
counted (``errors``) and the worker goes on; a failure to load its model is raised from ``start()``.

Each is a :class:`~realtime.stage.Stage` (thread, ready/stop events, the clock-stopped replay's idle check
registered once in ``start()``) through :class:`FeatureWorker`, which adds the counters of
:class:`WorkerStats`; the ASR worker (``realtime.asr.worker``) is a Stage too.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from realtime.clock import Clock
from realtime.features.audio import AudioStep
from realtime.features.config import FeatureConfig
from realtime.features.text import TextSample, WordTextTrack, phrase_rule_for, text_embedder_for
from realtime.features.vision import FaceFeatureExtractor, VisionSample
from realtime.pipeline.latency import LatencyTracker
from realtime.pipeline.windows import AUDIO_STEP_HALF_S
from realtime.sources.audio_ring import AudioReader
from realtime.sources.camera import CameraSource
from realtime.sources.replay import ReplayTimeline
from realtime.stage import Stage

log = logging.getLogger(__name__)
T = TypeVar("T")


class Outbox(Generic[T]):
    """Bounded hand-off queue between one worker and the window loop. Drop policy: drop-oldest, counted."""

    def __init__(self, name: str, capacity: int = 512) -> None:
        self.name = name
        self.capacity = capacity
        self._q: collections.deque[T] = collections.deque()
        self._lock = threading.Lock()
        self.dropped = 0
        self.peak = 0
        self.total = 0

    def put(self, item: T) -> None:
        with self._lock:
            if len(self._q) >= self.capacity:
                self._q.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 100 == 0:
                    log.warning("queue %s full: dropped the oldest item (%d so far)", self.name, self.dropped)
            self._q.append(item)
            self.total += 1
            self.peak = max(self.peak, len(self._q))

    def drain(self) -> list[T]:
        with self._lock:
            items = list(self._q)
            self._q.clear()
            return items

    @property
    def depth(self) -> int:
        with self._lock:
            return len(self._q)


@dataclass(frozen=True)
class WorkerStats:
    name: str
    status: str  # idle | starting | running | ended | stopped | failed
    message: str
    items: int  # inputs processed (frames, audio chunks, word batches)
    outputs: int  # samples handed out
    errors: int
    busy_s: float  # compute time spent (wall)
    live: bool  # face found in the newest frame / voice above the silence floor / word recently
    last_t: float | None  # capture time of the newest processed input
    level_dbfs: float | None = None  # voice worker: level of the newest voiced step (None before any)


class FeatureWorker(Stage):
    """A :class:`~realtime.stage.Stage` that turns inputs into samples for the window loop, with the
    counters its :class:`WorkerStats` report."""

    def __init__(
        self, name: str, clock: Clock, latency: LatencyTracker, timeline: ReplayTimeline | None
    ) -> None:
        super().__init__(name, clock, timeline)
        self.latency = latency
        self.items = self.outputs = self.errors = 0
        self.busy_s = 0.0
        self._last_t: float | None = None
        self._live = False

    def _count(self, dt: float, last_t: float | None, live: bool, outputs: int) -> None:
        with self._lock:
            self.items += 1
            self.outputs += outputs
            self.busy_s += dt
            if last_t is not None:
                self._last_t = last_t
            self._live = live

    def stats(self) -> WorkerStats:
        with self._lock:
            return WorkerStats(
                self.name, self._status, self._message, self.items, self.outputs, self.errors, self.busy_s,
                self._live, self._last_t, self._level(),
            )  # fmt: skip

    def _level(self) -> float | None:
        return None


class FaceWorker(FeatureWorker):
    kind = "face"

    def __init__(
        self,
        camera: CameraSource,
        outbox: Outbox[VisionSample],
        clock: Clock,
        latency: LatencyTracker,
        *,
        config: FeatureConfig | None = None,
        extractor_factory: Callable[[], Any] | None = None,
        timeline: ReplayTimeline | None = None,
        name: str = "face",
    ) -> None:
        super().__init__(name, clock, latency, timeline)
        self.camera = camera
        self.outbox = outbox
        self.config = config or FeatureConfig()
        self._factory = extractor_factory or (lambda: FaceFeatureExtractor(self.config))
        self._extractor: Any = None
        self._last_index = 0
        self._done_t: float | None = None  # capture time of the last frame fully processed
        self.faces = 0

    def _load(self) -> None:
        self._extractor = self._factory()
        self._last_index = 0

    def _unload(self) -> None:
        if self._extractor is not None and hasattr(self._extractor, "close"):
            self._extractor.close()
        self._extractor = None

    def is_idle(self) -> bool:
        """Every frame the camera delivered has been processed (race-free: the camera updates ``last_t``
        before it waits on the replay clock)."""
        if self._stopped_or_dead():
            return True
        last = self.camera.stats().last_t
        with self._lock:
            return last is None or (self._done_t is not None and self._done_t >= last)

    def _loop(self) -> None:
        cam = self.camera
        while not self._stop.is_set():
            frame = cam.wait_next(timeout=0.1, after=self._last_index)
            if frame is None:
                if cam.ended and not self._stop.is_set():
                    self._set_status("ended", "camera file ended")
                    self._stop.wait(0.1)
                continue
            self._last_index = frame.index
            t0 = time.perf_counter()
            try:
                sample = self._extractor.process(frame.image, frame.t)
            except Exception as exc:
                with self._lock:
                    self.errors += 1
                    self._done_t = frame.t
                log.warning("face worker: frame at %.2f s failed (%s)", frame.t, exc)
                continue
            dt = time.perf_counter() - t0
            self.outbox.put(sample)
            self.latency.record("face", self.clock.now() - frame.t)
            if sample.valid:
                self.faces += 1
            self._count(dt, frame.t, sample.valid, 1)
            if self._status in ("ended",):
                self._set_status("running")
            with self._lock:
                self._done_t = frame.t
            self._notify_timeline()


class VoiceWorker(FeatureWorker):
    kind = "voice"

    def __init__(
        self,
        reader: AudioReader,
        outbox: Outbox[AudioStep],
        clock: Clock,
        latency: LatencyTracker,
        *,
        config: FeatureConfig | None = None,
        timeline: ReplayTimeline | None = None,
        name: str = "voice",
        max_read_s: float = 0.5,
    ) -> None:
        super().__init__(name, clock, latency, timeline)
        self.reader = reader
        self.outbox = outbox
        self.config = config or FeatureConfig()
        self.max_read_s = max_read_s
        self._extractor: Any = None  # the feature set's voice extractor (live-v1 descriptors / live-v2)
        self._level_db: float | None = None
        self._flushed = False

    def _load(self) -> None:
        from realtime.features.voice import voice_extractor_for

        self._extractor = voice_extractor_for(self.config)
        self._flushed = False

    def _level(self) -> float | None:
        return self._level_db

    def is_idle(self) -> bool:
        if self._stopped_or_dead():
            return True
        with self._lock:
            if self._busy:
                return False
        return self.reader.available == 0

    def finish_input(self, stop: threading.Event) -> None:
        """End of a file: wait (up to 10 s) until the last step was flushed (status ``ended``)."""
        self._wait_while(lambda: self.status == "running", stop, 10.0)

    def _emit(self, steps: list[AudioStep], dt: float) -> None:
        now = self.clock.now()
        for s in steps:
            self.outbox.put(s)
            self.latency.record("voice", now - (s.t + AUDIO_STEP_HALF_S))
        voiced = [s for s in steps if s.valid]
        if voiced:  # a silent step's level is the gate's floor (−200 dBFS): not what the person sounded like
            self._level_db = voiced[-1].level_dbfs
        if steps:
            self._count(dt, steps[-1].t + AUDIO_STEP_HALF_S, steps[-1].valid, len(steps))

    def _loop(self) -> None:
        assert self._extractor is not None
        ex = self._extractor
        while not self._stop.is_set():
            with self._lock:
                self._busy = True
            try:
                chunk = self.reader.read(self.max_read_s)
                if chunk is not None:
                    self._flushed = False
                    t0 = time.perf_counter()
                    steps = ex.push(chunk)
                    self._emit(steps, time.perf_counter() - t0)
                elif self.reader.exhausted and not self._flushed:
                    self._emit(ex.flush(), 0.0)  # end of a file: finish the last step
                    self._flushed = True
                    self._set_status("ended", "audio file ended")
            finally:
                with self._lock:
                    self._busy = False
            if chunk is not None:
                self._notify_timeline()
                continue
            if self.reader.exhausted:
                self._stop.wait(0.05)
            else:
                self.reader.wait(0.1)


class TextWorker(FeatureWorker):
    """Embeds the words the ASR commits. ``asr`` is an ``AsrWorker`` (``wait_words``/``words_since``)."""

    kind = "text"

    def __init__(
        self,
        asr: Any,
        outbox: Outbox[TextSample],
        clock: Clock,
        latency: LatencyTracker,
        *,
        config: FeatureConfig | None = None,
        embedder_factory: Callable[[], Any] | None = None,
        timeline: ReplayTimeline | None = None,
        name: str = "text",
    ) -> None:
        super().__init__(name, clock, latency, timeline)
        self.asr = asr
        self.outbox = outbox
        self.config = config or FeatureConfig()
        self._factory = embedder_factory or (
            lambda: text_embedder_for(
                self.config.feature_set, self.config.text_cache_size, self.config.text_batch_size,
                threads=self.config.text_threads,
            )
        )
        self._track: WordTextTrack | None = None
        self._cursor = 0  # ASR words fully handled
        self.words = 0

    def _load(self) -> None:
        self._track = WordTextTrack(self._factory(), phrase_rule_for(self.config.feature_set))
        _, self._cursor = self.asr.words_since(10**12)  # start after what the ASR already holds

    def is_idle(self) -> bool:
        if self._stopped_or_dead():
            return True
        with self._lock:
            cursor = self._cursor
        _, seq = self.asr.words_since(10**12)
        return seq <= cursor

    def finish_input(self, stop: threading.Event) -> None:
        """End of a replay (after the ASR committed its last words): wait up to 30 s until they are embedded."""
        self._wait_while(lambda: not self.is_idle(), stop, 30.0)

    def _loop(self) -> None:
        assert self._track is not None
        while not self._stop.is_set():
            words, new_cursor = self.asr.wait_words(self._cursor, 0.1)
            if not words:
                with self._lock:
                    self._cursor = max(self._cursor, new_cursor)
                if not self.asr.is_running:  # a stopped ASR returns at once: do not spin
                    self._stop.wait(0.05)
                continue
            t0 = time.perf_counter()
            try:
                samples = self._track.add(words)
            except Exception as exc:
                samples = []
                with self._lock:
                    self.errors += 1
                log.warning("text worker: embedding %d words failed (%s)", len(words), exc)
            dt = time.perf_counter() - t0
            now = self.clock.now()
            for s in samples:
                self.outbox.put(s)
            for w in words:
                if w.committed_at is not None:
                    self.latency.record("asr_commit", w.committed_at - w.end)
                    self.latency.record("text", now - w.committed_at)
            self.words += len(words)
            self._count(dt, max(w.end for w in words), True, len(samples))
            with self._lock:
                self._cursor = new_cursor
            self._notify_timeline()
