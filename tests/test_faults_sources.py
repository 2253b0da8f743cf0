"""Source-level faults with only the lowest layer substituted: a corrupt audio stream whose decoder floods
stderr, a looping camera file that disappears, non-finite samples from an audio driver, and a microphone
whose PulseAudio sink is suspended mid-run (the pipeline keeps going and says so, then recovers)."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers_faults import corrupt_bytes
from helpers_monitor import ffmpeg, make_checkpoint, pipeline_threads, wait_for
from helpers_pulse import pulse_available, pulse_null_sink, start_on_pulse

from realtime.clock import MonotonicClock
from realtime.dashboard.panels import modality_detail
from realtime.sources import AudioRing, ReplayTimeline, SourceStatus
from realtime.sources.audio_file import AudioFileSource
from realtime.sources.camera import CameraConfig, CameraSource
from realtime.sources.replay import ReplayConfig

SR = 16000


def test_corrupt_audio_stream_never_freezes_the_replay(tmp_path: Path) -> None:
    """ffmpeg reports every damaged packet on stderr; undrained, that pipe filled up after 64 KiB, ffmpeg
    blocked and the replay froze mid-file for good. Now the source reaches the end of the stream."""
    clean = tmp_path / "noise.ts"
    ffmpeg("-f", "lavfi", "-i", "anoisesrc=d=120:c=pink:r=16000:a=0.3:seed=1", "-c:a", "libmp3lame", str(clean))
    bad = corrupt_bytes(clean, tmp_path / "bad.ts", start_frac=0.02, n_spans=3000, span=16, seed=2)
    probe = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(bad), "-vn", "-f", "f32le", "-ac", "1",
                            "-ar", "16000", "-"], capture_output=True, timeout=120)  # fmt: skip
    assert len(probe.stderr) > 2 * 65536  # the flood that used to fill the pipe
    decodable = len(probe.stdout) / 4 / SR
    src = AudioFileSource(str(bad), ReplayTimeline("fast", MonotonicClock()), buffer_s=200.0)
    reader = src.open_reader("r")
    src.start()
    try:
        assert src.wait_ended(60.0), f"replay stuck at {src.media_t:.1f} s of {decodable:.1f} s"
    finally:
        assert src.stop()
    assert src.media_t == pytest.approx(decodable, abs=0.1)  # everything ffmpeg could decode arrived
    assert reader.available_seconds == pytest.approx(src.media_t, abs=0.1)
    assert not [t for t in threading.enumerate() if t.name.startswith("audio-file")]


def test_a_looping_camera_file_that_disappears_fails_clearly(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=64x48:r=15:d=1", "-c:v", "mpeg4", str(clip))
    timeline = ReplayTimeline("realtime", MonotonicClock())
    cam = CameraSource(CameraConfig(source=str(clip)), timeline.clock, timeline, ReplayConfig(loop=True))
    cam.start()
    try:
        assert wait_for(lambda: cam.stats().delivered >= 5, 10)
        clip.unlink()  # the file (a USB stick, a network share) goes away; the loop restart cannot reopen it
        assert wait_for(lambda: cam.status is SourceStatus.FAILED, 10)
        assert "does not exist" in cam.status_message and str(clip) in cam.status_message
    finally:
        assert cam.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("camera:")]


def test_non_finite_audio_samples_are_zeroed_and_counted() -> None:
    ring = AudioRing(5.0, SR)
    reader = ring.open_reader("r")
    x = np.full(1600, 0.25, np.float32)
    x[[3, 700]] = np.nan
    x[1000] = np.inf
    x[1001] = -np.inf
    ring.write(x, 0.0)
    got = reader.read()
    assert got is not None and np.isfinite(got.samples).all()
    assert got.samples[[3, 700, 1000, 1001]].tolist() == [0.0] * 4 and got.samples[4] == np.float32(0.25)
    assert ring.nonfinite_samples == 4


@pytest.mark.slow
@pytest.mark.device
def test_microphone_stalls_and_resumes_while_the_monitor_runs(tmp_path: Path, shared_data: Path) -> None:
    """The PulseAudio null sink behind the default microphone is suspended for ~6 s mid-speech: the
    monitor keeps producing windows, shows the microphone as reconnecting within seconds (it used to say
    'running' for as long as the device slept), and after the resume audio, voice features and words
    flow again."""
    reason = pulse_available()
    if reason:
        pytest.skip(reason)
    from mmcl.app_config import load_app_config
    from realtime.pipeline.session import build_pipeline

    wav = tmp_path / "speech.wav"
    ffmpeg("-i", str(shared_data / "media" / "jfk.flac"), "-ac", "1", "-ar", "16000", str(wav))
    ckpt = make_checkpoint(tmp_path / "ck.pt")
    with pulse_null_sink() as pulse:
        app = load_app_config(overrides=["sources.microphone.device=default", "sources.microphone.stall_timeout_s=1.5",
                                         "sources.microphone.backoff_initial_s=0.3",
                                         "sources.microphone.backoff_max_s=1.0"])  # fmt: skip
        p = build_pipeline(app, mode="live", checkpoint=ckpt, camera=False)
        try:
            start_on_pulse(p)
            mic = p.sources.audio
            assert wait_for(lambda: mic.stats().delivered > 20, 30)
            pulse.pactl("suspend-sink", "S", "1")  # the device goes to sleep
            t_suspend = time.monotonic()
            assert wait_for(lambda: mic.status is SourceStatus.RECONNECTING, 10)
            noticed = time.monotonic() - t_suspend
            audio_view = next(m for m in p.snapshot().modalities if m.name == "audio")
            assert modality_detail(audio_view).startswith("microphone reconnecting"), audio_view
            n = p.snapshot().windows
            assert wait_for(lambda: p.snapshot().windows >= n + 6, 20)  # windows go on without audio
            while time.monotonic() - t_suspend < 6.0:
                assert mic.status is SourceStatus.RECONNECTING  # never claims "running" while asleep
                time.sleep(0.2)
            pulse.pactl("suspend-sink", "S", "0")  # ... and wakes up
            assert wait_for(lambda: mic.status is SourceStatus.RUNNING, 20)
            steps = p.voice.stats().items
            player = pulse.play(wav)
            assert wait_for(lambda: "country" in " ".join(w.text for w in p.snapshot().transcript).lower(), 90)
            player.wait(30)
            snap = p.snapshot()
        finally:
            assert p.stop()
    assert pipeline_threads() == []
    assert noticed < 1.5 + 3.0  # stall_timeout_s plus a little
    assert mic.stats().reconnects >= 1 and p.voice.stats().items > steps
    assert snap.prediction is not None and snap.prediction.contributions["audio"] is not None
