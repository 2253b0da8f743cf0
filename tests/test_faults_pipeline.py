"""Fault matrix of the whole monitor pipeline, with real components and only the lowest layer broken:
an ASR slower than real time, NaN/inf from the face model and in the audio samples, a modality absent for
minutes, corrupt and truncated video files, a network camera sending garbage JPEG parts; and the lifecycle:
a network camera (MJPEG on 127.0.0.1) that vanishes and comes back, stop/start, audio overflow in a fast
replay, a real PulseAudio microphone (null sink).

Each test checks that the monitor keeps running (or ends cleanly), says what happened, keeps every queue
bounded, and publishes only finite predictions. See docs/RELIABILITY.md for the matrix.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
from helpers_faults import GarbageMjpegServer, SlowRecognizer, corrupt_bytes, write_float_wav
from helpers_monitor import (
    MjpegServer,
    crema_concat,
    ffmpeg,
    file_pipeline,
    make_checkpoint,
    pipeline_threads,
    shared_recognizer,
    shared_text_embedder,
    wait_for,
)
from helpers_pulse import pulse_available, pulse_null_sink, start_on_pulse
from typer.testing import CliRunner

from mmcl.app_config import load_app_config
from mmcl.cli import app
from model.errors import DeviceError
from realtime.dashboard.panels import modality_detail, status_line
from realtime.pipeline.eventlog import read_events
from realtime.pipeline.session import build_pipeline

pytestmark = pytest.mark.slow
SR = 16000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "monitor.pt")


@pytest.fixture(scope="module")
def crema_clip(shared_data, tmp_path_factory) -> Path:
    """Three CREMA-D clips ("Don't forget a jacket") back to back: 6 s, a face and speech (mpeg4 + aac)."""
    out = tmp_path_factory.mktemp("clip") / "crema3.mp4"
    return crema_concat(shared_data / "media" / "crema_d", out, "320:240", faststart=True)


def _decode(path: Path) -> np.ndarray:
    from realtime.sources.audio_file import decode_audio

    return decode_audio(path)


def _finite_predictions(windows: list[dict]) -> list[float]:
    scores = [w["prediction"]["score"] for w in windows if w.get("prediction")]
    assert all(s is not None and math.isfinite(s) for s in scores)
    return scores


# ---- ASR slower than real time -------------------------------------------------------------------------------
def test_asr_slower_than_real_time_drops_the_oldest_audio_visibly(checkpoint, shared_data) -> None:
    """Real-time replay of jfk.flac with a recogniser 1.5 s slower per call than the audio allows: the worker
    drops the oldest audio (counted, status 'behind' on the dashboard), its backlog stays bounded, the
    windows keep coming at the hop rate."""
    app_cfg = load_app_config(overrides=[
        "sources.replay.mode=realtime", f"sources.microphone.device={shared_data / 'media' / 'jfk.flac'}",
        "asr.max_backlog_s=1.0",
    ])  # fmt: skip
    slow = SlowRecognizer(shared_recognizer(), delay_s=1.5)
    p = build_pipeline(app_cfg, mode="replay", checkpoint=checkpoint, camera=False,
                       embedder_factory=lambda: shared_text_embedder(app_cfg.features.feature_set),
                       recognizer=slow)  # fmt: skip
    pending, statuses, messages = [], set(), set()
    during: list[tuple[float, int, float]] = []  # (elapsed, windows, skipped) while the audio plays
    p.start()
    try:
        t0 = time.monotonic()
        while not p.finished.is_set() and time.monotonic() - t0 < 120:
            snap = p.snapshot()
            pending.append(snap.asr_lag_s)
            asr = next(d for d in snap.devices if d.name == "asr")
            statuses.add(asr.status)
            messages.add(asr.message)
            if not p.sources.audio.ended:
                during.append((snap.elapsed_s, snap.windows, snap.drops["windows_skipped"]))
            time.sleep(0.1)
        assert p.finished.is_set(), p.snapshot().phase
        snap = p.snapshot()
    finally:
        assert p.stop()
    assert pipeline_threads() == []
    assert slow.calls >= 2
    assert snap.drops["asr_dropped_s_backlog"] > 0.5  # the oldest audio was dropped, and counted
    assert p.asr is not None and p.asr.stats().drop_events >= 1
    assert "behind" in statuses and any("dropped" in m and "to keep up" in m for m in messages)
    # bounded: never more than the policy limit plus what arrives during one slow call (and its compute)
    assert max(pending) <= 1.0 + 2 * 1.5 + 2.0, max(pending)
    assert p.asr.policy is not None and p.asr.policy.buffer_seconds <= p.asr_cfg.max_buffer_s
    # while the ASR is behind, the window loop keeps its hop (the end of the replay, which waits for the
    # slow recogniser to commit the last words, may skip a few)
    elapsed, windows, skipped = during[-1]
    assert elapsed > 9.0 and windows >= elapsed / 0.5 - 3 and skipped <= 1, during[-1]


# ---- NaN / inf in features -------------------------------------------------------------------------------------
class _PoisonedLandmarker:
    """MediaPipe's FaceLandmarker with every 3rd result poisoned: NaN blendshape scores and a NaN pose."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls = self.poisoned = 0

    def detect_for_video(self, image, ts_ms):
        res = self.inner.detect_for_video(image, ts_ms)
        self.calls += 1
        if self.calls % 3 == 0 and res.face_blendshapes:
            for c in res.face_blendshapes[0]:
                c.score = float("nan")
            res.facial_transformation_matrixes[0] = np.full((4, 4), np.inf)
            self.poisoned += 1
        return res

    def close(self) -> None:
        self.inner.close()


