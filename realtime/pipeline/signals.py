"""The scalar signals of a prediction that alerts and metrics read: valence, arousal, confidence, trend.

Read defensively (``getattr``): ``arousal`` exists only once the model gives one, ``confidence`` is the
model's own figure when it has one, else the top class probability (calibrated when the checkpoint holds a
fitted temperature), else absent (plain regression). Absent signals are left out (None).
"""

from __future__ import annotations

from typing import Any


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if f == f else None  # NaN → None


def confidence_of(prediction: Any) -> float | None:
    own = _num(getattr(prediction, "confidence", None))
    if own is not None:
        return own
    probs = getattr(prediction, "probs", None)
    return float(max(probs.values())) if probs else None


def prediction_signals(prediction: Any) -> dict[str, float | None]:
    """{valence, arousal, confidence, trend} of ``prediction`` (all None without a prediction)."""
    if prediction is None:
        return {"valence": None, "arousal": None, "confidence": None, "trend": None}
    return {
        "valence": _num(getattr(prediction, "score", None)),
        "arousal": _num(getattr(prediction, "arousal", None)),
        "confidence": confidence_of(prediction),
        "trend": _num(getattr(prediction, "trend", None)),
    }
