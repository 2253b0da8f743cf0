"""Calibrated intervals for the shipped checkpoint: split conformal on out-of-fold residuals.

During the person-grouped CV every candidate predicts windows of people it was not trained on; the chosen
candidate's |valence − prediction| (and |arousal − prediction| on the windows with an arousal rating), pooled
over every fold and seed, are the conformal calibration set (``calibration.confidence.conformal_half_width``).
The shipped model is trained on all development groups, so it is, if anything, slightly better than the fold
models and the interval slightly conservative. The final-test groups, unseen by every model, measure the
coverage once. The record has the layout ``mmcl calibrate confidence`` writes and the monitor reads
(``extra["calibration"]["interval"]`` / ``["arousal_interval"]``: ``ŷ ± q (90%)`` on the dashboard).

Windows differ in how well they are read (a face alone errs less than words alone), so one pooled width is
too wide for some and too narrow for others. Each record also holds ``by_presence``: a width per presence
pattern (the modalities a window has) fitted on that pattern's residuals alone, where there are at least
``MIN_PER_PATTERN`` of them; the monitor takes the width of the window's pattern and the pooled one otherwise.
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
from model.featureset import MODALITIES, presence_key

log = logging.getLogger(__name__)
LEVEL = 0.9


MIN_PER_PATTERN = 200  # residuals a presence pattern needs for its own width (else the pooled one serves)
Residuals = tuple[np.ndarray, np.ndarray, list[str], list[str]]


def residuals(pred: np.ndarray, samples: Sequence[Sample]) -> Residuals:
    """(|valence − ŷ| over every window, |arousal − â| over the rated windows — empty without an arousal
    output —, and each one's presence pattern, ``model.featureset.presence_key``). ``pred`` is (N,) valence
    or (N, 2) valence and arousal."""
    pred = np.asarray(pred, np.float64)
    valence = pred[:, 0] if pred.ndim == 2 else pred.reshape(-1)
    y = np.asarray([s.label for s in samples], np.float64)
    keys = [presence_key({m: bool(getattr(s.win, f"{m}_mask").any()) for m in MODALITIES}) for s in samples]
    v = np.abs(valence - y)
    if pred.ndim != 2 or pred.shape[1] < 2:
        return v, np.zeros(0), keys, []
    a_true = arousal_of(samples)
    rated = np.isfinite(a_true)
    return v, np.abs(pred[rated, 1] - a_true[rated]), keys, [k for k, ok in zip(keys, rated, strict=True) if ok]


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


def _by_presence(cal: np.ndarray, cal_keys: list[str], test: np.ndarray, test_keys: list[str], level: float,
                 what: str) -> dict[str, dict[str, Any]]:  # fmt: skip
    """One conformal width per presence pattern with at least ``MIN_PER_PATTERN`` residuals (Mondrian split
    conformal: the coverage holds within each pattern, not only on average)."""
    ck, tk = np.asarray(cal_keys), np.asarray(test_keys)
    out = {}
    for key in sorted(set(cal_keys)):
        mine = cal[ck == key]
        if len(mine) >= MIN_PER_PATTERN:
            rec = _record(mine, test[tk == key] if len(tk) else np.zeros(0), level, what)
            out[key] = {k: rec[k] for k in ("half_width", "n_valid", "test_coverage", "n_test")}
    return out


def fit_intervals(
    cv_residuals: Sequence[Residuals], test_residuals: Residuals, level: float = LEVEL
) -> dict[str, Any]:
    """The checkpoint's ``calibration`` record from the chosen candidate's CV residuals (one per fold and
    seed) and the shipped model's final-test residuals: a pooled width per output and, under
    ``by_presence``, one per presence pattern (what the monitor uses for a window with those modalities)."""
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    out: dict[str, Any] = {}
    for key, j, what in (("interval", 0, "valence"), ("arousal_interval", 1, "arousal")):
        cal = np.concatenate([r[j] for r in cv_residuals]) if cv_residuals else np.zeros(0)
        cal_keys = [k for r in cv_residuals for k in r[j + 2]]
        if not len(cal):
            continue
        try:
            out[key] = {**_record(cal, test_residuals[j], level, what), "created": created}
        except DataFormatError as exc:  # too few residuals for a finite level-q
            log.warning("no %s interval: %s", what, exc)
            continue
        per = _by_presence(cal, cal_keys, test_residuals[j], test_residuals[j + 2], level, what)
        if per:
            out[key]["by_presence"] = per
    return out
