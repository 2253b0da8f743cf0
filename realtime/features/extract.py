"""Offline feature extraction: one media file → timestamped samples of each modality → windows on the grid.

It uses the very same extractor classes as the live pipeline (``FaceFeatureExtractor``,
``AudioFeatureExtractor`` / ``VoiceFeatureExtractor`` (live-v2),
``WordTextTrack``) and the same resampler (``grid.to_grid``); only the sources
differ (a decoded file instead of a camera/microphone, a whole-file transcript instead of the streaming ASR).

Windows (what one dataset sample holds), for a labelled segment ``[start, end)`` and a window of ``W``
seconds (``L = W·hz`` steps):

* a segment no longer than ``W``: the grid starts at ``start``; its ``n = ceil((end−start)·hz)`` real steps
  come first, then ``L − n`` zero steps with mask 0 (the MMSA convention: lengths = ``n``);
* a longer segment: the **last** ``W`` seconds (what the live monitor sees when the utterance ends);
  with ``hop`` > 0 also the windows ending ``hop``, ``2·hop``, … seconds earlier that still lie inside it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.errors import DataFormatError
from realtime.features.config import FeatureConfig
from realtime.features.grid import to_grid
from realtime.features.media import iter_frames, probe, read_audio
from realtime.features.text import TEXT_DIM, WordTextTrack, phrase_rule_for, text_arrays, text_embedder_for
from realtime.features.transcribe import load_whisper, transcribe_samples
from realtime.features.vision import FaceFeatureExtractor
from realtime.native_log import native_stderr_to_log
from realtime.types import AudioChunk, Word

log = logging.getLogger(__name__)


@dataclass
class FileFeatures:
    """Every modality of one file as timestamped samples (seconds from the start of the file)."""

    path: str
    duration: float
    vision_t: np.ndarray  # (Nv,)
    vision_x: np.ndarray  # (Nv, Dv)
    vision_valid: np.ndarray  # (Nv,) bool
    audio_t: np.ndarray  # (Na,) step centres
    audio_x: np.ndarray  # (Na, Da)
    audio_valid: np.ndarray  # (Na,) bool
    words: list[Word] = field(default_factory=list)
    text_start: np.ndarray = field(default_factory=lambda: np.zeros(0))
    text_end: np.ndarray = field(default_factory=lambda: np.zeros(0))
    text_x: np.ndarray = field(default_factory=lambda: np.zeros((0, TEXT_DIM), dtype=np.float32))
    has_video: bool = True
    has_audio: bool = True
    # live-v2: the voice steps before speaker normalisation (the file was one session; the default-model
    # recipe re-normalises them in simulated sessions of several recordings of the same speaker)
    audio_raw: np.ndarray | None = None

    @property
    def face_rate(self) -> float:
        """Share of frames with a face."""
        return float(self.vision_valid.mean()) if self.vision_valid.size else 0.0


@dataclass
class WindowArrays:
    """One window on the grid: per-modality (L, D) float32 arrays, (L,) bool masks, real-step count."""

    t_start: float
    vision: np.ndarray
    audio: np.ndarray
    text: np.ndarray
    vision_mask: np.ndarray
    audio_mask: np.ndarray
    text_mask: np.ndarray
    n_real: int
    raw_text: str


def window_of(
    ff: FileFeatures, t_start: float, n_real: int, n_steps: int, hz: float, vision_max_gap: float = 0.0
) -> WindowArrays:
    """Resample ``ff`` onto ``n_real`` steps from ``t_start``, padded with masked zeros to ``n_steps``."""

    def put(times, values, valid, ends=None, max_gap=0.0):
        grid, mask = to_grid(times, values, valid, t_start, n_real, hz, ends=ends, max_gap=max_gap)
        pad = n_steps - n_real
        return np.pad(grid, ((0, pad), (0, 0))), np.pad(mask, (0, pad))

    v, vm = put(ff.vision_t, ff.vision_x, ff.vision_valid, max_gap=vision_max_gap)
    a, am = put(ff.audio_t, ff.audio_x, ff.audio_valid)
    t, tm = put(ff.text_start, ff.text_x, np.ones(len(ff.text_start), bool), ends=ff.text_end)
    t_end = t_start + n_real / hz
    text = " ".join(w.text for w in ff.words if t_start <= (w.start + w.end) / 2 < t_end)
    return WindowArrays(t_start, v, a, t, vm, am, tm, n_real, text)


def segment_windows(
    ff: FileFeatures,
    start: float | None,
    end: float | None,
    config: FeatureConfig,
    window_s: float | None = None,
    hop_s: float = 0.0,
) -> list[WindowArrays]:
    """The windows of the segment ``[start, end)`` of ``ff`` (None = start/end of the file)."""
    hz = config.grid_hz
    w = window_s if window_s is not None else config.window_s
    n_steps = round(w * hz)
    s = 0.0 if start is None else float(start)
    e = ff.duration if end is None else min(float(end), ff.duration) if ff.duration > 0 else float(end)
    if e - s < 1.0 / hz:
        raise DataFormatError(
            f"{ff.path}: segment {s:.3f}–{e:.3f} s is shorter than one {1 / hz:.2f} s step "
            f"(the file lasts {ff.duration:.3f} s); fix start/end in the labels CSV"
        )
    if e - s <= w + 1e-9:
        n_real = min(n_steps, math.ceil((e - s) * hz - 1e-6))
        return [window_of(ff, s, n_real, n_steps, hz, config.vision_max_gap_s)]
    out = []
    t_end = e
    while t_end - w >= s - 1e-9:
        out.append(window_of(ff, t_end - w, n_steps, n_steps, hz, config.vision_max_gap_s))
        if hop_s <= 0:
            break
        t_end -= hop_s
    return out


def steps_arrays(
    steps: list[Any], dim: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(step centres, values, valid, raw values or None) of voice steps."""
    raw = [s.raw for s in steps]
    return (
        np.array([s.t for s in steps], dtype=np.float64),
        np.stack([s.values for s in steps]) if steps else np.zeros((0, dim), np.float32),
        np.array([s.valid for s in steps], dtype=bool),
        np.stack(raw) if steps and raw[0] is not None else None,
    )


