"""Planted-signal data: a generated dataset whose label lives in what the modalities share in time.

At a few *agreeing* time steps all three modalities carry an event with the same sign; each modality
also carries *distractor* events of its own, at times when the other modalities are quiet, with random
signs. The label is the signed sum of
the agreeing events only, so one modality alone cannot tell which of its events count, while a model
that compares modalities step by step can. Used by the tests, the ablation demo and ``mmcl demo``.
Nothing is read from disk; the same seed gives the same data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_DIMS = {"vision": 20, "audio": 12, "text": 32}


def _split(rng: np.random.Generator, n: int, seq_len: int, dims: dict[str, int], dirs: dict[str, Any],
           n_agree: int, n_distract: int, noise: float, missing_rate: float, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {m: np.zeros((n, seq_len, d), np.float32) for m, d in dims.items()}
    lengths = rng.integers(seq_len * 3 // 5, seq_len + 1, size=n)
    labels = np.zeros(n, np.float32)
    for i in range(n):
        length = int(lengths[i])
        agree_t = rng.choice(length, size=n_agree, replace=False)
        free = np.setdiff1d(np.arange(length), agree_t)
        signs = rng.choice([-1.0, 1.0], size=n_agree)
        amps = rng.uniform(0.6, 1.4, size=n_agree)
        labels[i] = float(np.clip(1.1 * np.sum(signs * amps), -3.0, 3.0))
        for m, d in dims.items():
            x = noise * rng.standard_normal((length, d)).astype(np.float32)
            # distractors: each modality's own times and signs, never at an agreeing step
            t_d = rng.choice(free, size=n_distract, replace=False)
            events = [*zip(agree_t, signs, amps, strict=True),
                      *zip(t_d, rng.choice([-1.0, 1.0], size=n_distract), rng.uniform(0.6, 1.4, n_distract),
                           strict=True)]
            for t, s, a in events:
                x[t] += a * (1.5 * s * dirs[m]["valence"] + 1.5 * dirs[m]["event"])
            out[m][i, :length] = x
    for m in dims:
        out[f"{m}_lengths"] = lengths.copy()
    drop = rng.random(n) < missing_rate  # a whole modality missing for some samples
    which = rng.choice(list(dims), size=n)
    for i in np.flatnonzero(drop):
        out[which[i]][i] = 0.0
        out[f"{which[i]}_lengths"][i] = 0
    out["regression_labels"] = labels
    out["classification_labels"] = np.where(labels < 0, 0, np.where(labels > 0, 2, 1)).astype(np.int64)
    out["id"] = np.array([f"{prefix}_{i}" for i in range(n)], dtype=object)
    out["raw_text"] = np.array([""] * n, dtype=object)
    return out


def make_planted_mmsa(
    n_train: int = 1200,
    n_valid: int = 300,
    n_test: int = 300,
    seq_len: int = 50,
    dims: dict[str, int] | None = None,
    seed: int = 0,
    n_agree: int = 2,
    n_distract: int = 3,
    noise: float = 0.5,
    missing_rate: float = 0.05,
) -> dict[str, Any]:
    """An MMSA-format dict (train/valid/test) with the planted signal."""
    dims = dict(dims or DEFAULT_DIMS)
    rng = np.random.default_rng(seed)
    dirs = {}
    for m, d in dims.items():
        q, _ = np.linalg.qr(rng.standard_normal((d, 2)))
        dirs[m] = {"valence": q[:, 0].astype(np.float32), "event": q[:, 1].astype(np.float32)}
    args = (seq_len, dims, dirs, n_agree, n_distract, noise, missing_rate)
    return {
        "train": _split(rng, n_train, *args, prefix="train"),
        "valid": _split(rng, n_valid, *args, prefix="valid"),
        "test": _split(rng, n_test, *args, prefix="test"),
    }
