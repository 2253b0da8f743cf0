"""``AudioSource``: a :class:`Source` that writes 16 kHz mono audio into an :class:`AudioRing`.

Consumers read through readers: ``read()``/``wait_read()`` use a default reader (opened on first use,
starting at the oldest audio still held), and every extra consumer opens its own with
``open_reader(name)`` so that the ASR worker and the voice-feature worker each get all the audio.
"""

from __future__ import annotations

import dataclasses

from realtime.clock import Clock
from realtime.sources.audio_ring import AudioReader, AudioRing
from realtime.sources.base import Source, SourceStats
from realtime.types import AudioChunk

SAMPLE_RATE = 16000


class AudioSource(Source):
    kind = "audio"

    def __init__(
        self,
        name: str,
        clock: Clock,
        buffer_s: float = 30.0,
        resync_tolerance_s: float = 0.2,
        start_timeout_s: float = 15.0,
    ) -> None:
        super().__init__(name, clock, start_timeout_s=start_timeout_s)
        self.sample_rate = SAMPLE_RATE
        self.ring = AudioRing(buffer_s, SAMPLE_RATE, resync_tolerance_s=resync_tolerance_s, name=name)
        self._default_reader: AudioReader | None = None
        self._device_overflows = 0  # overflows reported by the device/driver itself

    def open_reader(self, name: str, from_oldest: bool = True) -> AudioReader:
        """A new independent consumer cursor (each reader gets every sample)."""
        return self.ring.open_reader(name, from_oldest=from_oldest)

    def _reader(self) -> AudioReader:
        if self._default_reader is None:
            self._default_reader = self.ring.open_reader("default")
        return self._default_reader

    def read(self, max_seconds: float | None = None) -> AudioChunk | None:
        """All new audio since the last ``read`` on the default reader (non-blocking)."""
        return self._reader().read(max_seconds)

    def wait_read(
        self, timeout: float | None, min_seconds: float = 0.0, max_seconds: float | None = None
    ) -> AudioChunk | None:
        """Block up to ``timeout`` s for ``min_seconds`` of new audio on the default reader, then read."""
        return self._reader().read_wait(timeout, min_seconds, max_seconds)

    def _wake_readers(self) -> None:
        self.ring.close()

    def start(self) -> None:
        self.ring.reopen()
        super().start()

    def _extra_stats(self) -> dict[str, float]:
        readers = self.ring.readers()
        return {
            "buffered_s": max((r.available_seconds for r in readers), default=0.0),
            "dropped_s": sum(r.dropped_seconds for r in readers),
            "resyncs": float(self.ring.resyncs),
            "device_overflows": float(self._device_overflows),
            "nonfinite_samples": float(self.ring.nonfinite_samples),
        }

    def stats(self) -> SourceStats:
        base = super().stats()
        readers = self.ring.readers()
        return dataclasses.replace(
            base,
            dropped=sum(r.dropped_samples for r in readers),
            overflow=sum(r.overflow_events for r in readers) + self._device_overflows,
        )
