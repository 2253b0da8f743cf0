"""In-memory dataset types shared by every loader, the trainer and the evaluator."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from model.errors import DataFormatError
from model.featureset import MODALITIES, FeatureSet

LabelKind = Literal["msa", "mer", "mda", "generic"]
SPLITS: tuple[str, str, str] = ("train", "valid", "test")


@dataclass
class Split:
    """One split: features (N, L, D_m) float32, masks (N, L) bool (True = real step), labels, ids.

    ``labels`` is (N,) float32 for regression, (N,) int64 for single-label classification and
    (N, num_labels) int64 for several independent label groups (IEMOCAP: one binary label per emotion).
    ``arousal`` (N,) float32, where a source rates arousal (regression models with an arousal head learn it);
    NaN marks the samples without a rating (e.g. rated sentences).
    """

    vision: np.ndarray
    audio: np.ndarray
    text: np.ndarray
    vision_mask: np.ndarray
    audio_mask: np.ndarray
    text_mask: np.ndarray
    labels: np.ndarray
    ids: list[str]
    raw_text: list[str] | None = None
    scores: np.ndarray | None = None  # the raw score a binary label was derived from (CMDC: PHQ-9)
    arousal: np.ndarray | None = None  # (N,) float32 arousal ratings, NaN = not rated

    def __post_init__(self) -> None:
        n = len(self.labels)
        for m in MODALITIES:
            x, mask = self.features(m), self.mask(m)
            if x.ndim != 3 or x.shape[0] != n or mask.shape != x.shape[:2]:
                raise DataFormatError(
                    f"inconsistent shapes for {m}: features {x.shape}, mask {mask.shape}, {n} labels"
                )
        lengths = {self.features(m).shape[1] for m in MODALITIES}
        if len(lengths) != 1:
            raise DataFormatError(f"modalities have different numbers of steps {sorted(lengths)}; resample first")
        if len(self.ids) != n:
            raise DataFormatError(f"{len(self.ids)} ids for {n} samples")
        if self.arousal is not None and np.shape(self.arousal) != (n,):
            raise DataFormatError(f"arousal has shape {np.shape(self.arousal)}, expected ({n},)")

    @property
    def has_arousal(self) -> bool:
        """Whether any sample has an arousal rating."""
        return self.arousal is not None and bool(np.isfinite(self.arousal).any())

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def seq_len(self) -> int:
        return self.vision.shape[1]

    def features(self, m: str) -> np.ndarray:
        return getattr(self, m)

    def mask(self, m: str) -> np.ndarray:
        return getattr(self, f"{m}_mask")

    def subset(self, index: np.ndarray) -> Split:
        index = np.asarray(index)
        return Split(
            vision=self.vision[index],
            audio=self.audio[index],
            text=self.text[index],
            vision_mask=self.vision_mask[index],
            audio_mask=self.audio_mask[index],
            text_mask=self.text_mask[index],
            labels=self.labels[index],
            ids=[self.ids[i] for i in index],
            raw_text=[self.raw_text[i] for i in index] if self.raw_text is not None else None,
            scores=self.scores[index] if self.scores is not None else None,
            arousal=self.arousal[index] if self.arousal is not None else None,
        )


@dataclass
class MultimodalData:
    """A dataset with train/valid/test splits and what is needed to build and evaluate a model on it."""

    name: str
    format: str
    splits: dict[str, Split]
    task: Literal["regression", "classification"]
    label_kind: LabelKind
    num_labels: int = 1
    num_classes: int = 1
    feature_set: FeatureSet | None = None
    label_names: list[str] | None = None
    threshold: float | None = None  # MDA: score >= threshold is the positive class
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise DataFormatError(f"dataset {self.name} has no {', '.join(missing)} split")
        if self.feature_set is None:
            self.feature_set = FeatureSet.generic(f"{self.format}-features", self.dims)

    @property
    def dims(self) -> dict[str, int]:
        s = self.splits["train"]
        return {m: int(s.features(m).shape[2]) for m in MODALITIES}

    @property
    def seq_len(self) -> int:
        return self.splits["train"].seq_len

    def input_stats(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per-feature mean and std over the real steps of the training split."""
        s = self.splits["train"]
        out = {}
        for m in MODALITIES:
            x = s.features(m)[s.mask(m)].astype(np.float64)  # (n_real, D)
            if len(x) == 0:
                d = s.features(m).shape[2]
                out[m] = (np.zeros(d, np.float32), np.ones(d, np.float32))
            else:
                out[m] = (x.mean(0).astype(np.float32), x.std(0).astype(np.float32))
        return out


@contextlib.contextmanager
def malformed_as_data_error(where: str) -> Iterator[None]:
    """Turn the errors numpy/Python raise on malformed content (ragged lists, strings where numbers belong,
    wrong types) into a DataFormatError naming ``where``: dataset files are user input."""
    try:
        yield
    except DataFormatError:
        raise
    except (TypeError, ValueError, IndexError, AttributeError, KeyError, OverflowError, MemoryError) as exc:
        raise DataFormatError(
            f"{where} is malformed ({type(exc).__name__}: {str(exc)[:200]}); expected numeric arrays in the "
            "documented layout (see README, 'Datasets')"
        ) from None


def sanitize(x: np.ndarray) -> tuple[np.ndarray, int]:
    """float32 copy with NaN/±inf replaced by 0, and how many values were replaced."""
    x = np.asarray(x, dtype=np.float32)
    bad = ~np.isfinite(x)
    count = int(bad.sum())
    if count:
        x = np.where(bad, np.float32(0), x)
    return x, count


def prefix_mask(lengths: np.ndarray, seq_len: int) -> np.ndarray:
    """MMSA convention: the first ``lengths[i]`` steps are real, the rest padding → (N, L) bool."""
    lengths = np.clip(np.asarray(lengths).astype(np.int64).reshape(-1), 0, seq_len)
    return np.arange(seq_len)[None, :] < lengths[:, None]


def nonzero_mask(x: np.ndarray) -> np.ndarray:
    """Steps whose features are not all zero (for files that store no lengths) → (N, L) bool."""
    return np.abs(x).sum(axis=2) > 0


def resample_steps(x: np.ndarray, mask: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Map each sample's real steps proportionally onto ``seq_len`` bins (mean per bin; empty bins masked).

    Used for unaligned data (e.g. MMSA unaligned: text 50, audio 375, vision 500 steps) because CSD
    compares modalities step by step and needs one common length.
    """
    n, _, d = x.shape
    out = np.zeros((n, seq_len, d), np.float32)
    counts = np.zeros((n, seq_len), np.float32)
    for i in range(n):
        idx = np.flatnonzero(mask[i])
        if len(idx) == 0:
            continue
        bins = (np.arange(len(idx)) * seq_len) // len(idx)
        np.add.at(out[i], bins, x[i, idx])
        np.add.at(counts[i], bins, 1.0)
    out /= np.maximum(counts, 1.0)[:, :, None]
    return out, counts > 0
