"""Labelled items of the recipe's sources and the on-disk cache of their extracted features.

An ``Item`` is one real recording (a sentence, a RAVDESS clip, a face window) with its labels on the common
scales (valence −3..+3; arousal −1..+1 where the source has it), its person group, whether that group is
held out for the final test (``split`` "test") or in development ("dev", cross-validated), and its
features as timestamped samples of each modality (``realtime.features.extract.FileFeatures``: exactly what
the live extractors produce). Windows for training are cut from these later (``compose``), so changing how
windows are composed never re-extracts.

Cache: one pickle per item under ``<cache>/<source>/<key[:2]>/<key>.pkl``; the key hashes everything that
determines the features (the input's content, TTS settings, extractor settings, the feature-set version).
Files are written atomically, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.data.safe_pickle import safe_load_cache
from model.errors import DataFormatError
from model.featureset import LIVE_FEATURE_SET
from realtime.features.extract import FileFeatures

log = logging.getLogger(__name__)

CACHE_VERSION = 2
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class Item:
    """One labelled recording of one source, with its features."""

    id: str
    source: str  # clean_text | text | voice | pyaa | face | crema_d | moud
    split: str  # dev (cross-validated) | test (final, scored once) | eval (evaluation-only clips)
    label: float  # valence on −3..+3
    group: str  # the person group (sentence document, actor, subject, clip)
    ff: FileFeatures
    meta: dict[str, Any] = field(default_factory=dict)
    arousal: float | None = None  # −1..+1, None where the source has no arousal rating


def empty_features(path: str, duration: float, dims: dict[str, int] | None = None) -> FileFeatures:
    """A FileFeatures with no sample in any modality (fill the ones a source has)."""
    d = dims or LIVE_FEATURE_SET.dims
    return FileFeatures(
        path=path, duration=duration,
        vision_t=np.zeros(0), vision_x=np.zeros((0, d["vision"]), np.float32), vision_valid=np.zeros(0, bool),
        audio_t=np.zeros(0), audio_x=np.zeros((0, d["audio"]), np.float32), audio_valid=np.zeros(0, bool),
        text_start=np.zeros(0), text_end=np.zeros(0), text_x=np.zeros((0, d["text"]), np.float32),
        has_video=False, has_audio=False,
    )  # fmt: skip


def file_digest(path: str | Path) -> str:
    """SHA-1 of a file's bytes (the cache key must not depend on paths or modification times)."""
    h = hashlib.sha1()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ItemCache:
    """Pickled extraction results keyed by a hash of their inputs."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.hits = 0
        self.misses = 0

    def key(self, source: str, *parts: Any) -> str:
        blob = repr((CACHE_VERSION, LIVE_FEATURE_SET.ident, source, *parts)).encode()
        return hashlib.sha1(blob).hexdigest()

    def _path(self, source: str, key: str) -> Path:
        return self.root / source / key[:2] / f"{key}.pkl"

    def get(self, source: str, key: str) -> Any | None:
        p = self._path(source, key)
        if not p.is_file():
            self.misses += 1
            return None
        try:
            blob = safe_load_cache(p)
        except DataFormatError:  # a torn, foreign or tampered file: recompute it
            log.warning("ignoring unreadable cache file %s", p)
            self.misses += 1
            return None
        if not isinstance(blob, dict) or blob.get("key") != key:
            self.misses += 1
            return None
        self.hits += 1
        return blob["value"]

    def put(self, source: str, key: str, value: Any) -> None:
        p = self._path(source, key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + f".tmp{os.getpid()}")
        with tmp.open("wb") as f:
            pickle.dump({"key": key, "value": value}, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, p)

    def get_or_make(self, source: str, key: str, make: Callable[[], Any]) -> Any:
        value = self.get(source, key)
        if value is None:
            value = make()
            self.put(source, key, value)
        return value


def limit_per_split(items: list[Any], split_of: Callable[[Any], str], limit: int) -> list[Any]:
    """At most ``limit`` items of each split, evenly spaced through it (all when ``limit`` is 0), order kept.

    Evenly spaced rather than the first ones, so a small smoke run still sees several classes."""
    if limit <= 0:
        return items
    by_split: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_split.setdefault(split_of(it), []).append(i)
    keep: set[int] = set()
    for idx in by_split.values():
        picks = np.linspace(0, len(idx) - 1, min(limit, len(idx))).round().astype(int)
        keep.update(idx[p] for p in picks)
    return [it for i, it in enumerate(items) if i in keep]
