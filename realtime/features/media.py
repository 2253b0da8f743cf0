"""Decoding media files: streams via ffprobe, audio via ffmpeg (16 kHz mono float32), frames via OpenCV.

Every failure a user can cause (missing file, unreadable container, no audio track, no video stream) is a
``DataFormatError`` naming the file and what to do.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.errors import DataFormatError
from realtime.features.config import AUDIO_SAMPLE_RATE

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".flv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus")


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds (from ffprobe)."""

    path: Path
    has_video: bool
    has_audio: bool
    duration: float  # seconds (container duration; 0 when unknown)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise DataFormatError(f"`{name}` is not installed; install FFmpeg (e.g. `apt-get install ffmpeg`)")
    return found


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise DataFormatError(
            f"{path} does not exist; check the path (relative paths are from the labels CSV)"
        )
    if not path.is_file():
        raise DataFormatError(f"{path} is not a file")


def probe(path: str | Path) -> MediaInfo:
    """Streams and duration of ``path``; DataFormatError if it is not a readable media file."""
    p = Path(path)
    _check_exists(p)
    proc = subprocess.run(
        [
            _tool("ffprobe"),
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,disposition:format=duration",
            "-of",
            "json",
            str(p),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise DataFormatError(f"{p} is not a readable media file ({reason}); re-encode it or remove it")
    try:
        info = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        raise DataFormatError(f"{p}: ffprobe output is not JSON; is the file a media file?") from None
    streams = info.get("streams", [])
    # An embedded cover picture is a "video" stream with attached_pic=1; it is not a video.
    has_video = any(
        s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic") for s in streams
    )
    has_audio = any(s.get("codec_type") == "audio" for s in streams)
    try:
        duration = float(info.get("format", {}).get("duration", 0.0))
    except (TypeError, ValueError):
        duration = 0.0
    if not has_video and not has_audio:
        raise DataFormatError(f"{p} holds neither a video nor an audio stream; is it a media file?")
    return MediaInfo(path=p, has_video=has_video, has_audio=has_audio, duration=duration)


def read_audio(path: str | Path, sample_rate: int = AUDIO_SAMPLE_RATE) -> np.ndarray:
    """The first audio track of ``path`` as mono float32 in [-1, 1] at ``sample_rate`` (ffmpeg resamples,
    then samples are clipped to [-1, 1])."""
    p = Path(path)
    info = probe(p)
    if not info.has_audio:
        raise DataFormatError(
            f"{p} has no audio track; mmcl needs the speech for its audio and text features "
            "(add the audio, or pass --allow-missing-streams to mask those modalities)"
        )
    proc = subprocess.run(
        [
            _tool("ffmpeg"),
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(p),
            "-map",
            "0:a:0",
            "-vn",
            "-ac",
            "1",
            "-ar",
            str(sample_rate),
            "-f",
            "f32le",
            "-acodec",
            "pcm_f32le",
            "-",
        ],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        raise DataFormatError(
            f"ffmpeg could not decode the audio of {p} ({reason[-1] if reason else proc.returncode}); "
            "re-encode the file"
        )
    # Resampling can overshoot full scale slightly (jfk.flac peaks at 1.107); clip like a 16-bit source.
    # Non-finite samples (a broken float file) become 0, as in the live audio ring.
    raw = np.frombuffer(proc.stdout, dtype=np.float32)
    samples = np.clip(np.where(np.isfinite(raw), raw, np.float32(0.0)), -1.0, 1.0)
    if samples.size == 0:
        raise DataFormatError(f"{p}: the audio track decodes to no samples; re-encode the file")
    return samples


def open_video(path: str | Path):  # -> cv2.VideoCapture
    """An opened ``cv2.VideoCapture`` for ``path``; DataFormatError if OpenCV cannot read a frame from it."""
    import cv2

    p = Path(path)
    info = probe(p)
    if not info.has_video:
        raise DataFormatError(
            f"{p} has no video stream; mmcl needs the face for its vision features "
            "(use a video file, or pass --allow-missing-streams to mask the vision modality)"
        )
    cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise DataFormatError(f"OpenCV cannot open the video stream of {p}; re-encode it (e.g. H.264 mp4)")
    return cap


def iter_frames(path: str | Path) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(t, frame_bgr)`` for every frame of ``path``; ``t`` is the presentation time in seconds.

    Times come from the decoder (``CAP_PROP_POS_MSEC``); where they do not increase strictly, the frame
    index divided by the nominal frame rate is used instead. Decoding happens on the caller's thread.
    """
    import cv2

    cap = open_video(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        fps = fps if 1.0 <= fps <= 1000.0 else 30.0
        last_t = -np.inf
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if not np.isfinite(t) or t <= last_t:
                t = index / fps
                if t <= last_t:
                    t = last_t + 1.0 / fps
            last_t = t
            index += 1
            yield t, frame
        if index == 0:
            raise DataFormatError(
                f"{path}: OpenCV decoded no frame from the video stream; re-encode the file"
            )
    finally:
        cap.release()


def find_media(paths: list[str | Path]) -> list[Path]:
    """Expand folders (recursively) into the media files they hold, keep files as given; sorted, unique."""
    out: set[Path] = set()
    for item in paths:
        p = Path(item)
        if p.is_dir():
            for f in p.rglob("*"):
                if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS + AUDIO_EXTENSIONS:
                    out.add(f.resolve())
        elif p.exists():
            out.add(p.resolve())
        else:
            raise DataFormatError(f"{p} does not exist; pass video files or folders that hold them")
    return sorted(out)
