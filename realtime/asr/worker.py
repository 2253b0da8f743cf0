"""The ASR worker: one thread that feeds audio to the streaming policy and publishes committed words.

Input is either an :class:`AudioReader` of an audio source (pull; preferred — the worker gets every
sample, independently of other consumers) or chunks pushed with ``submit()``. The thread loads the
recogniser (faster-whisper) itself, inserts audio as it arrives (the VAD runs on every chunk) and runs the
policy whenever it is ready (``interval_s`` of new speech audio, or an utterance ended).

Backlog policy (never grows without bound): when more than ``max_backlog_s`` of audio waits unprocessed,
the oldest is dropped down to half of that, counted (``dropped_s``, ``drop_events``) and the status reads
``behind`` for a few seconds. Committed words go to a bounded rolling transcript
(``transcript_max_words``, drop-oldest); consumers poll ``words_since(cursor)`` or block in
``wait_words``. ``stats()`` is a snapshot for the dashboard, including commit latency (word end →
committed) percentiles. The thread, its start/stop and the clock-stopped replay's idle check (pass the
``timeline``; registered once in ``start()``, so the clock waits for transcription) come from
:class:`~realtime.stage.Stage`, as for the feature workers.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from realtime.asr.config import AsrConfig
from realtime.asr.policy import StreamingAsrPolicy
from realtime.asr.recognizer import FasterWhisperRecognizer, Recognizer
from realtime.asr.vad import SpeechDetector
from realtime.clock import Clock
from realtime.sources.audio_ring import AudioReader
from realtime.sources.replay import ReplayTimeline
from realtime.stage import Stage
from realtime.types import AudioChunk, Word

log = logging.getLogger(__name__)

BEHIND_SHOW_S = 5.0


@dataclass(frozen=True)
class AsrStats:
    status: str  # idle | starting | running | behind | stopped | failed
    message: str
    in_utterance: bool
    pending_s: float  # audio waiting for the worker
    dropped_s: float  # audio dropped by the backlog policy
    drop_events: int
    runs: int  # recogniser calls
    committed_words: int
    last_run_s: float  # compute time of the last recogniser call (wall)
    compute_fraction: float  # recogniser compute time / audio time received (1.0 = one core saturated)
    latency_p50_s: float | None  # commit latency, committed_at − word end, over the last 500 words
    latency_p95_s: float | None
    buffer_s: float


class AsrWorker(Stage):
    """The streaming recogniser on its own :class:`~realtime.stage.Stage` thread (``asr:NAME``)."""

    kind = "asr"
    label = "ASR"
    loading_message = "loading the recogniser"
    stop_timeout_s = 10.0
    min_stop_timeout_s = 5.0  # stopping commits the pending utterance: give it time

    def __init__(
        self,
        config: AsrConfig,
        clock: Clock,
        *,
        reader: AudioReader | None = None,
        recognizer: Recognizer | None = None,
        recognizer_factory: Callable[[AsrConfig], Recognizer] | None = None,
        vad: SpeechDetector | None = None,
        timeline: ReplayTimeline | None = None,
        name: str = "asr",
        finish_on_stop: bool = True,
    ) -> None:
        super().__init__(name, clock, timeline)
        self.config = config
        self.reader = reader
        self.finish_on_stop = finish_on_stop
        self._recognizer = recognizer
        self._factory = recognizer_factory or (lambda cfg: FasterWhisperRecognizer(cfg))
        self._vad = vad
        self.policy: StreamingAsrPolicy | None = None
        self._words_cond = threading.Condition(self._lock)
        self._inbox: collections.deque[AudioChunk] = collections.deque()
        self._inbox_s = 0.0
        self._words: collections.deque[Word] = collections.deque(maxlen=config.transcript_max_words)
        self._seq = 0  # number of words ever committed
        self._latencies: collections.deque[float] = collections.deque(maxlen=500)
        self._dropped_s = 0.0
        self._drop_events = 0
        self._last_drop_wall = -1e9
        self._received_s = 0.0
        self._compute_s = 0.0
        self._last_run_s = 0.0
        self._partial: list[str] = []

    def finish_input(self, stop: threading.Event) -> None:
        """End of a replay: stop, which commits what is left of the utterance (``finish_on_stop``)."""
        self.stop(30.0)

    def _wake(self) -> None:
        with self._words_cond:
            self._words_cond.notify_all()

    # ---- input (push mode) ---------------------------------------------------------------------------------
    def submit(self, chunk: AudioChunk) -> None:
        """Queue audio (never blocks). Oldest audio is dropped beyond ``max_backlog_s``."""
        with self._lock:
            self._inbox.append(chunk)
            self._inbox_s += chunk.duration
            if self._inbox_s > self.config.max_backlog_s:
                dropped = 0.0
                while self._inbox and self._inbox_s > self.config.max_backlog_s / 2:
                    c = self._inbox.popleft()
                    self._inbox_s -= c.duration
                    dropped += c.duration
                self._note_drop_locked(dropped)
            self._words_cond.notify_all()

    def is_idle(self) -> bool:
        """Nothing waiting and nothing being processed (used by clock-stopped replay). A worker that
        stopped or crashed counts as idle, so that it never holds a replay's clock."""
        t = self._thread
        if self._stop.is_set() or (t is not None and not t.is_alive() and self._ready.is_set()):
            return True
        with self._lock:
            if self._busy or self._inbox:
                return False
        return self.reader is None or self.reader.available == 0

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_idle():
                return True
            time.sleep(0.005)
        return self.is_idle()

    # ---- output --------------------------------------------------------------------------------------------
    def words_since(self, cursor: int = 0) -> tuple[list[Word], int]:
        """Words committed since ``cursor`` (a previous return value; 0 = everything still held) and the
        new cursor. Words that fell out of the bounded transcript are skipped."""
        with self._lock:
            first = self._seq - len(self._words)
            start = max(cursor, first) - first
            return list(self._words)[start:], self._seq

    def wait_words(self, cursor: int, timeout: float) -> tuple[list[Word], int]:
        with self._words_cond:
            self._words_cond.wait_for(lambda: self._seq > cursor or self._stop.is_set(), timeout)
        return self.words_since(cursor)

    def transcript(self, last_n: int | None = None) -> list[Word]:
        with self._lock:
            words = list(self._words)
        return words if last_n is None else words[-last_n:]

    def text(self, last_n: int | None = None) -> str:
        return " ".join(w.text for w in self.transcript(last_n))

    def partial(self) -> str:
        """The not-yet-committed tail of the latest hypothesis (may still change; for display only)."""
        with self._lock:
            return " ".join(self._partial)

    def stats(self) -> AsrStats:
        policy = self.policy
        pending = self.reader.available_seconds if self.reader is not None else 0.0
        with self._lock:
            status, message = self._status, self._message
            if status == "running" and time.monotonic() - self._last_drop_wall < BEHIND_SHOW_S:
                status, message = "behind", f"dropped {self._dropped_s:.1f} s of audio to keep up"
            lat = np.array(self._latencies) if self._latencies else None
            return AsrStats(
                status=status,
                message=message,
                in_utterance=bool(policy and policy.in_utterance),
                pending_s=pending + self._inbox_s,
                dropped_s=self._dropped_s,
                drop_events=self._drop_events,
                runs=policy.stats.runs if policy else 0,
                committed_words=self._seq,
                last_run_s=self._last_run_s,
                compute_fraction=self._compute_s / self._received_s if self._received_s else 0.0,
                latency_p50_s=float(np.percentile(lat, 50)) if lat is not None else None,
                latency_p95_s=float(np.percentile(lat, 95)) if lat is not None else None,
                buffer_s=policy.buffer_seconds if policy else 0.0,
            )

    # ---- thread --------------------------------------------------------------------------------------------
    def _note_drop_locked(self, seconds: float) -> None:
        self._dropped_s += seconds
        self._drop_events += 1
        self._last_drop_wall = time.monotonic()
        log.warning(
            "ASR fell behind: dropped %.2f s of the oldest audio (%.1f s in total)", seconds, self._dropped_s
        )

    def _load(self) -> None:
        recognizer = self._recognizer or self._factory(self.config)
        self.policy = StreamingAsrPolicy(recognizer, self.config, vad=self._vad)

    def _next_chunk(self) -> AudioChunk | None:
        if self.reader is not None:
            r = self.reader
            if r.available_seconds > self.config.max_backlog_s:
                skipped = r.skip(self.config.max_backlog_s / 2)
                with self._lock:
                    self._note_drop_locked(skipped / r.ring.sample_rate)
            return r.read()
        with self._lock:
            if not self._inbox:
                return None
            c = self._inbox.popleft()
            self._inbox_s -= c.duration
            return c

    def _wait_input(self) -> None:
        if self.reader is not None:
            self.reader.wait(0.05)
        else:
            with self._words_cond:
                self._words_cond.wait_for(lambda: bool(self._inbox) or self._stop.is_set(), 0.05)

    def _loop(self) -> None:
        policy = self.policy
        assert policy is not None
        while not self._stop.is_set():
            with self._lock:
                self._busy = True
            try:
                got = False
                while (chunk := self._next_chunk()) is not None:
                    got = True
                    self._received_s += chunk.duration
                    policy.insert_audio(chunk)
                    if policy.utterance_ended:  # commit an utterance end before more audio arrives
                        self._process(policy)
                if policy.ready():
                    self._process(policy)
            finally:
                with self._lock:
                    self._busy = False
            if got:
                self._notify_timeline()
            if not got:
                self._wait_input()
        if self.finish_on_stop:
            while (chunk := self._next_chunk()) is not None:
                policy.insert_audio(chunk)
            words = policy.finish()
            with self._lock:
                self._partial = []
            done = self.clock.now()
            self._publish([dataclasses.replace(w, committed_at=done) for w in words])

    def _process(self, policy: StreamingAsrPolicy) -> None:
        t = time.perf_counter()  # compute cost (wall), for the stats only
        words = policy.process()
        dt = time.perf_counter() - t
        done = self.clock.now()  # commit time = when the words are available, after the compute
        words = [dataclasses.replace(w, committed_at=done) for w in words]
        with self._lock:
            self._last_run_s = dt
            self._compute_s += dt
            self._partial = policy.hypothesis
        self._publish(words)

    def _publish(self, words: list[Word]) -> None:
        if not words:
            return
        with self._words_cond:
            for w in words:
                self._words.append(w)
                if w.committed_at is not None:
                    self._latencies.append(w.committed_at - w.end)
            self._seq += len(words)
            self._words_cond.notify_all()
