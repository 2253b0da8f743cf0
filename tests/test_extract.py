"""Offline extraction = the live path on the same recording, bad inputs, and ``mmcl extract`` end to end."""

from __future__ import annotations

import csv
import math
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from model.errors import DataFormatError
from model.featureset import LIVE_FEATURE_SET
from realtime.features.config import FeatureConfig
from realtime.features.dataset import assign_splits, read_labels, sign_class
from realtime.features.extract import OfflineExtractor, segment_windows
from realtime.features.grid import SampleBuffer
from realtime.features.media import iter_frames, read_audio
from realtime.features.text import WordTextTrack, phrase_rule_for
from realtime.features.transcribe import load_whisper, transcribe_samples
from realtime.features.vision import FaceFeatureExtractor
from realtime.features.voice import voice_extractor_for
from realtime.types import AudioChunk, Frame

TEXT_TOL = 1e-5  # MiniLM batch padding; vision and audio must match exactly


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def extractor() -> OfflineExtractor:
    ex = OfflineExtractor(FeatureConfig())
    yield ex
    ex.close()


@pytest.mark.parametrize("version", ["live-v1", "live-v2", "live-v3"])
def test_offline_and_streaming_paths_give_the_same_window(version, extractor, shared_data) -> None:
    """Every column of every feature set: `mmcl extract`'s path equals the live workers' path."""
    path = shared_data / "media" / "crema_d" / "1001_DFA_HAP_XX.flv"
    cfg = FeatureConfig(feature_set=version)
    dims = cfg.live_set.dims
    offline_ex = extractor if extractor.config.feature_set == version else OfflineExtractor(cfg)
    # Offline: the file path used by `mmcl extract`.
    ff = offline_ex.file_features(path)
    (offline,) = segment_windows(ff, None, None, cfg)
    n = offline.n_real
    assert n == math.ceil(ff.duration * 10 - 1e-6) and offline.vision.shape == (50, dims["vision"])
    assert offline.audio.shape == (50, dims["audio"]) and offline.text.shape == (50, dims["text"])

    # Online: what the live workers do with a camera/microphone that replays this recording.
    face = FaceFeatureExtractor(cfg)  # its own tracker, as in a face worker
    frames = [Frame(image=img, t=t, index=i) for i, (t, img) in enumerate(iter_frames(path))]
    vision = [face.process(f.image, f.t) for f in frames]
    face.close()
    samples = read_audio(path)
    voice, steps = voice_extractor_for(cfg), []
    for i in range(0, len(samples), 1024):  # 64 ms chunks, like PyAudio's callback
        steps += voice.push(AudioChunk(samples[i : i + 1024], t=i / 16000))
    steps += voice.flush()
    words = transcribe_samples(samples, load_whisper(cfg.whisper_cpu_threads), config=cfg)
    track, text = WordTextTrack(offline_ex.embedder, phrase_rule_for(version)), []  # as the text worker
    for w in words:  # committed one word at a time
        text += track.add([w])

    # The window assembler: buffers of recent samples, resampled onto the same grid.
    vbuf, abuf, tbuf = SampleBuffer(dims["vision"]), SampleBuffer(dims["audio"]), SampleBuffer(dims["text"])
    for s in vision:
        vbuf.add(s.t, s.values, s.valid)
    for s in steps:
        abuf.add(s.t, s.values, s.valid)
    for s in text:
        tbuf.add(s.start, s.values, True, end=s.end)
    v, vm = vbuf.window(0.0, n, 10.0)
    a, am = abuf.window(0.0, n, 10.0)
    t, tm = tbuf.window(0.0, n, 10.0)

    np.testing.assert_array_equal(offline.vision[:n], v)
    np.testing.assert_array_equal(offline.vision_mask[:n], vm)
    np.testing.assert_array_equal(offline.audio[:n], a)
    np.testing.assert_array_equal(offline.audio_mask[:n], am)
    np.testing.assert_array_equal(offline.text_mask[:n], tm)
    np.testing.assert_allclose(offline.text[:n], t, atol=TEXT_TOL)
    assert not offline.vision_mask[n:].any() and not offline.vision[n:].any()  # padding after real steps
    # and the recording is really there
    assert vm.mean() > 0.9 and am.any() and tm.any()
    assert "forget" in offline.raw_text.lower()
    assert np.isfinite(offline.vision).all() and np.isfinite(offline.audio).all() and np.isfinite(offline.text).all()
    if offline_ex is not extractor:
        offline_ex.close()


