"""Metrics exactly as the field computes them.

MSA (CMU-MOSI/MOSEI) follows MMSA's ``MetricsTop`` for regression: MAE (unclipped), Pearson Corr,
Acc7/Acc5 = mean(round(clip(p)) == round(clip(y))) with numpy's round-half-even and clip ±3 / ±2,
Acc2 "has-0" (p ≥ 0 vs y ≥ 0 over all samples) and "non-0" (samples with y ≠ 0 only; p > 0 vs y > 0),
each with a weighted F1. MER (IEMOCAP) follows MulT's ``eval_iemocap``: per emotion, argmax of the two
logits vs the 0/1 label, accuracy and weighted F1, plus their averages. MDA (depression): MAE, RMSE,
Pearson, and precision/recall/F1 of the positive class at score ≥ threshold.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support


def _pearson(p: np.ndarray, y: np.ndarray) -> float:
    if len(p) < 2 or np.std(p) == 0 or np.std(y) == 0:
        return 0.0  # undefined (constant input); reported as 0 rather than NaN
    return float(np.corrcoef(p, y)[0, 1])


def multiclass_acc(pred: np.ndarray, true: np.ndarray) -> float:
    """MMSA's __multiclass_acc: np.round is round-half-even (0.5 → 0, 1.5 → 2, -0.5 → -0)."""
    return float(np.sum(np.round(pred) == np.round(true)) / float(len(true)))


def msa_regression_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    p = np.asarray(pred, np.float64).reshape(-1)
    y = np.asarray(true, np.float64).reshape(-1)
    non0 = y != 0
    out = {
        "mae": float(np.mean(np.abs(p - y))),
        "corr": _pearson(p, y),
        "acc7": multiclass_acc(np.clip(p, -3.0, 3.0), np.clip(y, -3.0, 3.0)),
        "acc5": multiclass_acc(np.clip(p, -2.0, 2.0), np.clip(y, -2.0, 2.0)),
        "acc2_has0": float(accuracy_score(y >= 0, p >= 0)),
        "f1_has0": float(f1_score(y >= 0, p >= 0, average="weighted")),
    }
    if non0.any():
        out["acc2_non0"] = float(accuracy_score(y[non0] > 0, p[non0] > 0))
        out["f1_non0"] = float(f1_score(y[non0] > 0, p[non0] > 0, average="weighted"))
    else:
        out["acc2_non0"] = out["f1_non0"] = float("nan")
    return out


def classification_metrics(pred_class: np.ndarray, true: np.ndarray) -> dict[str, float]:
    p = np.asarray(pred_class).reshape(-1)
    y = np.asarray(true).reshape(-1)
    return {
        "acc": float(accuracy_score(y, p)),
        "f1": float(f1_score(y, p, average="weighted")),
        "f1_macro": float(f1_score(y, p, average="macro")),
    }


def mer_metrics(logits: np.ndarray, true: np.ndarray, names: list[str]) -> dict[str, float]:
    """``logits`` (N, G, 2), ``true`` (N, G) 0/1 → per-emotion acc/F1 (weighted) and their averages."""
    out: dict[str, float] = {}
    accs, f1s = [], []
    for g, name in enumerate(names):
        p = np.argmax(logits[:, g], axis=1)
        y = true[:, g]
        acc = float(accuracy_score(y, p))
        f1 = float(f1_score(y, p, average="weighted"))
        out[f"{name.lower()}_acc"], out[f"{name.lower()}_f1"] = acc, f1
        accs.append(acc)
        f1s.append(f1)
    out["acc"] = float(np.mean(accs))
    out["f1"] = float(np.mean(f1s))
    return out


def mda_metrics(pred_score: np.ndarray, true_score: np.ndarray, threshold: float) -> dict[str, float]:
    p = np.asarray(pred_score, np.float64).reshape(-1)
    y = np.asarray(true_score, np.float64).reshape(-1)
    out = {
        "mae": float(np.mean(np.abs(p - y))),
        "rmse": float(np.sqrt(np.mean((p - y) ** 2))),
        "pearson": _pearson(p, y),
    }
    out.update(binary_metrics(p >= threshold, y >= threshold))
    return out


def binary_metrics(pred_pos: np.ndarray, true_pos: np.ndarray) -> dict[str, float]:
    precision, recall, f1, _ = precision_recall_fscore_support(
        np.asarray(true_pos, bool), np.asarray(pred_pos, bool), average="binary", zero_division=0
    )
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "acc": float(np.mean(np.asarray(pred_pos, bool) == np.asarray(true_pos, bool))),
    }


# Metric direction, for model selection: True = higher is better.
HIGHER_IS_BETTER = {
    "mae": False,
    "rmse": False,
    "loss": False,
    "ece": False,
}


def higher_is_better(name: str) -> bool:
    return HIGHER_IS_BETTER.get(name, True)
