"""MMSA pickles (thuiar/MMSA: CMU-MOSI, CMU-MOSEI and files written by ``mmcl extract``).

Layout: a dict with ``train``/``valid``/``test``; each a dict with ``text`` (N, L_t, D_t), ``audio``
(N, L_a, D_a), ``vision`` (N, L_v, D_v), ``audio_lengths``, ``vision_lengths`` (real steps first, zeros
after), ``regression_labels`` (N,), ``classification_labels`` (N,), ``id`` and ``raw_text``.
Quirks handled: −inf/NaN in audio/vision (replaced by 0 and counted), missing ``text_lengths`` (taken from
``text_bert``'s attention mask or from non-zero steps), unaligned lengths (resampled onto one length),
optional per-step ``<m>_mask`` arrays (written by ``mmcl extract``), a top-level ``feature_set`` record.
Dataset pickles are untrusted code by nature; they are read with a restricted Unpickler (see safe_pickle)
that accepts only numpy arrays, lists, dicts, str and numbers. Malformed content is a DataFormatError.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from model.config import DataConfig
from model.data.safe_pickle import safe_load_pickle
from model.data.types import (
    SPLITS,
    MultimodalData,
    Split,
    malformed_as_data_error,
    nonzero_mask,
    prefix_mask,
    resample_steps,
    sanitize,
)
from model.errors import DataFormatError
from model.featureset import MODALITIES, FeatureSet

log = logging.getLogger(__name__)


def _get(split: dict[str, Any], key: str, path: Path, name: str) -> Any:
    if key not in split:
        raise DataFormatError(
            f"{path}: split '{name}' has no '{key}' key (found: {', '.join(sorted(map(str, split)))}); "
            "expected an MMSA feature pickle (see README, 'Datasets')"
        )
    return split[key]


def _modality_mask(split: dict[str, Any], m: str, x: np.ndarray, path: Path, name: str) -> np.ndarray:
    n, seq_len = x.shape[:2]
    if f"{m}_mask" in split:
        mask = np.asarray(split[f"{m}_mask"]).astype(bool)
        if mask.shape != (n, seq_len):
            raise DataFormatError(f"{path}: '{name}.{m}_mask' has shape {mask.shape}, expected {(n, seq_len)}")
        return mask
    if f"{m}_lengths" in split:
        lengths = np.asarray(split[f"{m}_lengths"]).reshape(-1)
        if len(lengths) != n:
            raise DataFormatError(f"{path}: '{name}.{m}_lengths' has {len(lengths)} entries for {n} samples")
        return prefix_mask(lengths, seq_len)
    if m == "text" and "text_bert" in split:
        bert = np.asarray(split["text_bert"])
        if bert.ndim == 3 and bert.shape[0] == n and bert.shape[2] == seq_len:
            return bert[:, 1, :] > 0  # MMSA's text_bert = (ids, attention mask, segment ids)
    return nonzero_mask(x)


def _split(split: Any, name: str, path: Path, cfg: DataConfig, counts: dict[str, int]) -> Split:
    if not isinstance(split, dict):
        raise DataFormatError(f"{path}: split '{name}' is a {type(split).__name__}, expected a dict of arrays")
    if "text" not in split and "text_bert" in split:
        raise DataFormatError(
            f"{path}: split '{name}' holds only 'text_bert' token ids, but mmcl needs text *features* under "
            "'text' (N, L, D), e.g. MMSA's aligned_50.pkl / unaligned_50.pkl feature files (BERT 768-d), "
            "or a pickle written by `mmcl extract`"
        )
    feats: dict[str, np.ndarray] = {}
    for m in MODALITIES:
        try:
            x, bad = sanitize(_get(split, m, path, name))
        except (TypeError, ValueError) as exc:
            raise DataFormatError(f"{path}: '{name}.{m}' is not a numeric array ({exc})") from None
        if x.ndim != 3:
            raise DataFormatError(f"{path}: '{name}.{m}' has shape {x.shape}, expected (N, L, D)")
        counts[m] = counts.get(m, 0) + bad
        feats[m] = x
    sizes = {m: x.shape[0] for m, x in feats.items()}
    if len(set(sizes.values())) != 1:
        raise DataFormatError(f"{path}: split '{name}' has different sample counts per modality {sizes}")
    n = sizes["text"]
    masks = {m: _modality_mask(split, m, feats[m], path, name) for m in MODALITIES}
    target = cfg.max_len or feats["text"].shape[1]
    for m in MODALITIES:
        if feats[m].shape[1] != target:
            feats[m], masks[m] = resample_steps(feats[m], masks[m], target)
    key = "classification_labels" if cfg.mmsa_labels == "classification" else "regression_labels"
    labels = np.asarray(_get(split, key, path, name)).reshape(-1)
    if len(labels) != n:
        raise DataFormatError(f"{path}: '{name}.{key}' has {len(labels)} entries for {n} samples")
    if cfg.mmsa_labels == "classification":
        labels = np.rint(sanitize(labels)[0]).astype(np.int64)
    else:
        labels = sanitize(labels)[0]
    ids = [str(i) for i in np.asarray(split.get("id", np.arange(n))).reshape(-1)]
    raw_text = split.get("raw_text")
    return Split(
        vision=feats["vision"],
        audio=feats["audio"],
        text=feats["text"],
        vision_mask=masks["vision"],
        audio_mask=masks["audio"],
        text_mask=masks["text"],
        labels=labels,
        ids=ids if len(ids) == n else [f"{name}_{i}" for i in range(n)],
        raw_text=[str(t) for t in raw_text] if raw_text is not None and len(raw_text) == n else None,
    )


def load_mmsa(path: str | Path, cfg: DataConfig, raw: Any = None) -> MultimodalData:
    """Load an MMSA pickle (``raw``: its already unpickled content, to avoid reading a big file twice)."""
    path = Path(path)
    raw = safe_load_pickle(path) if raw is None else raw
    if not isinstance(raw, dict) or not all(s in raw for s in SPLITS):
        found = ", ".join(sorted(map(str, raw))) if isinstance(raw, dict) else type(raw).__name__
        raise DataFormatError(
            f"{path}: expected a dict with 'train', 'valid' and 'test' splits (MMSA format), found {found}"
        )
    counts: dict[str, int] = {}
    splits = {}
    for s in SPLITS:
        with malformed_as_data_error(f"{path}: split '{s}'"):
            splits[s] = _split(raw[s], s, path, cfg, counts)
    replaced = sum(counts.values())
    if replaced:
        log.warning("%s: replaced %d NaN/inf values by 0 (%s)", path.name, replaced, counts)
    feature_set = None
    if isinstance(raw.get("feature_set"), dict):
        feature_set = FeatureSet.from_dict(raw["feature_set"])
    classification = cfg.mmsa_labels == "classification"
    if classification:
        low = min(int(s.labels.min(initial=0)) for s in splits.values())
        if low < 0:  # some releases store classes as -1/0/1: shift to 0-based class indices
            log.info("%s: classification labels start at %d; shifted to start at 0", path.name, low)
            for s in splits.values():
                s.labels = s.labels - low
    num_classes = int(max(int(s.labels.max(initial=0)) for s in splits.values()) + 1) if classification else 1
    data = MultimodalData(
        name=path.stem,
        format="mmsa",
        splits=splits,
        task="classification" if classification else "regression",
        label_kind="msa",
        num_classes=max(num_classes, 2) if classification else 1,
        feature_set=feature_set,
        meta={"nonfinite_replaced": counts},
    )
    if feature_set is not None and feature_set.dims != data.dims:
        raise DataFormatError(f"{path}: feature_set record {feature_set.dims} does not match the arrays {data.dims}")
    return data