def test_a_video_without_a_face_gives_masked_vision_steps(extractor, tmp_path: Path) -> None:
    video = tmp_path / "no_face.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2", "-f", "lavfi",
           "-i", "sine=frequency=220:duration=2", "-c:v", "mpeg4", "-c:a", "aac", "-shortest",
           str(video))  # fmt: skip
    ff = extractor.file_features(video)
    assert ff.vision_t.size >= 45 and not ff.vision_valid.any()
    (win,) = segment_windows(ff, None, None, extractor.config)
    assert not win.vision_mask.any() and not win.vision.any()
    assert win.audio_mask[: win.n_real].mean() > 0.8  # the tone is loud
    f0 = extractor.config.live_set.audio.index("spk_log_f0_hz")  # raw (before the speaker normaliser)
    assert np.exp(ff.audio_raw[5, f0]) == pytest.approx(220, rel=0.02)  # log_f0_hz of the 220 Hz tone


def test_silent_audio_gives_masked_audio_and_text(extractor, shared_data, tmp_path: Path) -> None:
    video = tmp_path / "silent.mp4"
    ffmpeg("-i", str(shared_data / "media" / "crema_d" / "1001_DFA_NEU_XX.flv"), "-f", "lavfi",
           "-i", "anullsrc=r=16000:cl=mono", "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "mpeg4",
           "-c:a", "aac", str(video))  # fmt: skip
    ff = extractor.file_features(video)
    assert ff.words == []
    (win,) = segment_windows(ff, None, None, extractor.config)
    assert not win.audio_mask.any() and not win.text_mask.any()
    assert win.vision_mask[: win.n_real].mean() > 0.8


def test_missing_streams_are_errors_unless_allowed(extractor, shared_data, tmp_path: Path) -> None:
    video = tmp_path / "mute.mp4"
    ffmpeg(
        "-i",
        str(shared_data / "media" / "crema_d" / "1001_DFA_ANG_XX.flv"),
        "-an",
        "-c:v",
        "mpeg4",
        str(video),
    )
    with pytest.raises(DataFormatError, match="no audio track"):
        extractor.file_features(video)
    ff = extractor.file_features(video, allow_missing=True)
    (win,) = segment_windows(ff, None, None, extractor.config)
    assert win.vision_mask.any() and not win.audio_mask.any() and not win.text_mask.any()
    with pytest.raises(DataFormatError, match="no video stream"):
        extractor.file_features(shared_data / "media" / "jfk.flac")


def test_long_segments_take_the_last_window_and_hop_adds_earlier_ones(extractor, shared_data) -> None:
    cfg = extractor.config
    ff = extractor.file_features(shared_data / "media" / "crema_d" / "1001_DFA_DIS_XX.flv")
    (last,) = segment_windows(ff, 0.0, 2.3, cfg, window_s=1.0)
    assert last.n_real == 10 and last.t_start == pytest.approx(1.3)
    wins = segment_windows(ff, 0.0, 2.3, cfg, window_s=1.0, hop_s=0.5)
    assert [round(w.t_start, 3) for w in wins] == [1.3, 0.8, 0.3]
    with pytest.raises(DataFormatError, match="shorter than one"):
        segment_windows(ff, 1.0, 1.05, cfg)