def test_nan_and_inf_from_the_face_model_and_in_the_audio_samples(checkpoint, crema_clip, tmp_path) -> None:
    from realtime.features.vision import FaceFeatureExtractor

    extractors: list[FaceFeatureExtractor] = []
    landmarkers: list[_PoisonedLandmarker] = []

    def poisoned_face() -> FaceFeatureExtractor:
        ex = FaceFeatureExtractor()
        ex._landmarker = _PoisonedLandmarker(ex._landmarker)
        extractors.append(ex)
        landmarkers.append(ex._landmarker)
        return ex

    x = _decode(crema_clip)
    bad = np.zeros(len(x), bool)
    bad[SR : SR + 800] = True  # 50 ms of NaN inside the first "Don't forget a jacket"
    bad[3 * SR + 100 : 3 * SR + 110] = True  # and a few samples of ±inf in the second
    y = x.copy()
    y[SR : SR + 800] = np.nan
    y[3 * SR + 100 : 3 * SR + 110] = np.inf * np.sign(np.arange(10) - 4.5)
    wav = write_float_wav(tmp_path / "nan.wav", y)
    log_path = tmp_path / "e.jsonl"
    p = file_pipeline(checkpoint, str(crema_clip), str(wav), log=log_path)
    p.face._factory = poisoned_face  # the lowest layer of the face worker: MediaPipe's output
    p.start()
    try:
        assert p.wait(240), p.snapshot().phase
        snap = p.snapshot()
    finally:
        assert p.stop()
    assert pipeline_threads() == []
    (ex,), (lm,) = extractors, landmarkers
    assert ex.nonfinite >= 20 and ex.faces >= 60  # poisoned faces dropped as "no face", the rest kept
    assert lm.poisoned == ex.nonfinite
    assert snap.drops["audio_non_finite_samples_zeroed"] == int(bad.sum())
    windows = [e for e in read_events(log_path) if e["type"] == "window"]
    assert len(_finite_predictions(windows)) == len(windows) >= 12  # every window scored, finite
    assert max(w["masks"]["vision"] for w in windows) >= 25  # poisoned frames masked, the others used
    text = " ".join(w.text for w in snap.transcript).lower()
    assert text.count("forget") >= 2, text  # 50 ms of NaN did not spoil the utterance around it
    assert snap.phase == "finished"


# ---- a modality absent for minutes -----------------------------------------------------------------------------
def test_modalities_absent_for_minutes(checkpoint, shared_data, tmp_path) -> None:
    """Clock-stopped (minutes cost seconds): a camera that never sees a face for 3 minutes, and speech, then
    150 s of silence, then speech again. Windows go on with 'nothing to score', memory stays bounded, and
    scoring and transcription come back with the speech."""
    import soundfile as sf

    jfk = _decode(shared_data / "media" / "jfk.flac")
    audio = np.concatenate([jfk, np.zeros(150 * SR, np.float32), jfk])
    wav = tmp_path / "gap.wav"
    sf.write(str(wav), np.clip(audio, -1, 1), SR, subtype="PCM_16")
    total = len(audio) / SR  # 172 s
    video = tmp_path / "gray.mp4"
    ffmpeg("-f", "lavfi", "-i", f"color=c=gray:s=160x120:r=2:d={total:.1f}", "-c:v", "mpeg4", str(video))
    log_path = tmp_path / "e.jsonl"
    p = file_pipeline(checkpoint, str(video), str(wav), log=log_path)
    p.start()
    try:
        assert p.wait(400), p.snapshot().phase
        snap = p.snapshot()
        sizes = {m: len(b) for m, b in p.assembler.buffers.items()}
        history = list(p.state.history)
    finally:
        assert p.stop()
    assert pipeline_threads() == []
    events = read_events(log_path)
    t0 = events[0]["clock_start"]
    windows = [e for e in events if e["type"] == "window"]
    assert len(windows) >= 2 * (total - 1)
    silent = [w for w in windows if 17.0 <= w["t_end"] - t0 <= total - 11.5]
    assert len(silent) >= 250
    assert all(w["prediction"] is None and w["masks"]["audio"] == w["masks"]["text"] == 0 for w in silent)
    assert all(w["masks"]["vision"] == 0 for w in windows)  # no face, ever
    back = [w for w in windows if w["t_end"] - t0 > total - 8.0]
    assert back and all(w["prediction"] is not None for w in back)  # scoring resumed with the speech
    _finite_predictions(windows)
    assert " ".join(w.text for w in snap.transcript).lower().count("country") >= 2
    # bounded memory: the assembler holds one window of samples, the history only history_s seconds
    assert sizes["vision"] <= 12 and sizes["audio"] <= 60 and sizes["text"] <= 40, sizes
    assert history and history[-1][0] - history[0][0] <= p.cfg.history_s
    assert snap.drops["windows_skipped"] == 0 and snap.phase == "finished"


