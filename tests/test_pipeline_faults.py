"""Faults and lifecycle with real lowest layers: a network camera (MJPEG on 127.0.0.1) that vanishes and
comes back, stop/start, audio overflow in a fast replay, and a real PulseAudio microphone (null sink)."""

from __future__ import annotations

import pytest
from helpers_monitor import MjpegServer, file_pipeline, make_checkpoint, pipeline_threads, wait_for
from helpers_pulse import pulse_available, pulse_null_sink, start_on_pulse

from mmcl.app_config import load_app_config
from realtime.pipeline.session import build_pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "monitor.pt")


def _status(p, name: str) -> str:
    return next(d.status for d in p.snapshot().devices if d.name == name)


def test_camera_disappearing_mid_run_and_stop_start(checkpoint) -> None:
    server = MjpegServer()
    port = server.port
    app = load_app_config(overrides=[
        f"sources.camera.source={server.url}", "sources.camera.read_timeout_s=1.0",
        "sources.camera.open_timeout_s=3.0", "sources.camera.backoff_initial_s=0.2",
        "sources.camera.backoff_max_s=0.5", "monitor.hop_s=0.25",
    ])  # fmt: skip
    p = build_pipeline(app, mode="live", checkpoint=checkpoint, audio=False)
    try:
        p.start()
        assert wait_for(lambda: p.snapshot().windows >= 3, 60)
        snap = p.snapshot()
        vision = snap.modalities[0]
        assert "no face" in vision.detail and snap.prediction is None  # gray frames: nothing to score
        assert snap.status == "no face, no speech: nothing to score"

        server.close()  # the camera disappears
        assert wait_for(lambda: _status(p, "camera") == "reconnecting", 20)
        snap = p.snapshot()
        assert snap.modalities[0].detail.startswith("camera reconnecting") and not snap.modalities[0].live
        n = snap.windows
        assert wait_for(lambda: p.snapshot().windows >= n + 4, 20)  # windows go on without a camera
        assert p.running and p._thread.is_alive()

        server = MjpegServer(port=port)  # ... and comes back
        assert wait_for(lambda: _status(p, "camera") == "running", 30)
        assert next(d for d in p.snapshot().devices if d.name == "camera").reconnects >= 1

        assert p.stop()
        assert pipeline_threads() == []
        stopped_windows = p.snapshot().windows
        p.start()  # start again: the same sources and workers
        assert wait_for(lambda: p.snapshot().windows >= stopped_windows + 3, 60)
        assert _status(p, "face") == "running"
    finally:
        assert p.stop()
        server.close()
    assert pipeline_threads() == []


def test_audio_overflow_in_a_fast_replay_is_counted_and_shown(checkpoint, shared_data) -> None:
    """fast replay into a 1 s ring: the readers cannot keep up, drop the oldest audio, and say so."""
    p = file_pipeline(checkpoint, None, str(shared_data / "media" / "jfk.flac"), mode="fast",
                      overrides=["sources.microphone.buffer_s=1.0"])  # fmt: skip
    p.start()
    try:
        assert p.wait(120)
        snap = p.snapshot()
    finally:
        assert p.stop()
    assert snap.drops["audio overflow events"] > 0 and snap.drops["audio dropped s"] > 0
    audio = next(d for d in snap.devices if d.kind == "audio-file")
    assert audio.dropped > 0 and audio.status == "ended"
    assert snap.windows >= 20  # the window loop followed the media time to the end
    assert pipeline_threads() == []


@pytest.mark.device
def test_live_microphone_through_pulseaudio(checkpoint, shared_data, tmp_path) -> None:
    reason = pulse_available()
    if reason:
        pytest.skip(reason)
    from helpers_monitor import ffmpeg

    wav = tmp_path / "speech.wav"
    ffmpeg("-i", str(shared_data / "media" / "jfk.flac"), "-ac", "1", "-ar", "16000", str(wav))
    with pulse_null_sink() as pulse:
        app = load_app_config(overrides=["sources.microphone.device=default"])
        p = build_pipeline(app, mode="live", checkpoint=checkpoint, camera=False)
        try:
            start_on_pulse(p)
            player = pulse.play(wav)
            assert wait_for(
                lambda: "country" in " ".join(w.text for w in p.snapshot().transcript).lower(), 60
            )
            player.wait(30)
            snap = p.snapshot()
            mic = next(d for d in snap.devices if d.kind == "microphone")
            assert mic.status == "running" and mic.delivered > 50
            assert snap.prediction is not None and snap.prediction.contributions["audio"] is not None
            assert snap.latency["voice"].count > 50
        finally:
            assert p.stop()
    assert pipeline_threads() == []
