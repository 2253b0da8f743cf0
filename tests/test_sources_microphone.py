"""Microphone source through a real PulseAudio null sink: audio played into sink S is what PyAudio's
default input (S.monitor) records. The test starts and stops its own PulseAudio (tests/helpers_pulse.py)."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time

import numpy as np
import pytest
from helpers_monitor import wait_for
from helpers_pulse import pulse_available, pulse_null_sink, write_wav

from model.errors import DeviceError
from realtime.clock import MonotonicClock
from realtime.sources import MicrophoneConfig, MicrophoneSource, SourceStatus, list_input_devices
from realtime.sources.microphone import resolve_device

pytestmark = pytest.mark.device
SR = 16000


@pytest.fixture(scope="module")
def pulse():
    reason = pulse_available()
    if reason:
        pytest.skip(f"PulseAudio null-sink capture unavailable: {reason}")
    with pulse_null_sink() as server:
        yield server


@pytest.fixture(scope="module")
def tone(tmp_path_factory):
    t = np.arange(int(1.5 * SR)) / SR
    x = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    return write_wav(tmp_path_factory.mktemp("wav") / "tone440.wav", x, SR)


def mic_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("microphone:")]


def dominant_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SR)[np.argmax(spec)])


def record_tone(pulse, tone, config: MicrophoneConfig):
    clock = MonotonicClock()
    mic = MicrophoneSource(config, clock)
    mic.start()
    try:
        reader = mic.open_reader("test", from_oldest=False)
        time.sleep(0.3)
        played_at = clock.now()
        pulse.play(tone).wait(timeout=20)
        drained_at = clock.now()
        time.sleep(0.5)
        chunks = []
        while (c := reader.read()) is not None:
            chunks.append(c)
        return mic, chunks, played_at, drained_at
    finally:
        assert mic.stop()


@pytest.mark.parametrize("capture_rate", [0, 44100], ids=["16k", "44k1-resampled"])
def test_records_what_is_played_with_timestamps_on_the_clock(pulse, tone, capture_rate):
    mic, chunks, played_at, drained_at = record_tone(pulse, tone, MicrophoneConfig(capture_rate=capture_rate))
    assert mic.capture_rate == (capture_rate or SR)
    x = np.concatenate([c.samples for c in chunks])
    loud = np.flatnonzero(np.abs(x) > 0.1)
    assert len(loud) > 1.2 * SR  # about 1.5 s of tone arrived
    assert abs(dominant_hz(x[loud[0] : loud[-1]]) - 440.0) < 3.0  # the right pitch: rate/resampling correct
    # timestamps: contiguous (derived from the sample count), on the common clock, onset after play()
    for a, b in itertools.pairwise(chunks):
        assert b.t == pytest.approx(a.t_end, abs=1e-6)
    onset, offset = chunks[0].t + loud[0] / SR, chunks[0].t + loud[-1] / SR
    # sample-count timing: the 1.5 s tone spans 1.5 s (a driver period may be lost on a busy machine)
    assert offset - onset == pytest.approx(1.5, abs=0.15)
    # on the common clock: not before paplay started, and ending when paplay finished draining
    # (paplay itself may need a second or more to start on a busy machine)
    assert onset >= played_at - 0.05
    assert drained_at - 1.0 <= offset <= drained_at + 0.1
    stats = mic.stats()
    assert stats.status is SourceStatus.STOPPED
    assert stats.dropped == 0  # our ring lost nothing (PortAudio-level overflows are counted separately)
    assert stats.overflow == stats.extra["device_overflows"]
    assert not mic_threads()


def test_device_by_name_and_errors(pulse):
    names = [d.name for d in list_input_devices()]
    assert "pulse" in names
    mic = MicrophoneSource(MicrophoneConfig(device="PULS"), MonotonicClock())  # case-insensitive substring
    mic.start()
    assert mic.device is not None and mic.device.name == "pulse"
    assert mic.wait_read(timeout=3.0, min_seconds=0.2) is not None  # the null sink delivers (silence)
    mic.stop()
    with pytest.raises(DeviceError, match="no audio input device name contains 'nonexistent-usb-mic'"):
        MicrophoneSource(MicrophoneConfig(device="nonexistent-usb-mic"), MonotonicClock()).start()
    with pytest.raises(DeviceError, match="index 99 does not exist"):
        MicrophoneSource(MicrophoneConfig(device="99"), MonotonicClock()).start()
    assert not mic_threads()


def test_overflow_is_counted_per_reader_never_silent(pulse):
    mic = MicrophoneSource(MicrophoneConfig(buffer_s=1.0), MonotonicClock())
    mic.start()
    try:
        fast = mic.open_reader("fast", from_oldest=False)
        assert fast.wait(timeout=10.0)  # PortAudio's first callback can take a while on a busy machine
        fast.read()
        slow = mic.open_reader("slow", from_oldest=False)
        got = 0
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:  # the fast reader keeps up; the slow one sleeps
            c = fast.read_wait(0.2)
            got += len(c.samples) if c is not None else 0
        late = slow.read()
    finally:
        mic.stop()
    assert fast.dropped_samples == 0 and got > 2.0 * SR
    assert slow.overflow_events >= 1 and slow.dropped_seconds > 1.0
    assert late is not None and late.duration <= 1.0 + 1e-9  # only the newest second survives
    stats = mic.stats()
    assert stats.overflow >= 1 and stats.extra["dropped_s"] > 1.0


class _NoDevices:
    """PortAudio with no input devices at all (the lowest layer, as on a headless server)."""

    def get_default_input_device_info(self):
        raise OSError("No Default Input Device Available")

    def get_device_count(self) -> int:
        return 0


def test_no_input_device_error_names_the_alternatives():
    with pytest.raises(DeviceError) as err:
        resolve_device(_NoDevices(), "default")
    msg = str(err.value)
    assert "no audio input device" in msg and "PulseAudio" in msg and "ALSA" in msg and "--mic PATH" in msg


def test_microphone_reconnects_when_the_sound_server_restarts():
    """Its own PulseAudio (not the shared fixture): killed mid-run, then started again."""
    reason = pulse_available()
    if reason:
        pytest.skip(f"PulseAudio null-sink capture unavailable: {reason}")
    servers = contextlib.ExitStack()
    server = servers.enter_context(contextlib.ExitStack())
    server.enter_context(pulse_null_sink())
    mic = MicrophoneSource(
        MicrophoneConfig(stall_timeout_s=1.0, backoff_initial_s=0.3, backoff_max_s=1.0), MonotonicClock()
    )
    try:
        mic.start()
        reader = mic.open_reader("r")
        assert reader.wait(timeout=10.0)
        server.close()  # the sound server (the "device") goes away
        assert wait_for(lambda: mic.status is SourceStatus.RECONNECTING, 15.0)
        assert "audio input lost" in mic.status_message
        assert mic.is_running
        servers.enter_context(pulse_null_sink())  # … and comes back
        assert wait_for(lambda: mic.stats().reconnects >= 1 and mic.status is SourceStatus.RUNNING, 20.0)
        reader.read()
        assert reader.wait(timeout=10.0, min_seconds=0.1)  # audio flows again
    finally:
        assert mic.stop()
        servers.close()
    assert not mic_threads()


def test_devices_are_rescanned_when_another_library_holds_portaudio(tmp_path, monkeypatch):
    """mediapipe imports sounddevice, which initialises PortAudio at import time and so freezes its
    device list; a sound server started later must still be found."""
    reason = pulse_available()
    if reason:
        pytest.skip(f"PulseAudio null-sink capture unavailable: {reason}")
    sd = pytest.importorskip("sounddevice")
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path / 'nothing-here'}")
    for _ in range(sd._initialized):  # re-initialise sounddevice while no sound server is reachable
        sd._terminate()
    sd._initialize()
    try:
        with pulse_null_sink():
            assert "pulse" in [d.name for d in list_input_devices()]
            assert sd._initialized >= 1  # sounddevice got its hold back
    finally:
        monkeypatch.undo()