# ---- corrupt video ---------------------------------------------------------------------------------------------
def test_corrupt_and_truncated_video_files(checkpoint, crema_clip, tmp_path) -> None:
    """Garbage bytes inside the mp4 (video and audio decoders both see them): the replay runs to its end.
    A file cut short (index at the front): it ends early, cleanly. A file cut before its index: `mmcl monitor`
    refuses it with a clear message (exit 2) instead of a traceback."""
    broken = corrupt_bytes(crema_clip, tmp_path / "garbage.mp4", start_frac=0.3, n_spans=12, span=64)
    p = file_pipeline(checkpoint, str(broken), str(broken), log=tmp_path / "g.jsonl")
    p.start()
    try:
        assert p.wait(240), p.snapshot().phase
        snap = p.snapshot()
    finally:
        assert p.stop()
    assert snap.phase == "finished"
    windows = [e for e in read_events(tmp_path / "g.jsonl") if e["type"] == "window"]
    assert len(windows) >= 10 and max(w["masks"]["vision"] for w in windows) >= 25
    _finite_predictions(windows)
    cam = next(d for d in snap.devices if d.name == "camera")
    assert cam.status == "ended" and cam.delivered >= 85  # 180 frames read, 15 fps cap: about 90 delivered

    raw = crema_clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(raw[: int(len(raw) * 0.55)])  # faststart: the index is at the front, media cut off
    p = file_pipeline(checkpoint, str(cut), str(cut))
    p.start()
    try:
        assert p.wait(240), p.snapshot().phase
        short = p.snapshot()
    finally:
        assert p.stop()
    assert short.phase == "finished" and 4 <= short.windows < snap.windows
    assert pipeline_threads() == []

    no_index = tmp_path / "no_index.mp4"
    ffmpeg("-i", str(crema_clip), "-c", "copy", "-movflags", "-faststart", str(tmp_path / "tail.mp4"))
    tail = (tmp_path / "tail.mp4").read_bytes()
    no_index.write_bytes(tail[: len(tail) // 2])  # the index (moov) sits at the end: nothing is decodable
    res = CliRunner().invoke(app, ["monitor", "--camera", str(no_index), "--mic", "none", "--replay",
                                   "clock-stopped", "--checkpoint", str(checkpoint), "--headless"])  # fmt: skip
    assert isinstance(res.exception, DeviceError), repr(res.exception)
    assert "cannot be decoded" in str(res.exception) and str(no_index) in str(res.exception)
    assert pipeline_threads() == []


def test_network_camera_sending_garbage_jpeg_parts(checkpoint) -> None:
    """Every 4th part of the MJPEG stream is random bytes or a cut JPEG: the camera skips and counts them
    (no reconnect storm), the face worker and the windows go on."""
    server = GarbageMjpegServer(bad_every=4)
    app_cfg = load_app_config(overrides=[
        f"sources.camera.source={server.url}", "sources.camera.read_timeout_s=2.0", "sources.camera.max_fps=0",
        "monitor.hop_s=0.25",
    ])  # fmt: skip
    p = build_pipeline(app_cfg, mode="live", checkpoint=checkpoint, audio=False)
    try:
        p.start()
        assert wait_for(lambda: p.snapshot().drops["camera_corrupt_frames_skipped"] >= 8, 60)
        n = p.snapshot().windows
        assert wait_for(lambda: p.snapshot().windows >= n + 8, 30)
        snap = p.snapshot()
    finally:
        assert p.stop()
        server.close()
    assert pipeline_threads() == []
    cam = next(d for d in snap.devices if d.name == "camera")
    assert cam.status == "running" and cam.reconnects == 0
    corrupt = snap.drops["camera_corrupt_frames_skipped"]
    assert corrupt <= server.sent_bad and cam.delivered >= 2 * corrupt  # good frames all came through
    face = next(d for d in snap.devices if d.name == "face")
    assert face.status == "running" and face.delivered >= cam.delivered // 2


# ---- lifecycle: a camera that vanishes and returns, overflow, a real PulseAudio microphone --------------------

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
        assert "no face" in modality_detail(vision) and snap.prediction is None  # gray frames: nothing to score
        assert status_line(snap) == "no face, no speech: nothing to score"

        server.close()  # the camera disappears
        assert wait_for(lambda: _status(p, "camera") == "reconnecting", 20)
        snap = p.snapshot()
        assert modality_detail(snap.modalities[0]).startswith("camera reconnecting") and not snap.modalities[0].live
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
    assert snap.drops["audio_overflow_events"] > 0 and snap.drops["audio_dropped_s"] > 0
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
