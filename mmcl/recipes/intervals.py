"""Calibrated intervals for the shipped checkpoint: split conformal on out-of-fold residuals.

During the person-grouped CV every candidate predicts windows of people it was not trained on; the chosen
candidate's |valence − prediction| (and |arousal − prediction| on the windows with an arousal rating), pooled
over every fold and seed, are the conformal calibration set (``calibration.confidence.conformal_half_width``).
The shipped model is trained on all development groups, so it is, if anything, slightly better than the fold
models and the interval slightly conservative. The final-test groups, unseen by every model, measure the
coverage once. The record has the layout ``mmcl calibrate confidence`` writes and the monitor reads
(``extra["calibration"]["interval"]`` / ``["arousal_interval"]``: ``ŷ ± q (90%)`` on the dashboard).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from calibration.confidence import conformal_half_width, coverage
from mmcl.recipes.compose import Sample, arousal_of
from model.errors import DataFormatError

log = logging.getLogger(__name__)
LEVEL = 0.9


def residuals(pred: np.ndarray, samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
    """(|valence − ŷ| over every window, |arousal − â| over the rated windows; empty without an arousal
    output). ``pred`` is (N,) valence or (N, 2) valence and arousal."""
    pred = np.asarray(pred, np.float64)
    valence = pred[:, 0] if pred.ndim == 2 else pred.reshape(-1)
    y = np.asarray([s.label for s in samples], np.float64)
    v = np.abs(valence - y)
    if pred.ndim != 2 or pred.shape[1] < 2:
        return v, np.zeros(0)
    a_true = arousal_of(samples)
    rated = np.isfinite(a_true)
    return v, np.abs(pred[rated, 1] - a_true[rated])


def _record(cal: np.ndarray, test: np.ndarray, level: float, what: str) -> dict[str, Any]:
    q = conformal_half_width(cal, level)
    return {
        "half_width": q,
        "level": level,
        "method": f"split conformal on out-of-fold |{what} − prediction| of the person-grouped CV",
        "n_valid": len(cal),
        "test_coverage": coverage(test, q),
        "test_mae": float(np.mean(test)) if len(test) else float("nan"),
        "n_test": len(test),
    }


def fit_intervals(
    cv_residuals: Sequence[tuple[np.ndarray, np.ndarray]],
    test_residuals: tuple[np.ndarray, np.ndarray],
    level: float = LEVEL,
) -> dict[str, Any]:
    """The checkpoint's ``calibration`` record from the chosen candidate's CV residuals (one pair per fold
    and seed) and the shipped model's final-test residuals."""
    cal_v = np.concatenate([v for v, _ in cv_residuals]) if cv_residuals else np.zeros(0)
    cal_a = np.concatenate([a for _, a in cv_residuals]) if cv_residuals else np.zeros(0)
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    out: dict[str, Any] = {}
    for key, cal, test, what in (("interval", cal_v, test_residuals[0], "valence"),
                                 ("arousal_interval", cal_a, test_residuals[1], "arousal")):  # fmt: skip
        if not len(cal):
            continue
        try:
            out[key] = {**_record(cal, test, level, what), "created": created}
        except DataFormatError as exc:  # too few residuals for a finite level-q
            log.warning("no %s interval: %s", what, exc)
    return out
