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
