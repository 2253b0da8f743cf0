"""Scoring windows: run the backend, decode with the checkpoint's task, smooth, attribute to modalities.

Decoding (``TaskInfo``):

* regression — ``value`` is the model output (MSA scale −3…+3 for ``label_kind == "msa"``); the
  ``score`` used for the gauge, the trend and the contributions is that value.
* classification, one label group — ``probs`` = softmax(logits / T) over the classes (T = a calibrated
  temperature from ``checkpoint.extra`` when present, else 1), ``label`` = the most probable class. For
  sentiment checkpoints (``label_kind == "msa"``) the classes are ordered negative → positive and
  ``score`` = Σ p_k·v_k with v evenly spaced on [−1, +1] (3 classes: −1, 0, +1); otherwise ``score`` is
  the top class's probability.
* classification, several label groups (e.g. IEMOCAP's 4 emotions × present/absent) — ``probs`` holds
  each group's probability of its last class ("present"); ``label`` and ``score`` are the top group's.

Calibration (``calibration/``, all optional): a regression checkpoint with a fitted interval
(``extra["calibration"]["interval"]``, split conformal) gives every prediction ``interval`` = its
half-width q at ``interval_level`` (shown as ``ŷ ± q (90%)``) — the width fitted for the window's presence
pattern (which modalities it has: ``calibration.interval.by_presence``) when the checkpoint has one, else
the pooled width; ``window_transform`` (a per-user baseline)
maps each window's features before the model sees them, and ``window_recorder`` receives the features and
masks exactly as the model receives them (``mmcl monitor --record-calib``).

Smoothed trend: an exponential moving average of ``score`` with time constant ``ema_tau_s`` (α = 1 −
exp(−Δt/τ) per window); windows without any modality present do not move it.

Per-modality contribution (**masked-modality delta**): besides the window as is (``predict``, batch 1),
the window is scored with vision, audio or text masked out (mask all False, values zero) in one more
backend call of batch 3 (``attribute``). ``contribution[m] = score(full) − score(without m)``: how much
modality m moved this prediction, in score units (positive = pushed towards positive sentiment). A
modality absent from the window has no contribution (``None``; masking it changes nothing). Deltas are
not additive (the model is non-linear). The pipeline publishes the prediction first and the
contributions right after (a few ms later), so attribution never delays the sentiment on screen.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from model.backends import ModelInputs
from model.backends.base import InferenceBackend
from model.evaluate import TaskInfo
from model.featureset import MODALITIES, presence_key
from realtime.pipeline.windows import Window

log = logging.getLogger(__name__)

_DEFAULT_NAMES = {2: ["negative", "positive"], 3: ["negative", "neutral", "positive"]}


@dataclass(frozen=True)
class Prediction:
    """The decoded output of one window."""

    window: int
    t_end: float
    score: float  # the scalar shown on the gauge (see module docstring)
    trend: float  # EMA of score
    value: float | None = None  # regression output
    probs: dict[str, float] | None = None  # classification probabilities
    label: str | None = None
    contributions: dict[str, float | None] = field(default_factory=dict)
    raw: tuple[float, ...] = ()
    interval: float | None = None  # regression: half-width of the calibrated interval around ``value``
    interval_level: float | None = None  # its nominal coverage (e.g. 0.9)
    calibrated: bool = False  # classification: probabilities from a fitted temperature
    scored_by: str | None = None  # who ran the model when it was not this process (``server`` / ``local``)
    arousal: float | None = None  # models with an arousal head: their second output (−1 calm … +1 excited)
    arousal_interval: float | None = None  # its calibrated half-width, when the checkpoint has one

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "score": self.score,
            "trend": self.trend,
            "value": self.value,
            "probs": self.probs,
            "label": self.label,
            "contributions": self.contributions,
        }
        if self.interval is not None:
            out["interval"] = {"half_width": self.interval, "level": self.interval_level}
        if self.arousal is not None:
            out["arousal"] = self.arousal
            if self.arousal_interval is not None:
                out["arousal_interval"] = {"half_width": self.arousal_interval, "level": self.interval_level}
        if self.calibrated:
            out["calibrated"] = True
        if self.scored_by is not None:
            out["scored_by"] = self.scored_by
        return out


WindowTransform = Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], dict[str, np.ndarray]]
WindowRecorder = Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], None]


def checkpoint_temperature(extra: dict) -> float:
    """A fitted temperature in ``checkpoint.extra`` (``temperature`` or ``calibration.temperature``)."""
    for cand in (extra.get("temperature"), (extra.get("calibration") or {}).get("temperature")):
        if isinstance(cand, (int, float)) and math.isfinite(cand) and cand > 0:
            return float(cand)
    return 1.0


def checkpoint_arousal_interval(extra: dict) -> float | None:
    """Half-width of the fitted arousal interval (``calibration.arousal_interval``), or None."""
    rec = checkpoint_interval(extra, "arousal_interval")
    return rec[0] if rec is not None else None


def _calibration_record(extra: dict, key: str) -> object:
    calib = extra.get("calibration")
    return calib.get(key) if isinstance(calib, dict) else None


def checkpoint_interval(extra: dict, key: str = "interval") -> tuple[float, float] | None:
    """(half-width, level) of a fitted regression interval in ``checkpoint.extra["calibration"][key]``
    (``interval``: the valence; ``arousal_interval``: the arousal output)."""
    rec = _calibration_record(extra, key)
    if not isinstance(rec, dict):
        return None
    q, level = rec.get("half_width"), rec.get("level")
    ok = isinstance(q, (int, float)) and isinstance(level, (int, float))
    if not ok or not (math.isfinite(q) and q >= 0 and 0 < level < 1):
        return None
    return float(q), float(level)


def checkpoint_interval_by_presence(extra: dict, key: str = "interval") -> dict[str, float]:
    """Half-widths fitted per presence pattern (``calibration[key]["by_presence"]``: ``model.featureset.
    presence_key`` → record), where the checkpoint has them; a pattern not listed uses the pooled width."""
    rec = _calibration_record(extra, key)
    table = rec.get("by_presence") if isinstance(rec, dict) else None
    out: dict[str, float] = {}
    for name, sub in (table or {}).items():
        q = sub.get("half_width") if isinstance(sub, dict) else None
        if isinstance(q, (int, float)) and math.isfinite(q) and q >= 0:
            out[str(name)] = float(q)
    return out


def checkpoint_interval_options(extra: dict) -> dict[str, object]:
    """The InferenceEngine keywords for every interval a checkpoint carries (pooled and per presence)."""
    return {
        "interval": checkpoint_interval(extra),
        "arousal_interval": checkpoint_arousal_interval(extra),
        "interval_by_presence": checkpoint_interval_by_presence(extra),
        "arousal_interval_by_presence": checkpoint_interval_by_presence(extra, "arousal_interval"),
    }


def masked_variants(inputs: ModelInputs) -> ModelInputs:
    """Batch of 3·B: each row with vision, then audio, then text masked out (mask False, values 0), row by row
    (``[r0 −vision, r0 −audio, r0 −text, r1 −vision, …]``). Used for the local attribution call and by
    ``mmcl serve``, which scores a window and its variants in the same backend call."""
    n = len(MODALITIES)
    arrays = {m: np.repeat(getattr(inputs, m), n, axis=0) for m in MODALITIES}
    masks = {m: np.repeat(getattr(inputs, f"{m}_mask"), n, axis=0) for m in MODALITIES}
    for k, m in enumerate(MODALITIES):
        arrays[m][k::n] = 0.0
        masks[m][k::n] = False
    return ModelInputs(**arrays, **{f"{m}_mask": masks[m] for m in MODALITIES})


class SentimentDecoder:
    """Turns raw outputs (num_labels·num_classes) into a score, probabilities and a label."""

    def __init__(self, task: TaskInfo, temperature: float = 1.0) -> None:
        self.task = task
        self.temperature = temperature
        self.classification = task.task == "classification"
        if self.classification:
            names = task.label_names
            n_groups, n_cls = task.num_labels, task.num_classes
            if n_groups == 1:
                self.names = (
                    list(names)
                    if names and len(names) == n_cls
                    else _DEFAULT_NAMES.get(n_cls, [f"class {k}" for k in range(n_cls)])
                )
            else:
                self.names = (
                    list(names)
                    if names and len(names) == n_groups
                    else [f"label {k}" for k in range(n_groups)]
                )
        else:
            self.names = []
        self.ordered = self.classification and task.num_labels == 1 and task.label_kind == "msa"

    @property
    def score_range(self) -> tuple[float, float]:
        if not self.classification:
            if self.task.label_kind == "msa":
                return (-3.0, 3.0)
            if self.task.label_kind == "mda":
                return (0.0, 27.0)
            return (-1.0, 1.0)
        return (-1.0, 1.0) if self.ordered else (0.0, 1.0)

    def scores(self, raw: np.ndarray) -> np.ndarray:
        """(B,) scores of raw outputs (B, num_labels·num_classes)."""
        return np.array([self.decode(r)[0] for r in raw], dtype=np.float64)

    def decode(self, raw: np.ndarray) -> tuple[float, float | None, dict[str, float] | None, str | None]:
        """(score, value, probs, label) of one raw output row."""
        r = np.asarray(raw, dtype=np.float64).reshape(-1)
        if not self.classification:
            v = float(r[0])
            return v, v, None, None
        logits = r.reshape(self.task.num_labels, self.task.num_classes) / self.temperature
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        if self.task.num_labels == 1:
            probs = {n: float(x) for n, x in zip(self.names, p[0], strict=True)}
            top = int(np.argmax(p[0]))
            if self.ordered:
                levels = np.linspace(-1.0, 1.0, p.shape[1])
                score = float((p[0] * levels).sum())
            else:
                score = float(p[0, top])
            return score, None, probs, self.names[top]
        present = p[:, -1]
        probs = {n: float(x) for n, x in zip(self.names, present, strict=True)}
        top = int(np.argmax(present))
        return float(present[top]), None, probs, self.names[top]


class InferenceEngine:
    """Scores windows with a backend (see module docstring). Used by one thread (the window loop)."""

    def __init__(
        self,
        backend: InferenceBackend,
        task: TaskInfo,
        *,
        contributions: bool = True,
        ema_tau_s: float = 3.0,
        temperature: float = 1.0,
        interval: tuple[float, float] | None = None,
        arousal_interval: float | None = None,
        interval_by_presence: dict[str, float] | None = None,
        arousal_interval_by_presence: dict[str, float] | None = None,
        window_transform: WindowTransform | None = None,
        window_recorder: WindowRecorder | None = None,
        feature_set: str | None = None,
    ) -> None:
        self.backend = backend
        # the live feature-set version the model was trained on ('live-v1' … 'live-v3'); the pipeline computes it
        self.feature_set = feature_set
        self.decoder = SentimentDecoder(task, temperature)
        self.interval = interval if task.task == "regression" else None
        self.has_arousal = task.task == "regression" and task.arousal
        self.arousal_interval = arousal_interval if self.has_arousal else None
        # per presence pattern (model.featureset.presence_key), used only beside a pooled interval
        self.interval_by_presence = dict(interval_by_presence or {}) if self.interval is not None else {}
        self.arousal_by_presence = dict(arousal_interval_by_presence or {}) if self.arousal_interval is not None else {}
        self.window_transform = window_transform
        self.window_recorder = window_recorder
        self.contributions = contributions
        self.ema_tau_s = ema_tau_s
        self._trend: float | None = None
        self._trend_t: float | None = None
        self.calls = 0

    def reset(self) -> None:
        self._trend = self._trend_t = None

    def model_features(self, window: Window) -> dict[str, np.ndarray]:
        """The window's features as the model sees them (after ``window_transform``, if any)."""
        if self.window_transform is None:
            return window.features
        return self.window_transform(window.features, window.masks)

    def masked_inputs(self, window: Window) -> ModelInputs:
        """Batch of 3: the window with vision, then audio, then text masked out (mask False, values 0)."""
        return masked_variants(ModelInputs.single(self.model_features(window), window.masks))

    def _run(self, inputs: ModelInputs) -> np.ndarray:
        raw = np.asarray(self.backend.run(inputs), dtype=np.float64)
        self.calls += 1
        if raw.ndim != 2 or raw.shape[0] != inputs.batch or not np.isfinite(raw).all():
            raise ValueError(f"backend returned {raw.shape} outputs (non-finite or wrong batch)")
        return raw

    def predict(self, window: Window) -> Prediction:
        """Score the window (batch 1) and move the trend; contributions are left empty."""
        features = self.model_features(window)
        if self.window_recorder is not None:
            self.window_recorder(features, window.masks)
        raw = self._run(ModelInputs.single(features, window.masks))
        score, value, probs, label = self.decoder.decode(raw[0])
        trend = self._smooth(score, window.t_end)
        half, level = self.interval if self.interval is not None else (None, None)
        key = presence_key(window.present)
        half = self.interval_by_presence.get(key, half)
        a_half = self.arousal_by_presence.get(key, self.arousal_interval)
        return Prediction(
            window=window.index, t_end=window.t_end, score=score, trend=trend, value=value, probs=probs,
            label=label, contributions={}, raw=tuple(float(x) for x in raw[0]), interval=half,
            interval_level=level, calibrated=self.decoder.classification and self.decoder.temperature != 1.0,
            arousal=float(raw[0, 1]) if self.has_arousal and raw.shape[1] > 1 else None,
            arousal_interval=a_half,
        )  # fmt: skip

    def attribute(self, window: Window, prediction: Prediction) -> Prediction:
        """``prediction`` with its masked-modality deltas (one backend call of batch 3)."""
        present = window.present
        contrib: dict[str, float | None] = dict.fromkeys(MODALITIES)
        if any(present.values()):
            others = self.decoder.scores(self._run(self.masked_inputs(window)))
            for k, m in enumerate(MODALITIES):
                contrib[m] = float(prediction.score - others[k]) if present[m] else None
        return dataclasses.replace(prediction, contributions=contrib)

    def score(self, window: Window) -> Prediction:
        """``predict`` then (when enabled) ``attribute``."""
        pred = self.predict(window)
        return self.attribute(window, pred) if self.contributions else pred

    def _smooth(self, score: float, t: float) -> float:
        if self._trend is None or self._trend_t is None:
            self._trend, self._trend_t = score, t
            return score
        dt = max(0.0, t - self._trend_t)
        alpha = 1.0 - math.exp(-dt / self.ema_tau_s)
        self._trend += alpha * (score - self._trend)
        self._trend_t = t
        return self._trend
