"""The generated demo session: eSpeak NG speech + the portrait shipped in matplotlib, in step, cached."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from realtime.pipeline import demo


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    return demo.ensure_demo(tmp_path_factory.mktemp("demo"), fps=10.0)


def test_demo_files_are_in_step_and_cached(session) -> None:
    import cv2
    import soundfile as sf

    info = sf.info(str(session.audio))
    assert info.samplerate == 16000 and info.channels == 1
    assert 30.0 < session.duration_s < 90.0 and info.duration == pytest.approx(session.duration_s, abs=1e-3)
    cap = cv2.VideoCapture(str(session.video))
    frames, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    assert fps == pytest.approx(10.0) and frames / fps == pytest.approx(session.duration_s, abs=0.15)
    meta = json.loads(session.manifest.read_text())
    assert len(meta["sentences"]) == len(demo.SENTENCES) >= 8
    assert {s["sentiment"] for s in meta["sentences"]} == {-1, 0, 1}
    starts = [s["start"] for s in meta["sentences"]]
    gaps = [b["start"] - a["end"] for a, b in zip(meta["sentences"], meta["sentences"][1:], strict=False)]
    assert starts == sorted(starts) and min(gaps) >= demo.PAUSE_S - 0.01
    # speech where the manifest says, silence in the pauses
    x, sr = sf.read(str(session.audio), dtype="float32")
    s0 = meta["sentences"][1]
    speech = x[int(s0["start"] * sr) : int(s0["end"] * sr)]
    pause = x[int((s0["end"] + 0.2) * sr) : int((s0["end"] + demo.PAUSE_S - 0.2) * sr)]
    assert np.sqrt(np.mean(speech**2)) > 0.05 and np.abs(pause).max() < 1e-3
    # a second call reuses the files
    mtime = session.video.stat().st_mtime_ns
    again = demo.ensure_demo(session.directory, fps=10.0)
    assert again.video.stat().st_mtime_ns == mtime and again.duration_s == session.duration_s


def test_mediapipe_finds_the_animated_face(session) -> None:
    import cv2

    from realtime.features.vision import FaceFeatureExtractor

    cap = cv2.VideoCapture(str(session.video))
    found, yaws, k = 0, [], 0
    with FaceFeatureExtractor() as face:
        while k < 40:
            ok, frame = cap.read()
            if not ok:
                break
            if k % 4 == 0:
                s = face.process(frame, k / 10.0)
                found += s.valid
                yaws.append(float(s.values[54]))  # head roll follows the animation
            k += 1
    cap.release()
    assert found == 10
    assert max(yaws) - min(yaws) > 1.0  # the head moves (modestly)


@pytest.mark.slow
def test_shipped_model_reads_the_demo_sentences_right(session, tmp_path) -> None:
    """Clock-stopped replay of the demo with the shipped model: the windows ending within 1.5 s after each
    polar sentence have its sign (at least 6 of the 7: a 5 s window still holds the sentence before, and
    "But yesterday was a terrible day…" right after "…I love them" reads positive, MODEL_CARD.md), and on
    average the neutral sentences lie between the positive and the negative ones."""
    from helpers_monitor import file_pipeline

    from model.pretrained import default_checkpoint_path
    from realtime.pipeline.eventlog import read_events

    log = tmp_path / "demo.jsonl"
    p = file_pipeline(default_checkpoint_path(), str(session.video), str(session.audio), log=log)
    p.start()
    try:
        assert p.wait(900), f"the demo replay did not finish: {p.snapshot().phase}"
    finally:
        p.stop()
    windows = [e for e in read_events(log, ["window"]) if e.get("prediction")]
    scores = []
    for s in session.sentences:
        near = [w["prediction"]["value"] for w in windows if s["end"] <= w["t_end"] <= s["end"] + 1.5]
        assert near, f"no window right after {s['text']!r}"
        scores.append((s["sentiment"], float(np.mean(near)), s["text"]))
    wrong = [(text, round(v, 2)) for sent, v, text in scores if sent and np.sign(v) != sent]
    assert len(wrong) <= 1, f"polar sentences read with the wrong sign: {wrong}; all: {scores}"
    neutral = [v for sent, v, _ in scores if sent == 0]
    pos = [v for sent, v, _ in scores if sent > 0]
    neg = [v for sent, v, _ in scores if sent < 0]
    assert np.mean(neg) < np.mean(neutral) < np.mean(pos), scores
    assert min(pos) > 0 and min(neg) < -1.0, scores

