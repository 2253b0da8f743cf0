"""A bounded single-writer, multi-reader ring of mono float32 audio with drift-free timestamps.

The writer (a PyAudio callback or a file-replay thread) appends blocks; each consumer (ASR worker, voice
feature worker, ...) owns an :class:`AudioReader` with its own cursor, so one slow consumer never steals
audio from another. Drop policy: **drop-oldest per reader** — when the writer would overwrite samples a
reader has not read yet, that reader's cursor jumps forward and the lost samples are counted on it
(``dropped_samples``, ``overflow_events``) and logged; nothing is ever lost silently.

Timestamps: sample ``i`` (absolute index since the ring was created) has time
``t_anchor + (i - i_anchor) / sample_rate``. The anchor is set by the first block and moved only when a
block's measured time disagrees with the sample-count prediction by more than ``resync_tolerance_s``
(device stall, dropped driver buffers, sound-card clock drift after a long time). Callback jitter therefore
never enters the timestamps, and drift stays bounded by the tolerance. A read never spans two anchors.
"""

from __future__ import annotations

import collections
import logging
import threading

import numpy as np

from realtime.types import AudioChunk

log = logging.getLogger(__name__)


class AudioRing:
    def __init__(
        self,
        capacity_s: float,
        sample_rate: int = 16000,
        resync_tolerance_s: float = 0.2,
        name: str = "audio",
    ) -> None:
        if capacity_s <= 0:
            raise ValueError("capacity_s must be > 0")
        self.name = name
        self.sample_rate = int(sample_rate)
        self.capacity = max(1, round(capacity_s * self.sample_rate))
        self.resync_tolerance_s = resync_tolerance_s
        self._buf = np.zeros(self.capacity, dtype=np.float32)
        self._written = 0
        self._anchors: collections.deque[tuple[int, float]] = collections.deque()
        self._cond = threading.Condition()
        self._readers: list[AudioReader] = []
        self._closed = False
        self.resyncs = 0
        self.nonfinite_samples = 0  # NaN/inf samples written (stored as 0)

    # ---- writer side ---------------------------------------------------------------------------------------
    def write(self, samples: np.ndarray, t_first: float) -> None:
        """Append ``samples`` whose first sample was captured at clock time ``t_first``. Non-finite samples
        (NaN/inf from a broken driver or file) are replaced by 0 and counted (``nonfinite_samples``): one
        NaN would otherwise spoil every feature step and whole ASR utterances around it. Samples are clipped
        to [-1, 1], as the offline path does."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        n = len(x)
        if n == 0:
            return
        bad = ~np.isfinite(x)
        n_bad = int(np.count_nonzero(bad))
        if n_bad:
            x = np.where(bad, np.float32(0.0), x)
        # Clip to full scale like a 16-bit source (and like the offline path, media.read_audio): a file
        # resampled by ffmpeg can overshoot slightly (jfk.flac peaks at 1.107).
        x = np.clip(x, -1.0, 1.0)
        with self._cond:
            if n_bad:
                self.nonfinite_samples += n_bad
                if self.nonfinite_samples == n_bad:
                    log.warning("%s: %d non-finite audio sample(s) replaced by silence", self.name, n_bad)
            start = self._written
            if not self._anchors:
                self._anchors.append((start, float(t_first)))
            else:
                predicted = self._time_of_locked(start)
                if abs(t_first - predicted) > self.resync_tolerance_s:
                    self._anchors.append((start, float(t_first)))
                    self.resyncs += 1
                    log.info(
                        "%s: timestamps re-anchored by %+.3f s (device stall or drift)",
                        self.name,
                        t_first - predicted,
                    )
            if n > self.capacity:  # only the newest `capacity` samples can be kept
                x = x[-self.capacity :]
            end = start + n
            oldest_kept = end - self.capacity
            for r in self._readers:
                if r._pos < oldest_kept:
                    lost = oldest_kept - r._pos
                    r.dropped_samples += lost
                    r.overflow_events += 1
                    r._pos = oldest_kept
                    if r.overflow_events == 1 or r.overflow_events % 50 == 0:
                        log.warning(
                            "%s: reader '%s' fell behind; dropped %.2f s of the oldest audio "
                            "(%d overflows so far)",
                            self.name,
                            r.name,
                            lost / self.sample_rate,
                            r.overflow_events,
                        )
            m = len(x)
            pos = (end - m) % self.capacity
            first = min(m, self.capacity - pos)
            self._buf[pos : pos + first] = x[:first]
            if first < m:
                self._buf[: m - first] = x[first:]
            self._written = end
            # drop anchors no longer needed (keep the one covering the oldest retained sample)
            while len(self._anchors) >= 2 and self._anchors[1][0] <= max(0, oldest_kept):
                self._anchors.popleft()
            self._cond.notify_all()

    def close(self) -> None:
        """No more audio will come (end of file or source stopped): wake every waiting reader."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    @property
    def written(self) -> int:
        with self._cond:
            return self._written

    def open_reader(self, name: str, from_oldest: bool = True) -> AudioReader:
        """A new cursor: from the oldest sample still held (default) or from now on."""
        with self._cond:
            start = max(0, self._written - self.capacity) if from_oldest else self._written
            reader = AudioReader(self, name, start)
            self._readers.append(reader)
            return reader

    def readers(self) -> list[AudioReader]:
        with self._cond:
            return list(self._readers)

    def _time_of_locked(self, index: int) -> float:
        anchor_i, anchor_t = self._anchors[0]
        for ai, at in self._anchors:
            if ai <= index:
                anchor_i, anchor_t = ai, at
            else:
                break
        return anchor_t + (index - anchor_i) / self.sample_rate

    def _next_anchor_after_locked(self, index: int) -> int | None:
        for ai, _ in self._anchors:
            if ai > index:
                return ai
        return None


