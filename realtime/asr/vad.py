"""Streaming voice-activity detection for the ASR gate, on 32 ms frames (512 samples at 16 kHz).

:class:`SileroVad` runs the Silero VAD v6 ONNX model that ships inside the faster-whisper wheel
(``faster_whisper.vad.get_vad_model``), keeping its LSTM state and 64-sample context across calls, so
feeding audio in any block sizes gives the same probabilities as one call on the whole signal.
:class:`EnergyVad` is a fallback (RMS above a dBFS threshold mapped to a pseudo-probability).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

FRAME = 512  # samples per VAD frame at 16 kHz (32 ms)
CONTEXT = 64


class SpeechDetector(Protocol):
    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """Speech probability per 512-sample frame of ``frames`` (length a multiple of 512)."""
        ...

    def reset(self) -> None: ...


class SileroVad:
    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        x = np.asarray(frames, dtype=np.float32).reshape(-1, FRAME)  # (N, 512)
        if len(x) == 0:
            return np.zeros(0, dtype=np.float32)
        ctx = np.concatenate([self._context[None, :], x[:-1, -CONTEXT:]], axis=0)  # (N, 64)
        batch = np.concatenate([ctx, x], axis=1)  # (N, 576)
        out, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = x[-1, -CONTEXT:].copy()
        return np.asarray(out, dtype=np.float32).reshape(-1)


class EnergyVad:
    """RMS energy gate: probability rises from 0 to 1 across ``threshold_db ± 6 dB``."""

    def __init__(self, threshold_db: float = -40.0) -> None:
        self.threshold_db = threshold_db

    def reset(self) -> None:
        pass

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        x = np.asarray(frames, dtype=np.float32).reshape(-1, FRAME)
        db = frame_db(x)
        return np.clip((db - self.threshold_db + 6.0) / 12.0, 0.0, 1.0).astype(np.float32)


def frame_db(frames: np.ndarray) -> np.ndarray:
    """RMS level in dBFS of each row of ``frames`` (N, 512)."""
    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-12)
    return 20.0 * np.log10(rms)


def make_vad(kind: str) -> SpeechDetector:
    return SileroVad() if kind == "silero" else EnergyVad()