def test_labels_csv_parsing_and_splits(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("path,start,end,label,split\na.mp4,,,positive,\n/abs/b.mp4,1.5,3,-1.2,test\n")
    rows = read_labels(csv_path)
    assert rows[0].path == (tmp_path / "a.mp4").resolve() and rows[0].start is None and rows[0].label == 1.0
    assert rows[1].path == Path("/abs/b.mp4") and rows[1].end == 3.0 and rows[1].split == "test"
    csv_path.write_text("path,start,end,label\na.mp4,2,1,0\n")
    with pytest.raises(DataFormatError, match="after start"):
        read_labels(csv_path)
    csv_path.write_text("path,start,end,label\na.mp4,,,great\n")
    with pytest.raises(DataFormatError, match=r"labels.csv:2"):
        read_labels(csv_path)
    csv_path.write_text("file,label\na.mp4,1\n")
    with pytest.raises(DataFormatError, match="header lacks"):
        read_labels(csv_path)
    assert [sign_class(y) for y in (-0.1, 0.0, 2.0)] == [0, 1, 2]
    splits = assign_splits([f"f{i}" for i in range(10)], 0.2, 0.2, seed=0)
    assert sorted(splits.values()).count("test") == 2 and sorted(splits.values()).count("valid") == 2
    small = assign_splits(["a", "b", "c"], 0.15, 0.15, seed=0)
    assert sorted(small.values()) == ["test", "train", "valid"]
    assert assign_splits(["a", "b", "c"], 0.15, 0.15, seed=0) == small  # seeded


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, shared_data):
    """Run `mmcl extract` on real clips: 3 CREMA-D files (relative paths), 2 MOUD segments (absolute), one
    unreadable file, one input without labels."""
    from typer.testing import CliRunner

    from mmcl.cli import app

    tmp = tmp_path_factory.mktemp("extract")
    media = shared_data / "media"
    broken = tmp / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    labels = tmp / "labels.csv"
    rel = lambda p: os.path.relpath(p, tmp)  # noqa: E731
    rows = [
        (rel(media / "crema_d" / "1001_DFA_HAP_XX.flv"), "", "", "2"),
        (rel(media / "crema_d" / "1001_DFA_ANG_XX.flv"), "", "", "-2"),
        (rel(media / "crema_d" / "1001_DFA_NEU_XX.flv"), "", "", "0"),
        (str(media / "moud_101_movies.mp4"), "0.000", "6.643", "1"),
        (str(media / "moud_101_movies.mp4"), "6.643", "9.9", "positive"),
        ("broken.mp4", "", "", "1"),
    ]
    with labels.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "start", "end", "label"])
        w.writerows(rows)
    out = tmp / "data.pkl"
    inputs = [str(media / "crema_d"), str(media / "moud_101_movies.mp4"), str(broken)]
    args = ["extract", *inputs, "--labels", str(labels), "--out", str(out), "--valid-frac", "0.25",
            "--test-frac", "0.25", "--seed", "1"]  # fmt: skip
    first = CliRunner().invoke(app, args)
    first_bytes = out.read_bytes() if out.exists() else b""
    second = CliRunner().invoke(app, args)
    return first, second, out, first_bytes


