"""Confidence calibration: temperature scaling for classifiers, split-conformal intervals for regressors.

Classification (``fit_temperature``): one scalar T > 0 for the whole model, fitted on the **validation**
split by minimising the negative log-likelihood of softmax(logits / T) (bounded 1-D search over log T,
T ∈ [0.05, 20]). Several label groups (IEMOCAP's 4 emotions × 2) share the one T. T only rescales
confidence: argmax, hence accuracy, is unchanged.

Reported on the **test** split, before and after:

* ECE, ``n_bins`` equal-width bins over the top-class confidence c = max_k p_k:
  ``ECE = Σ_b (n_b / N) · |acc_b − conf_b|`` with acc_b the share of correct top-class predictions and
  conf_b the mean confidence in bin b (bins (lo, hi], the first one [0, hi]). Label groups count as separate
  predictions.
* Brier score: ``mean over predictions of Σ_k (p_k − 1[y = k])²`` (0 best, 2 worst).

Regression (``conformal_half_width``): split conformal on the validation residuals |y − ŷ|: with n of them
and level 1 − α, q is the ⌈(n + 1)(1 − α)⌉-th smallest, so that a new |residual| ≤ q with probability
≥ 1 − α when validation and live windows are exchangeable. The monitor shows ``ŷ ± q (90%)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from model.errors import DataFormatError

T_MIN, T_MAX = 0.05, 20.0


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax over the last axis of ``logits / temperature`` (float64)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _flat(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, G, C) logits and (N,) or (N, G) labels → (N·G, C), (N·G,)."""
    lg = np.asarray(logits, dtype=np.float64)
    if lg.ndim == 2:
        lg = lg[:, None, :]
    y = np.asarray(labels).reshape(len(lg), -1)
    if y.shape[1] != lg.shape[1]:
        raise DataFormatError(f"labels {np.shape(labels)} do not match logits {np.shape(logits)}")
    flat_y = y.reshape(-1).astype(np.int64)
    if flat_y.size and (flat_y.min() < 0 or flat_y.max() >= lg.shape[2]):
        raise DataFormatError(f"class labels must be in [0, {lg.shape[2]}), got {flat_y.min()}…{flat_y.max()}")
    return lg.reshape(-1, lg.shape[2]), flat_y


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under softmax(logits / T)."""
    lg, y = _flat(logits, labels)
    z = lg / temperature
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the NLL on (logits, labels)."""
    lg, y = _flat(logits, labels)
    if len(y) < 2:
        raise DataFormatError("temperature scaling needs at least 2 labelled validation samples")
    res = minimize_scalar(
        lambda log_t: nll(lg, y, math.exp(log_t)),
        bounds=(math.log(T_MIN), math.log(T_MAX)),
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(math.exp(res.x))


@dataclass(frozen=True)
class ReliabilityBin:
    lo: float
    hi: float
    count: int
    confidence: float  # mean top-class probability in the bin (nan when empty)
    accuracy: float  # share correct in the bin (nan when empty)


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> list[ReliabilityBin]:
    """Equal-width bins over the top-class confidence of flattened predictions (see module docstring)."""
    p, y = _flat(probs, labels)
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)  # (lo, hi], first [0, hi]
    out = []
    for b in range(n_bins):
        sel = which == b
        n = int(sel.sum())
        mean_conf = float(conf[sel].mean()) if n else float("nan")
        mean_acc = float(correct[sel].mean()) if n else float("nan")
        out.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), n, mean_conf, mean_acc))
    return out


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    bins = reliability_bins(probs, labels, n_bins)
    total = sum(b.count for b in bins)
    if total == 0:
        return float("nan")
    return float(sum(b.count / total * abs(b.accuracy - b.confidence) for b in bins if b.count))


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    p, y = _flat(probs, labels)
    onehot = np.eye(p.shape[1])[y]
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    p, y = _flat(probs, labels)
    return float((p.argmax(axis=1) == y).mean())


# ---- regression ------------------------------------------------------------------------------------------
def conformal_rank(n: int, level: float) -> int:
    """⌈(n + 1)·level⌉, robust to float rounding (0.9 · 10 is 9.000000000000002 in binary)."""
    return math.ceil((n + 1) * level - 1e-9)


def conformal_half_width(abs_residuals: np.ndarray, level: float = 0.9) -> float:
    """Split-conformal q: the ⌈(n + 1)·level⌉-th smallest |residual| (module docstring)."""
    r = np.sort(np.abs(np.asarray(abs_residuals, dtype=np.float64).reshape(-1)))
    r = r[np.isfinite(r)]
    n = len(r)
    k = conformal_rank(n, level)
    if n == 0 or k > n:
        need = math.ceil(level / (1 - level) - 1e-9)
        raise DataFormatError(f"a {level:.0%} conformal interval needs at least {need} validation samples, got {n}")
    return float(r[k - 1])


def coverage(abs_residuals: np.ndarray, half_width: float) -> float:
    r = np.abs(np.asarray(abs_residuals, dtype=np.float64).reshape(-1))
    return float((r <= half_width).mean()) if r.size else float("nan")
