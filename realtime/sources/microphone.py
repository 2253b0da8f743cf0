"""PyAudio microphone source: 16 kHz mono float32 into a bounded :class:`AudioRing`.

The source thread owns the PyAudio instance and the input stream (open, watch, reopen, close); PortAudio
calls ``_callback`` on its own thread, which only converts the block and writes it to the ring. The device
is chosen by index ("3"), by a case-insensitive name substring ("USB"), or "default". If the device refuses
16 kHz it is opened at its native rate and resampled with soxr (streaming, HQ). Multi-channel devices are
averaged to mono.

Timestamps: the callback reads the clock when a block arrives; the block's first sample is taken to be
``now - block_duration`` (PortAudio's own input latency is not subtracted). The ring then derives every
sample's time from the sample count, re-anchoring only on disagreements larger than
``resync_tolerance_s`` — drift-free and jitter-free (see :mod:`realtime.sources.audio_ring`).

Overflows are never silent: ring overflow (a reader too slow) is counted per reader; PortAudio's input
overflow flag is counted as ``device_overflows``; a device that stops calling back for ``stall_timeout_s``
is reopened with backoff (status ``reconnecting`` from the moment the stall is noticed until audio flows
again: a suspended PulseAudio source reopens fine but stays silent).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from model.errors import ConfigError, DeviceError
from realtime.clock import Clock
from realtime.sources.audio_source import SAMPLE_RATE, AudioSource
from realtime.sources.base import SourceStatus, validate_backoff

log = logging.getLogger(__name__)

NO_INPUT_HELP = (
    "check that a microphone is connected and that PulseAudio/PipeWire is running (`pactl info`) or that "
    "ALSA sees it (`arecord -l`; inputs: `pactl list short sources`); or pass --mic PATH to replay an "
    "audio file"
)


@dataclass
class MicrophoneConfig:
    device: str = "default"  # "default", a PortAudio index ("3"), or a name substring ("USB")
    capture_rate: int = 0  # 0: 16 kHz if the device accepts it, else its native rate; >0: force this rate
    block_s: float = 0.064  # PortAudio buffer length (1024 frames at 16 kHz)
    buffer_s: float = 30.0  # ring capacity: how far any reader may fall behind before audio is dropped
    resync_tolerance_s: float = 0.2
    reconnect: bool = True
    stall_timeout_s: float = 5.0  # no callback for this long -> the device is considered gone
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    quiet_alsa: bool = True  # hide ALSA/JACK probe messages printed on stderr while PortAudio starts

    def __post_init__(self) -> None:
        self.device = str(self.device).strip() or "default"
        if self.capture_rate < 0 or (0 < self.capture_rate < 8000):
            raise ConfigError(f"microphone.capture_rate must be 0 (auto) or >= 8000, got {self.capture_rate}")
        if not 0.005 <= self.block_s <= 0.5:
            raise ConfigError("microphone.block_s must be between 0.005 and 0.5 s")
        if self.buffer_s < 1.0:
            raise ConfigError("microphone.buffer_s must be >= 1 s")
        if self.stall_timeout_s <= 0 or self.resync_tolerance_s <= 0:
            raise ConfigError("microphone.stall_timeout_s and resync_tolerance_s must be > 0")
        validate_backoff(self.backoff_initial_s, self.backoff_max_s, "microphone")


@dataclass(frozen=True)
class AudioDeviceInfo:
    index: int
    name: str
    max_input_channels: int
    default_sample_rate: float
    is_default: bool


@contextlib.contextmanager
def _quiet_stderr(enabled: bool) -> Iterator[None]:
    """Silence fd 2 (ALSA and JACK print probe errors there while PortAudio enumerates devices)."""
    if not enabled:
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _pyaudio(quiet: bool) -> Any:
    try:
        import pyaudio
    except ImportError:
        raise DeviceError(
            "PyAudio is not installed: apt-get install portaudio19-dev && pip install pyaudio; "
            "or pass --mic PATH to replay an audio file"
        ) from None
    with _quiet_stderr(quiet):
        held = _release_other_portaudio_users()
        try:
            return pyaudio.PyAudio()
        finally:
            _restore_other_portaudio_users(held)


def _release_other_portaudio_users() -> int:
    """PortAudio scans devices only when its init count goes from 0 to 1. mediapipe imports
    ``sounddevice``, which initialises the same libportaudio at import time, so devices that appeared
    later (a sound server started after the imports, a USB microphone plugged in before a reconnect)
    would stay invisible to PyAudio. Release sounddevice's hold so that PyAudio's init rescans; it is
    restored right after (the app opens no sounddevice streams)."""
    sd = sys.modules.get("sounddevice")
    held = int(getattr(sd, "_initialized", 0) or 0) if sd is not None else 0
    released = 0
    for _ in range(held):
        try:
            sd._terminate()  # type: ignore[union-attr]
            released += 1
        except Exception:
            break
    return released


def _restore_other_portaudio_users(count: int) -> None:
    sd = sys.modules.get("sounddevice")
    for _ in range(count):
        with contextlib.suppress(Exception):
            sd._initialize()  # type: ignore[union-attr]


def _input_devices(pa: Any) -> list[AudioDeviceInfo]:
    try:
        default = pa.get_default_input_device_info()["index"]
    except OSError:
        default = -1
    out = []
    for i in range(pa.get_device_count()):
        d = pa.get_device_info_by_index(i)
        if int(d.get("maxInputChannels", 0)) > 0:
            out.append(
                AudioDeviceInfo(
                    i, str(d["name"]), int(d["maxInputChannels"]), float(d["defaultSampleRate"]), i == default
                )
            )
    return out


def list_input_devices(quiet: bool = True) -> list[AudioDeviceInfo]:
    """Every PortAudio device with input channels (empty if PortAudio sees none)."""
    pa = _pyaudio(quiet)
    try:
        return _input_devices(pa)
    finally:
        pa.terminate()


def resolve_device(pa: Any, spec: str) -> AudioDeviceInfo:
    devices = _input_devices(pa)
    if not devices:
        raise DeviceError(f"no audio input device found: {NO_INPUT_HELP}")
    if spec == "default":
        for d in devices:
            if d.is_default:
                return d
        return devices[0]
    if spec.isdigit():
        for d in devices:
            if d.index == int(spec):
                return d
        raise DeviceError(
            f"audio input device index {spec} does not exist or has no input channels; inputs: "
            + ", ".join(f"{d.index}: {d.name}" for d in devices)
        )
    matches = [d for d in devices if spec.lower() in d.name.lower()]
    if not matches:
        raise DeviceError(
            f"no audio input device name contains {spec!r}; inputs: "
            + ", ".join(f"{d.index}: {d.name}" for d in devices)
        )
    return matches[0]


class MicrophoneSource(AudioSource):
    kind = "microphone"

    def __init__(self, config: MicrophoneConfig, clock: Clock, name: str = "microphone") -> None:
        super().__init__(name, clock, buffer_s=config.buffer_s, resync_tolerance_s=config.resync_tolerance_s)
        self.config = config
        self.device: AudioDeviceInfo | None = None
        self.capture_rate = 0
        self.channels = 1
        self._resampler: Any = None
        self._last_callback = 0.0
        self._callbacks = 0  # since the stream was (re)opened
        self._callback_errors = 0
        self._wake = threading.Event()
        self._await_audio: int | None = None  # after a reconnect: delivered count to exceed before "running"

    # ---- PortAudio callback (PortAudio's thread) -----------------------------------------------------------
    def _callback(
        self, in_data: bytes | None, frame_count: int, time_info: Any, status: int
    ) -> tuple[None, int]:
        import pyaudio

        now = self.clock.now()
        try:
            self._last_callback = now
            self._callbacks += 1
            if status & pyaudio.paInputOverflow:
                self._device_overflows += 1
            if in_data:
                x = np.frombuffer(in_data, dtype=np.float32)
                if self.channels > 1:
                    x = x.reshape(-1, self.channels).mean(axis=1)
                if self._resampler is not None:
                    x = self._resampler.resample_chunk(x.astype(np.float32))
                if len(x):
                    self.ring.write(x, now - len(x) / SAMPLE_RATE)
                    self._count_delivered(now)
        except Exception:  # never let an exception escape into PortAudio; count and log once in a while
            self._callback_errors += 1
            if self._callback_errors in (1, 10, 100):
                log.exception("microphone callback failed (%d times)", self._callback_errors)
        return None, pyaudio.paContinue

    # ---- device thread -------------------------------------------------------------------------------------
    def _choose_format(self, pa: Any, dev: AudioDeviceInfo) -> tuple[int, int]:
        import pyaudio

        rates = (
            [self.config.capture_rate]
            if self.config.capture_rate
            else [SAMPLE_RATE, int(dev.default_sample_rate)]
        )
        for ch in (1, min(2, dev.max_input_channels), dev.max_input_channels):
            for rate in rates:
                try:
                    if pa.is_format_supported(
                        rate, input_device=dev.index, input_channels=ch, input_format=pyaudio.paFloat32
                    ):
                        return rate, ch
                except ValueError:
                    continue
        raise DeviceError(
            f"audio device {dev.index} ({dev.name}) accepts none of {rates} Hz as float32 "
            f"input; set microphone.capture_rate to a rate it supports, or {NO_INPUT_HELP}"
        )

    def _open_stream(self, pa: Any) -> Any:
        import pyaudio

        dev = resolve_device(pa, self.config.device)
        rate, channels = self._choose_format(pa, dev)
        self.device, self.capture_rate, self.channels = dev, rate, channels
        self._resampler = None
        if rate != SAMPLE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
            log.info("microphone %s captures at %d Hz; resampling to %d Hz", dev.name, rate, SAMPLE_RATE)
        frames = max(64, round(self.config.block_s * rate))
        try:
            with _quiet_stderr(self.config.quiet_alsa):
                stream = pa.open(
                    format=pyaudio.paFloat32,
                    channels=channels,
                    rate=rate,
                    input=True,
                    input_device_index=dev.index,
                    frames_per_buffer=frames,
                    stream_callback=self._callback,
                    start=False,
                )
        except (OSError, ValueError) as exc:
            raise DeviceError(
                f"cannot open audio input {dev.index} ({dev.name}) at {rate} Hz: {exc}; {NO_INPUT_HELP}"
            ) from None
        self._last_callback = self.clock.now()
        self._callbacks = 0
        stream.start_stream()
        return stream

    def _on_stop_requested(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        self._wake.clear()
        self._await_audio = None
        pa: Any = _pyaudio(self.config.quiet_alsa)
        stream = None
        try:
            stream = self._open_stream(pa)
            self._mark_ready()
            while not self._stop_event.is_set():
                self._wake.wait(0.1)
                if self._stop_event.is_set():
                    break
                if self._await_audio is not None and self._delivered > self._await_audio:
                    self._await_audio = None
                    self._mark_ready()
                silent_for = self.clock.now() - self._last_callback
                # PortAudio-over-PulseAudio can take seconds to deliver the first block: more grace then
                limit = (
                    self.config.stall_timeout_s
                    if self._callbacks > 1
                    else max(10.0, self.config.stall_timeout_s)
                )
                active = stream.is_active()
                if active and silent_for < limit:
                    continue
                if not self.config.reconnect:
                    raise DeviceError(
                        f"audio input {self.device.name if self.device else ''} stopped "
                        f"delivering for {silent_for:.1f} s (reconnect is off)"
                    )
                # say so before closing: closing a stalled stream can block until the device wakes up
                # an inactive stream is a device/server that went away ("lost", as _reconnect says next);
                # an active one that delivers nothing is stalled
                what = f"stalled: no audio for {silent_for:.1f} s" if active else "lost: the input stream stopped"
                self._set_status(SourceStatus.RECONNECTING, f"audio input {what}; reopening")
                _close(stream)
                stream = None
                pa.terminate()
                pa = None
                pa, stream = self._reconnect()
                if stream is None:
                    break
        finally:
            if stream is not None:
                _close(stream)
            if pa is not None:
                pa.terminate()
            self.ring.close()

    def _reconnect(self) -> tuple[Any, Any]:
        """Reopen with backoff; (pa, stream) on success, (None, None) once stop() was called."""
        backoff = self.config.backoff_initial_s
        attempt = 0
        while not self._stop_event.is_set():
            attempt += 1
            self._set_status(
                SourceStatus.RECONNECTING, f"audio input lost; attempt {attempt}, next in {backoff:.1f} s"
            )
            if self._stop_event.wait(backoff):
                break
            pa = _pyaudio(self.config.quiet_alsa)
            try:
                stream = self._open_stream(pa)
            except DeviceError as exc:
                log.info("microphone reconnect attempt %d failed: %s", attempt, exc)
                pa.terminate()
                backoff = min(backoff * 2.0, self.config.backoff_max_s)
                continue
            with self._lock:
                self._reconnects += 1
            # open is not enough (a suspended source opens and stays silent): running once audio flows
            self._set_status(SourceStatus.RECONNECTING, f"audio input reopened (attempt {attempt}); waiting for audio")
            self._await_audio = self._delivered
            return pa, stream
        return None, None

    def _extra_stats(self) -> dict[str, float]:
        extra = super()._extra_stats()
        extra["capture_rate"] = float(self.capture_rate)
        extra["callback_errors"] = float(self._callback_errors)
        return extra


def _close(stream: Any) -> None:
    """Abort (not stop: stopping waits for the device, which blocks while it is stalled), then close."""
    with contextlib.suppress(Exception):
        stream.abort_stream()
    with contextlib.suppress(Exception):
        stream.close()