@pytest.mark.slow
def test_mmcl_extract_writes_an_mmsa_pickle_with_the_declared_shapes(extracted) -> None:
    first, _, out, _ = extracted
    assert first.exit_code == 0, first.output
    data = pickle.loads(out.read_bytes())
    assert data["feature_set"] == LIVE_FEATURE_SET.to_dict()
    total = 0
    for name in ("train", "valid", "test"):
        s = data[name]
        n = len(s["id"])
        total += n
        for m, d in LIVE_FEATURE_SET.dims.items():
            assert s[m].shape == (n, 50, d) and s[m].dtype == np.float32 and np.isfinite(s[m]).all()
            assert s[f"{m}_mask"].shape == (n, 50) and s[f"{m}_mask"].dtype == np.uint8
            assert s[f"{m}_lengths"].shape == (n,)
            for i in range(n):  # real steps first, then zeros
                length = s[f"{m}_lengths"][i]
                assert not s[f"{m}_mask"][i, length:].any() and not s[m][i, length:].any()
        assert s["regression_labels"].dtype == np.float32 and s["regression_labels"].shape == (n,)
        expect = [sign_class(float(y)) for y in s["regression_labels"]]
        assert s["classification_labels"].tolist() == expect
        assert len(s["raw_text"]) == n
    assert total == 5  # 3 CREMA-D clips + 2 MOUD segments; the broken file is skipped
    everything = {i: (name, k) for name in ("train", "valid", "test") for k, i in enumerate(data[name]["id"])}
    moud = [i for i in everything if i.startswith("moud_101_movies")]
    assert len(moud) == 2 and len({everything[i][0] for i in moud}) == 1  # one file, one split
    assert all(len(data[name]["id"]) >= 1 for name in ("train", "valid", "test"))
    # CREMA-D clips are ~2 s: 19–24 real steps with a face on nearly all of them
    for name in ("train", "valid", "test"):
        s = data[name]
        for i, sid in enumerate(s["id"]):
            if sid.startswith("1001_DFA"):
                assert 18 <= s["vision_lengths"][i] <= 24
                assert s["vision_mask"][i].sum() >= 0.9 * s["vision_lengths"][i]
                assert "forget" in s["raw_text"][i].lower()
            else:  # MOUD's 6.6 s segment → its last 5 s; the 3.26 s segment → 33 real steps
                assert s["vision_lengths"][i] in (50, 33)
                assert s["vision_mask"][i].sum() >= 0.9 * s["vision_lengths"][i]
    assert "broken.mp4" in " ".join(data["extract"]["failed"])
    assert "failed" in first.output and "1001_DFA_DIS_XX" not in str(data["extract"]["files"])


@pytest.mark.slow
def test_mmcl_extract_resumes_from_finished_files(extracted) -> None:
    first, second, out, first_bytes = extracted
    assert second.exit_code == 0, second.output

    def count(result, what: str) -> int:
        line = next(ln for ln in result.output.splitlines() if what in ln)
        return int(line.replace("│", " ").split()[-1])

    assert count(first, "files extracted") == 4 and count(first, "files failed") == 1
    assert count(second, "files from cache") == 4 and count(second, "files extracted") == 0
    parts = list(out.with_name(out.name + ".parts").glob("*.pkl"))
    assert len(parts) == 4  # one per finished file; the broken one has none
    a, b = pickle.loads(first_bytes), pickle.loads(out.read_bytes())
    for name in ("train", "valid", "test"):
        assert a[name]["id"] == b[name]["id"]
        for key in ("vision", "audio", "text", "vision_mask", "audio_mask", "text_mask"):
            np.testing.assert_array_equal(a[name][key], b[name][key])


@pytest.mark.slow
def test_the_model_loader_accepts_the_pickle(extracted) -> None:
    loading = pytest.importorskip("model.data.loading", reason="the model's data loader has not landed")
    from model.config import DataConfig

    _, _, out, _ = extracted
    data = loading.load_dataset(DataConfig(path=str(out)))
    assert data.dims == LIVE_FEATURE_SET.dims == {"vision": 63, "audio": 418, "text": 387} and data.seq_len == 50
    assert sum(len(s) for s in data.splits.values()) == 5


def test_extract_features_flag_writes_the_older_feature_set(shared_data, tmp_path: Path) -> None:
    """`mmcl extract --features live-v1` (for checkpoints trained on it) writes live-v1 columns."""
    from typer.testing import CliRunner

    from mmcl.cli import app
    from model.featureset import LIVE_V1

    clip = shared_data / "media" / "crema_d" / "1001_DFA_NEU_XX.flv"
    labels = tmp_path / "labels.csv"
    labels.write_text(f"path,start,end,label,split\n{clip},,,0,train\n")
    out = tmp_path / "v1.pkl"
    res = CliRunner().invoke(app, ["extract", str(clip), "--labels", str(labels), "--out", str(out),
                                   "--features", "live-v1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    data = pickle.loads(out.read_bytes())
    assert data["feature_set"] == LIVE_V1.to_dict()
    assert data["train"]["audio"].shape[2] == 34 and data["train"]["vision"].shape[2] == 56
    bad = CliRunner().invoke(app, ["extract", str(clip), "--labels", str(labels), "--out", str(out),
                                   "--features", "live-v9"])  # fmt: skip
    assert bad.exit_code != 0 and "live-v9" in str(bad.output) + str(bad.exception)
