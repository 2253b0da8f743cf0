"""The MulT IEMOCAP 4-class pickle (``iemocap_data.pkl`` from yaohungt/Multimodal-Transformer).

Layout: ``train``/``valid``/``test`` each with ``text`` (N, 20, 300 GloVe), ``audio`` (N, 20, 74 COVAREP),
``vision`` (N, 20, 35 Facet) and ``labels`` (N, 4, 2): per emotion (Neutral, Happy, Sad, Angry) a one-hot
pair [not, is]. (N, 4) 0/1 labels are accepted too. It is evaluated as MulT does: four binary decisions,
per-emotion accuracy and weighted F1. No lengths are stored; steps whose features are all zero are padding.
Dataset pickles are untrusted code by nature; they are read with a restricted Unpickler (see safe_pickle)
that accepts only numpy arrays, lists, dicts, str and numbers. Malformed content is a DataFormatError.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from model.config import DataConfig
from model.data.safe_pickle import safe_load_pickle
from model.data.types import (
    SPLITS,
    MultimodalData,
    Split,
    malformed_as_data_error,
    nonzero_mask,
    resample_steps,
    sanitize,
)
from model.errors import DataFormatError
from model.featureset import MODALITIES

log = logging.getLogger(__name__)

IEMOCAP_EMOTIONS: list[str] = ["Neutral", "Happy", "Sad", "Angry"]


def _labels(raw: object, n: int, path: Path, name: str) -> np.ndarray:
    try:
        y = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataFormatError(f"{path}: '{name}.labels' is not numeric") from None
    if y.ndim == 3 and y.shape[1:] == (4, 1):
        y = y[:, :, 0]
    if y.ndim == 3 and y.shape[1:] == (4, 2):
        out = y.argmax(axis=2)
    elif y.ndim == 2 and y.shape[1] == 4:
        out = (y > 0.5).astype(np.int64)
    else:
        raise DataFormatError(
            f"{path}: '{name}.labels' has shape {y.shape}, expected (N, 4, 2) one-hot per emotion "
            f"({', '.join(IEMOCAP_EMOTIONS)}) or (N, 4)"
        )
    if len(out) != n:
        raise DataFormatError(f"{path}: '{name}.labels' has {len(out)} rows for {n} samples")
    return out.astype(np.int64)


def _mult_split(split: object, name: str, path: Path, cfg: DataConfig, counts: dict[str, int]) -> Split:
    """One split of the pickle as a ``Split`` (NaN/inf counted into ``counts``)."""
    if not isinstance(split, dict):
        raise DataFormatError(f"{path}: split '{name}' is not a dict of arrays")
    feats, masks = {}, {}
    n = None
    for m in MODALITIES:
        if m not in split:
            raise DataFormatError(
                f"{path}: split '{name}' has no '{m}' key (found: {', '.join(sorted(map(str, split)))})"
            )
        x, bad = sanitize(split[m])
        if x.ndim != 3 or (n is not None and x.shape[0] != n):
            raise DataFormatError(f"{path}: '{name}.{m}' has shape {x.shape}, expected (N, L, D)")
        n = x.shape[0]
        counts[m] = counts.get(m, 0) + bad
        feats[m], masks[m] = x, nonzero_mask(x)
    if "labels" not in split:
        raise DataFormatError(f"{path}: split '{name}' has no 'labels' key")
    target = cfg.max_len or feats["text"].shape[1]
    for m in MODALITIES:
        if feats[m].shape[1] != target:
            feats[m], masks[m] = resample_steps(feats[m], masks[m], target)
    return Split(
        vision=feats["vision"],
        audio=feats["audio"],
        text=feats["text"],
        vision_mask=masks["vision"],
        audio_mask=masks["audio"],
        text_mask=masks["text"],
        labels=_labels(split["labels"], n or 0, path, name),
        ids=[f"{name}_{i}" for i in range(n or 0)],
    )


def load_mult_iemocap(path: str | Path, cfg: DataConfig, raw: object = None) -> MultimodalData:
    path = Path(path)
    raw = safe_load_pickle(path) if raw is None else raw
    if not isinstance(raw, dict) or not all(s in raw for s in SPLITS):
        raise DataFormatError(f"{path}: expected a dict with 'train', 'valid', 'test' (MulT IEMOCAP pickle)")
    counts: dict[str, int] = {}
    splits: dict[str, Split] = {}
    for name in SPLITS:
        with malformed_as_data_error(f"{path}: split '{name}'"):
            splits[name] = _mult_split(raw[name], name, path, cfg, counts)
    if sum(counts.values()):
        log.warning("%s: replaced %d NaN/inf values by 0 (%s)", path.name, sum(counts.values()), counts)
    return MultimodalData(
        name=path.stem,
        format="mult-iemocap",
        splits=splits,
        task="classification",
        label_kind="mer",
        num_labels=4,
        num_classes=2,
        label_names=list(IEMOCAP_EMOTIONS),
        meta={"nonfinite_replaced": counts},
    )
