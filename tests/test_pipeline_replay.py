"""The whole pipeline on real clips, replayed clock-stopped (deterministic): real camera/audio-file sources,
MediaPipe, voice features, faster-whisper streaming ASR, MiniLM, a real (small) MMCL checkpoint."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers_monitor import crema_concat, ffmpeg, file_pipeline, make_checkpoint, pipeline_threads

from realtime.dashboard.panels import modality_detail, status_line
from realtime.pipeline.eventlog import read_events

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "monitor.pt")


@pytest.fixture(scope="module")
def crema_clip(shared_data, tmp_path_factory):
    """Three CREMA-D clips ("Don't forget a jacket", happy/sad/neutral) back to back: 6 s, face + speech."""
    out = tmp_path_factory.mktemp("clip") / "crema3.mp4"
    return crema_concat(shared_data / "media" / "crema_d", out, "480:360")


def test_clock_stopped_replay_of_a_real_clip_end_to_end(checkpoint, crema_clip, tmp_path) -> None:
    log_path = tmp_path / "events.jsonl"
    p = file_pipeline(checkpoint, str(crema_clip), str(crema_clip), log=log_path)
    p.start()
    assert p.wait(240), f"replay did not finish: {p.snapshot().phase}"
    snap = p.snapshot()
    assert snap.phase == "finished" and snap.finished
    assert p.stop()
    assert pipeline_threads() == [], "threads left behind"

    events = read_events(log_path)
    assert events[0]["type"] == "session" and events[-1]["type"] == "summary"
    windows = [e for e in events if e["type"] == "window"]
    assert len(windows) == snap.windows == events[-1]["windows"]
    # windows at the right hop, on the session clock, each covering the last 5 s on 50 steps
    t_end = np.array([w["t_end"] for w in windows])
    assert np.allclose(np.diff(t_end), 0.5, atol=1e-9)
    assert t_end[0] == pytest.approx(events[0]["clock_start"] + 0.5)
    duration = 6.1  # 2.235 + 2.002 + 2.035 - codec padding
    assert duration - 0.6 <= t_end[-1] - events[0]["clock_start"] <= duration + 1.6
    assert 12 <= len(windows) <= 16
    for w in windows:
        assert w["t_end"] - w["t_start"] == pytest.approx(5.0)
        assert w["masks"]["steps"] == 50 and set(w["masks"]) == {"steps", "vision", "audio", "text"}
        assert {"window", "inference", "e2e_published"} <= set(w["latency_ms"]) or w is windows[-1]
        assert w["prediction"] is not None and math.isfinite(w["prediction"]["score"])
    # the actor's face is found in most frames; speech gives voiced steps and words
    assert max(w["masks"]["vision"] for w in windows) >= 45
    assert max(w["masks"]["audio"] for w in windows) >= 10
    assert max(w["masks"]["text"] for w in windows) >= 5
    mid = windows[len(windows) // 2]["prediction"]["contributions"]
    assert mid["vision"] is not None and mid["audio"] is not None

    transcript = " ".join(w.text for w in snap.transcript).lower()
    assert transcript.count("forget") >= 2, transcript  # "Don't forget a jacket" × 3
    assert "forget" in " ".join(w["words"] for w in windows).lower()
    # clock-stopped: latencies are algorithmic (no compute time on the session clock)
    assert snap.latency["face"].p95_ms == pytest.approx(0.0, abs=1e-6)
    assert snap.latency["asr_commit"].count >= 6
    assert snap.drops["windows_skipped"] == 0 and snap.drops["camera_frames_replaced_slot"] == 0


def test_audio_only_replay_with_pauses(checkpoint, shared_data, tmp_path) -> None:
    """jfk.flac without a camera: vision is absent (no contribution), words arrive, no crash."""
    p = file_pipeline(checkpoint, None, str(shared_data / "media" / "jfk.flac"), log=tmp_path / "e.jsonl")
    p.start()
    try:
        assert p.wait(240)
        snap = p.snapshot()
    finally:
        assert p.stop()
    assert pipeline_threads() == []
    text = " ".join(w.text for w in snap.transcript).lower()
    assert "country" in text and "ask" in text, text
    # one transcript: the summary (log's last line, exit line) counts the words the dashboard shows and the
    # windows logged; jfk.flac's ~22 words fit in the transcript (monitor.transcript_words = 60)
    events = read_events(tmp_path / "e.jsonl")
    logged = {t for e in events if e["type"] == "window" for t in e.get("words", "").split()}
    assert {w.text.strip() for w in snap.transcript} <= logged  # every word shown was in a window's log line
    assert events[-1]["type"] == "summary" and events[-1]["words"] == p.summary()["words"] == snap.words
    assert snap.words == len(snap.transcript) >= 15, text
    vision = next(m for m in snap.modalities if m.name == "vision")
    assert modality_detail(vision) == "no camera" and not vision.live and vision.contribution is None
    assert snap.prediction is not None and snap.prediction.contributions["vision"] is None
    assert snap.prediction.contributions["audio"] is not None
    assert 22 <= snap.windows <= 26  # 11 s at a 0.5 s hop (+ the end-of-replay window)


def test_no_face_and_silence_give_empty_windows_and_a_status(checkpoint, tmp_path) -> None:
    clip = tmp_path / "blank.mp4"
    blank = ["-f", "lavfi", "-i", "color=c=gray:s=160x120:r=15:d=4", "-f", "lavfi", "-i", "anullsrc=r=16000"]
    ffmpeg(*blank, "-t", "4", "-c:v", "mpeg4", "-c:a", "aac", "-ac", "1", "-shortest", str(clip))
    log_path = tmp_path / "e.jsonl"
    p = file_pipeline(checkpoint, str(clip), str(clip), mode="realtime", log=log_path)
    p.start()
    try:
        assert wait_windows(p, 3)
        running = p.snapshot()
        assert p.wait(120)
    finally:
        assert p.stop()
    assert status_line(running) == "no face, no speech: nothing to score"
    assert running.prediction is None and not any(m.live for m in running.modalities)
    assert [modality_detail(m).split(" · ")[0] for m in running.modalities[:2]] == ["no face", "silence"]
    windows = [e for e in read_events(log_path) if e["type"] == "window"]
    assert windows and all(w["prediction"] is None for w in windows)
    assert all(w["masks"]["vision"] == w["masks"]["audio"] == w["masks"]["text"] == 0 for w in windows)
    assert not running.transcript


def wait_windows(p, n: int, timeout: float = 120.0) -> bool:
    from helpers_monitor import wait_for

    return wait_for(lambda: p.snapshot().windows >= n, timeout)
