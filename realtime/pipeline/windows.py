"""The live window assembler: timestamped samples of each modality → one window of L steps with masks.

Workers hand finished samples to the assembler (``add_vision``/``add_audio``/``add_text``; one owner
thread, the window loop). Every hop the loop calls ``build(t_end)``, which resamples the samples in
``[t_end − W, t_end)`` onto ``L = W·hz`` steps with ``grid.SampleBuffer`` — the same ``grid.to_grid`` that
``mmcl extract`` uses offline (``extract.window_of``), with the same ``features.vision_max_gap_s``, so a
live window of a file equals the offline window of that file over the same span (tested).

* vision: one point sample per processed frame at its capture time (no face → invalid → masked step);
* audio: one point sample per 100 ms voice step at its centre (silent steps → masked);
* text: one interval sample per word ``[start, end)`` (phrase embedding); steps without words are masked.

Steps whose data has not arrived yet (the newest audio step waits for its 21 ms look-ahead; a word is
known only after the ASR commits it) are simply masked in this window and present in later ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from model.featureset import LIVE_FEATURE_SET, MODALITIES
from realtime.features.audio import AudioStep
from realtime.features.grid import SampleBuffer
from realtime.features.text import TextSample
from realtime.features.vision import VisionSample
from realtime.types import Word

AUDIO_STEP_HALF_S = 0.05  # an audio step's last sample is captured half a step after its centre
# A tap sees every batch of samples as it reaches the assembler: (modality, samples). Used to record a user's
# baseline (``mmcl calibrate baseline``); called on the window-loop thread, so it must be quick.
SampleTap = Callable[[str, list], None]


@dataclass
class Window:
    """One window on the grid: features (L, D_m) float32 and masks (L,) bool per modality."""

    index: int
    t_start: float
    t_end: float
    features: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    newest_input: dict[str, float | None]  # capture time of the newest sample of each modality in the window
    samples: dict[str, int]  # samples of each modality that fell in the window
    words: list[Word] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return int(self.masks["vision"].shape[0])

    @property
    def coverage(self) -> dict[str, float]:
        """Share of observed steps per modality."""
        return {m: float(self.masks[m].mean()) if self.steps else 0.0 for m in MODALITIES}

    @property
    def present(self) -> dict[str, bool]:
        return {m: bool(self.masks[m].any()) for m in MODALITIES}

    @property
    def any_present(self) -> bool:
        return any(self.present.values())

    @property
    def newest(self) -> float | None:
        """Capture time of the newest input of any modality (for end-to-end latency)."""
        times = [t for t in self.newest_input.values() if t is not None]
        return max(times) if times else None

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


class WindowAssembler:
    """Owns one ``SampleBuffer`` per modality (single owner thread; not thread-safe by design).

    ``dims`` are the feature sizes of the live feature set in use (``FeatureConfig.live_set.dims``; the
    default feature set's when not given). ``taps`` are called ``tap(modality, samples)`` with every batch
    of samples added (``mmcl calibrate baseline`` collects the resting samples this way); pass them here."""

    def __init__(
        self, window_s: float = 5.0, hz: float = 10.0, vision_max_gap_s: float = 0.0,
        dims: dict[str, int] | None = None, taps: Sequence[SampleTap] = (),
    ) -> None:  # fmt: skip
        self.window_s = float(window_s)
        self.hz = float(hz)
        self.n_steps = round(window_s * hz)
        self.vision_max_gap_s = vision_max_gap_s
        dims = dims or LIVE_FEATURE_SET.dims
        self.buffers = {m: SampleBuffer(int(dims[m])) for m in MODALITIES}
        self._spans: dict[str, list[tuple[float, float]]] = {m: [] for m in MODALITIES}  # (t, end) per sample
        self._words: list[Word] = []
        self._count = 0
        self.taps: list[SampleTap] = list(taps)

    def reset(self) -> None:
        for m, buf in list(self.buffers.items()):
            self.buffers[m] = SampleBuffer(buf.dim)
            self._spans[m] = []
        self._words.clear()

    def _tap(self, modality: str, samples: list) -> None:
        if samples:
            for tap in self.taps:
                tap(modality, samples)

    def add_vision(self, samples: list[VisionSample]) -> None:
        self._tap("vision", samples)
        buf = self.buffers["vision"]
        for s in samples:
            buf.add(s.t, s.values, s.valid)
            self._spans["vision"].append((s.t, s.t))

    def add_audio(self, steps: list[AudioStep]) -> None:
        self._tap("audio", steps)
        buf = self.buffers["audio"]
        for s in steps:
            buf.add(s.t, s.values, s.valid)
            self._spans["audio"].append((s.t, s.t))

    def add_text(self, samples: list[TextSample]) -> list[Word]:
        """Add the text samples; returns their words (the committed ``Word`` each sample was made from)."""
        self._tap("text", samples)
        buf = self.buffers["text"]
        words = []
        for s in samples:
            buf.add(s.start, s.values, True, end=s.end)
            self._spans["text"].append((s.start, s.end))
            words.append(s.source if s.source is not None else Word(s.word, s.start, s.end))
        self._words.extend(words)
        return words

    def build(self, t_end: float) -> Window:
        """The window ``[t_end − W, t_end)``; forgets samples that can no longer fall in a later window."""
        t_start = t_end - self.n_steps / self.hz
        feats: dict[str, np.ndarray] = {}
        masks: dict[str, np.ndarray] = {}
        newest: dict[str, float | None] = {}
        counts: dict[str, int] = {}
        for m, buf in self.buffers.items():
            gap = self.vision_max_gap_s if m == "vision" else 0.0
            feats[m], masks[m] = buf.window(t_start, self.n_steps, self.hz, max_gap=gap)
            newest[m], counts[m] = _newest_in(self._spans[m], m, t_start, t_end)
        words = [w for w in self._words if t_start <= (w.start + w.end) / 2 < t_end]
        window = Window(self._count, t_start, t_end, feats, masks, newest, counts, words)
        self._count += 1
        self.prune(t_start)
        return window

    def prune(self, before: float) -> None:
        for m, buf in self.buffers.items():
            buf.prune(before)
            self._spans[m] = [(t, e) for t, e in self._spans[m] if e >= before]  # as SampleBuffer.prune
        self._words = [w for w in self._words if w.end >= before]


def _newest_in(
    spans: list[tuple[float, float]], modality: str, t_start: float, t_end: float
) -> tuple[float | None, int]:
    """(capture time of the newest sample in [t_start, t_end), number of such samples)."""
    if not spans:
        return None, 0
    arr = np.asarray(spans, dtype=np.float64)
    times, ends = arr[:, 0], arr[:, 1]
    if modality == "text":
        inside = (ends > t_start) & (times < t_end)
        captured = np.minimum(ends, t_end)
    elif modality == "audio":
        inside = (times >= t_start) & (times < t_end)
        captured = times + AUDIO_STEP_HALF_S
    else:
        inside = (times >= t_start) & (times < t_end)
        captured = times
    if not inside.any():
        return None, 0
    return float(captured[inside].max()), int(inside.sum())
