"""Typed messages passed between stages. Every item carries its capture timestamp on the common clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One video frame (BGR uint8, H×W×3) captured at ``t`` seconds on the common clock."""

    image: np.ndarray
    t: float
    index: int = 0


@dataclass(frozen=True)
class AudioChunk:
    """Mono float32 samples in [-1, 1] at ``sample_rate``; ``t`` is the time of the first sample."""

    samples: np.ndarray
    t: float
    sample_rate: int = 16000

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)

    @property
    def t_end(self) -> float:
        return self.t + self.duration


@dataclass(frozen=True)
class Word:
    """A transcribed word with start/end on the common clock and the recogniser's probability."""

    text: str
    start: float
    end: float
    probability: float = 1.0
    committed_at: float | None = None  # clock time when the streaming ASR committed it (None offline)
    meta: dict = field(default_factory=dict, compare=False)