class OfflineExtractor:
    """Extracts ``FileFeatures`` from media files; models are loaded once, on first use."""

    def __init__(self, config: FeatureConfig | None = None, voice_prior: np.ndarray | None = None) -> None:
        """``voice_prior``: the speaker normaliser's prior mean (live-v2; default: the shipped one)."""
        self.config = config or FeatureConfig()
        self.dims = self.config.live_set.dims
        self.voice_prior = voice_prior
        self._face: FaceFeatureExtractor | None = None
        self._embedder: Any = None
        self._voice: Any = None

    @property
    def face(self) -> FaceFeatureExtractor:
        if self._face is None:
            with native_stderr_to_log():  # MediaPipe/TFLite C++ log lines: into logging (-v shows them)
                self._face = FaceFeatureExtractor(self.config)
        return self._face

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            with native_stderr_to_log():
                self._embedder = text_embedder_for(
                    self.config.feature_set, self.config.text_cache_size, self.config.text_batch_size,
                    threads=self.config.text_threads,
                )
        return self._embedder

    @property
    def voice(self) -> Any:
        """The voice extractor of the configured feature set (reused across files, reset per file)."""
        if self._voice is None:
            from realtime.features.voice import voice_extractor_for

            with native_stderr_to_log():
                self._voice = voice_extractor_for(self.config, prior=self.voice_prior)
        return self._voice

    def text_track(self) -> WordTextTrack:
        """A fresh word track with the feature set's embedder and phrase rule (one per recording)."""
        return WordTextTrack(self.embedder, phrase_rule_for(self.config.feature_set))

    def close(self) -> None:
        if self._face is not None:
            self._face.close()
            self._face = None

    def vision_samples(
        self, path: str | Path, until: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times, values, valid) of every frame (up to ``until`` seconds), with a fresh face tracker."""
        face = self.face
        face.reset()
        ts, xs, ok = [], [], []
        for t, frame in iter_frames(path):
            if until is not None and t > until:
                break
            s = face.process(frame, t)
            ts.append(s.t)
            xs.append(s.values)
            ok.append(s.valid)
        return (
            np.asarray(ts, dtype=np.float64),
            np.stack(xs) if xs else np.zeros((0, self.dims["vision"]), np.float32),
            np.asarray(ok, dtype=bool),
        )

    def audio_steps(self, samples: np.ndarray) -> list[Any]:
        """The voice steps of a whole recording as one session (one push, then flush)."""
        ex = self.voice
        ex.reset()
        steps = ex.push(AudioChunk(samples=samples, t=0.0)) + ex.flush()
        ex.reset()
        return steps

    def audio_samples(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(step centres, values, valid) of a whole recording (one push, then flush)."""
        return steps_arrays(self.audio_steps(samples), self.dims["audio"])[:3]

    def text_samples(self, words: list[Word]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(starts, ends, values) of the words' phrase embeddings."""
        starts, ends, values, _ = text_arrays(self.text_track().add(words), self.dims["text"])
        return starts, ends, values

    def file_features(
        self,
        path: str | Path,
        allow_missing: bool = False,
        until: float | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> FileFeatures:
        """All modalities of ``path`` (up to ``until`` seconds when given: frames after it are not decoded,
        audio after ``until + 1`` s is not analysed or transcribed). A missing video/audio stream is a
        DataFormatError unless ``allow_missing`` (then that modality, and text with the audio, is masked)."""
        note = progress or (lambda _stage: None)
        info = probe(path)
        for has, what in ((info.has_video, "video stream"), (info.has_audio, "audio track")):
            if not has and not allow_missing:
                raise DataFormatError(
                    f"{path} has no {what}; every sample needs face, voice and words "
                    "(pass --allow-missing-streams to keep it with that modality masked)"
                )
        empty_v = (np.zeros(0), np.zeros((0, self.dims["vision"]), np.float32), np.zeros(0, bool))
        empty_a = (np.zeros(0), np.zeros((0, self.dims["audio"]), np.float32), np.zeros(0, bool))
        note("face")
        vt, vx, vv = self.vision_samples(path, until) if info.has_video else empty_v
        words: list[Word] = []
        at, ax, av = empty_a
        araw = None
        ts, te, tx = np.zeros(0), np.zeros(0), np.zeros((0, self.dims["text"]), np.float32)
        duration = info.duration
        if info.has_audio:
            samples = read_audio(path)
            if until is not None:  # labelled part only (+1 s so the last steps see real look-ahead)
                samples = samples[: round((until + 1.0) * 16000)]
            duration = max(duration, len(samples) / 16000.0)
            note("voice")
            at, ax, av, araw = steps_arrays(self.audio_steps(samples), self.dims["audio"])
            note("speech")
            words = transcribe_samples(
                samples, load_whisper(self.config.whisper_cpu_threads), config=self.config
            )
            note("text")
            ts, te, tx = self.text_samples(words)
        if info.has_video and vt.size:
            duration = max(duration, float(vt[-1]))
        return FileFeatures(
            path=str(path), duration=duration, vision_t=vt, vision_x=vx, vision_valid=vv,
            audio_t=at, audio_x=ax, audio_valid=av, words=words, text_start=ts, text_end=te, text_x=tx,
            has_video=info.has_video, has_audio=info.has_audio, audio_raw=araw,
        )  # fmt: skip
