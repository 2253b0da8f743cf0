"""Decoding media files, and clear errors for files that cannot give what the features need."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from model.errors import DataFormatError
from realtime.features.media import find_media, iter_frames, probe, read_audio


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def silent_video(tmp_path_factory, shared_data) -> Path:
    """A real face video (CREMA-D) with its audio track removed."""
    out = tmp_path_factory.mktemp("media") / "no_audio.mp4"
    ffmpeg(
        "-i", str(shared_data / "media" / "crema_d" / "1001_DFA_HAP_XX.flv"), "-an", "-c:v", "mpeg4", str(out)
    )
    return out


def test_probe_and_decode_real_files(shared_data) -> None:
    media = shared_data / "media"
    info = probe(media / "crema_d" / "1001_DFA_HAP_XX.flv")
    assert info.has_video and info.has_audio and 1.8 < info.duration < 1.95
    audio = read_audio(media / "jfk.flac")  # 44.1 kHz stereo 24-bit → 16 kHz mono float32
    assert audio.dtype == np.float32 and audio.shape == (176000,) and 0.05 < np.abs(audio).max() <= 1.0
    frames = list(iter_frames(media / "crema_d" / "1001_DFA_HAP_XX.flv"))
    assert len(frames) == 56 and frames[0][1].shape == (360, 480, 3)
    times = [t for t, _ in frames]
    assert times[0] == 0.0 and np.all(np.diff(times) > 0) and abs(times[-1] - 55 / 29.97) < 0.05


def test_missing_and_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="does not exist"):
        probe(tmp_path / "nope.mp4")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    with pytest.raises(DataFormatError, match="not a readable media file"):
        probe(broken)
    with pytest.raises(DataFormatError, match="not a readable media file"):
        list(iter_frames(broken))
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    with pytest.raises(DataFormatError):
        read_audio(text)


def test_video_without_audio_track(silent_video: Path) -> None:
    assert probe(silent_video).has_video and not probe(silent_video).has_audio
    with pytest.raises(DataFormatError, match="no audio track"):
        read_audio(silent_video)
    assert 54 <= len(list(iter_frames(silent_video))) <= 58  # re-encoding may add a frame


def test_audio_file_has_no_video_stream(shared_data) -> None:
    with pytest.raises(DataFormatError, match="no video stream"):
        list(iter_frames(shared_data / "media" / "jfk.flac"))


def test_find_media_expands_folders(shared_data, tmp_path: Path) -> None:
    found = find_media([shared_data / "media" / "crema_d", shared_data / "media" / "jfk.flac"])
    assert len(found) == 7 and all(p.is_absolute() for p in found)
    assert not any(p.suffix in (".csv", ".txt") for p in found)
    with pytest.raises(DataFormatError, match="does not exist"):
        find_media([tmp_path / "missing"])


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_ffmpeg_is_used_for_the_audio_of_a_video(shared_data) -> None:
    audio = read_audio(shared_data / "media" / "moud_101_movies.mp4")
    assert abs(len(audio) / 16000 - 33.34) < 0.05