class AudioReader:
    """One consumer's cursor into an :class:`AudioRing` (use from one thread)."""

    def __init__(self, ring: AudioRing, name: str, start: int) -> None:
        self.ring = ring
        self.name = name
        self._pos = start
        self.dropped_samples = 0  # lost to overflow (drop-oldest) or skipped on purpose via skip()
        self.overflow_events = 0
        self.skipped_samples = 0
        self._closed = False

    @property
    def available(self) -> int:
        with self.ring._cond:
            return self.ring._written - self._pos

    @property
    def available_seconds(self) -> float:
        return self.available / self.ring.sample_rate

    @property
    def exhausted(self) -> bool:
        """The ring is closed and this reader has read everything."""
        with self.ring._cond:
            return self.ring._closed and self._pos >= self.ring._written

    @property
    def dropped_seconds(self) -> float:
        return self.dropped_samples / self.ring.sample_rate

    def read(self, max_seconds: float | None = None) -> AudioChunk | None:
        """All unread audio (up to ``max_seconds``) as one chunk, or None if there is none. Never blocks."""
        ring = self.ring
        with ring._cond:
            return self._read_locked(max_seconds)

    def wait(self, timeout: float | None = None, min_seconds: float = 0.0) -> bool:
        """Block until at least ``min_seconds`` (or any sample) is unread; False on timeout/closed ring."""
        ring = self.ring
        need = max(1, round(min_seconds * ring.sample_rate))
        with ring._cond:
            ok = ring._cond.wait_for(
                lambda: (ring._written - self._pos) >= need or ring._closed or self._closed, timeout
            )
            return bool(ok) and (ring._written - self._pos) >= need

    def read_wait(
        self, timeout: float | None, min_seconds: float = 0.0, max_seconds: float | None = None
    ) -> AudioChunk | None:
        """Wait up to ``timeout`` s for ``min_seconds`` of audio, then read (a closed ring gives the rest)."""
        self.wait(timeout, min_seconds)
        return self.read(max_seconds)

    def skip(self, keep_seconds: float) -> int:
        """Discard unread audio older than the newest ``keep_seconds`` (backlog policy); returns samples
        skipped, which are counted in ``dropped_samples`` and ``skipped_samples``."""
        ring = self.ring
        with ring._cond:
            keep = round(keep_seconds * ring.sample_rate)
            target = ring._written - keep
            if target <= self._pos:
                return 0
            n = target - self._pos
            self._pos = target
            self.dropped_samples += n
            self.skipped_samples += n
            return n

    def close(self) -> None:
        ring = self.ring
        with ring._cond:
            self._closed = True
            if self in ring._readers:
                ring._readers.remove(self)
            ring._cond.notify_all()

    def _read_locked(self, max_seconds: float | None) -> AudioChunk | None:
        ring = self.ring
        end = ring._written
        if end <= self._pos:
            return None
        boundary = ring._next_anchor_after_locked(self._pos)
        if boundary is not None:
            end = min(end, boundary)
        if max_seconds is not None:
            end = min(end, self._pos + max(1, round(max_seconds * ring.sample_rate)))
        n = end - self._pos
        p = self._pos % ring.capacity
        first = min(n, ring.capacity - p)
        out = np.empty(n, dtype=np.float32)
        out[:first] = ring._buf[p : p + first]
        if first < n:
            out[first:] = ring._buf[: n - first]
        t = ring._time_of_locked(self._pos)
        self._pos = end
        return AudioChunk(samples=out, t=t, sample_rate=ring.sample_rate)
