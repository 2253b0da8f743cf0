"""Per-user baseline: the statistics of a user's resting face and voice, and the shift applied to live
features so that this user's resting state lands on the training population's.

Recording (``mmcl calibrate baseline``) collects the face frames where a face was found and the voice
steps above the silence gate; ``baseline_from_samples`` stores per column of the live feature set the
mean, standard deviation and count (YAML, with the feature-set name and version).

The transform (``BaselineTransform``), applied to every window before inference, column j of modality m,
**at observed steps only** (mask True; masked steps stay as they are)::

    x'_j = x_j − (μ_user,j − μ_ref,j)

* μ_user,j — the user's resting mean from the baseline file;
* μ_ref,j — the training population's mean: the per-feature mean the checkpoint standardises with
  (``model.mean_<m>``, computed by the trainer over the observed steps of its training split). That mean
  is taken as the population's neutral operating point.
* Columns shifted: vision — the 52 blendshapes and the 3 head-pose angles (not ``face_present``, a flag);
  audio — every column except the three that are 0 by definition on unvoiced steps (``log_f0_hz``,
  ``jitter_frame``, ``shimmer_frame``): their training mean mixes voiced values with those zeros, so the
  voiced-only reference a fair shift needs is not in the checkpoint (their user statistics are still
  stored, over voiced steps only). Text is never shifted.
* Blendshape scores are clipped back to their range [0, 1] after the shift.

Shift only, no rescaling: a 20 s resting recording varies far less than expressive speech, so dividing
by its standard deviation would inflate every expression; the stds are stored for inspection only.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from model.errors import DataFormatError
from model.featureset import FeatureSet
from model.private_io import write_private_text

BASELINE_FORMAT = "mmcl-baseline/1"
VOICED_ONLY: tuple[str, ...] = ("log_f0_hz", "jitter_frame", "shimmer_frame")
NOT_SHIFTED: dict[str, tuple[str, ...]] = {"vision": ("face_present",), "audio": VOICED_ONLY}
SPEAKER_PREFIX = "spk_"  # live-v2 names its speaker-normalised voice columns spk_<v1 name>


def _base_name(column: str) -> str:
    """The column's live-v1 name (live-v2's speaker-normalised voice columns carry a ``spk_`` prefix)."""
    return column.removeprefix(SPEAKER_PREFIX)
CLIP_01_PREFIX = "bs_"
BASELINE_MODALITIES: tuple[str, str] = ("vision", "audio")
HINT = "record one with `mmcl calibrate baseline --out user.yaml`"


class BaselineRecordingError(DataFormatError):
    """A baseline recording does not contain what it must (no face, no voice)."""


@dataclass
class ModalityStats:
    columns: tuple[str, ...]
    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,)
    count: int  # samples (face frames / voice steps) the statistics come from

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "columns": {
                c: {"mean": float(m), "std": float(s)}
                for c, m, s in zip(self.columns, self.mean, self.std, strict=True)
            },
        }


@dataclass
class UserBaseline:
    feature_set: dict[str, str]  # name, version
    stats: dict[str, ModalityStats]  # "vision" and/or "audio"
    duration_s: float = 0.0
    created: str = ""
    source: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": BASELINE_FORMAT,
            "feature_set": dict(self.feature_set),
            "created": self.created,
            "duration_s": round(self.duration_s, 3),
            "source": dict(self.source),
            "transform": "x' = x - (user_mean - checkpoint_training_mean), observed steps (calibration/baseline.py)",
            **{m: s.to_dict() for m, s in self.stats.items()},
        }


def _column_stats(x: np.ndarray, columns: tuple[str, ...], voiced_only: tuple[str, ...] = ()) -> ModalityStats:
    x = np.asarray(x, dtype=np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    voiced_only = tuple(c for c in columns if _base_name(c) in voiced_only)
    for j, c in enumerate(columns):
        if c in voiced_only:
            v = x[:, j][x[:, j] != 0]
            mean[j], std[j] = (v.mean(), v.std()) if len(v) else (0.0, 0.0)
    return ModalityStats(columns, mean, std, len(x))


def baseline_from_samples(
    feature_set: FeatureSet,
    vision: np.ndarray | None,
    audio: np.ndarray | None,
    *,
    min_face_frames: int = 20,
    min_voice_steps: int = 20,
    duration_s: float = 0.0,
    source: dict[str, Any] | None = None,
    frames_seen: int | None = None,
    steps_seen: int | None = None,
) -> UserBaseline:
    """Statistics of the valid face frames (F, D_v) and voice steps (S, D_a); None = modality not recorded.
    Raises BaselineRecordingError when a recorded modality has too few valid samples."""
    stats: dict[str, ModalityStats] = {}
    if vision is not None:
        n = len(vision)
        if n < min_face_frames:
            seen = f" in {frames_seen} camera frames" if frames_seen is not None else ""
            raise BaselineRecordingError(
                f"no usable face in the baseline recording: {n} frame(s) with a face{seen}, at least "
                f"{min_face_frames} needed. Sit facing the camera, with your face lit and fully in the picture, "
                "and record again (or pass --camera none to record the voice only)"
            )
        stats["vision"] = _column_stats(vision, feature_set.vision)
    if audio is not None:
        n = len(audio)
        if n < min_voice_steps:
            seen = f" of {steps_seen} audio steps" if steps_seen is not None else ""
            raise BaselineRecordingError(
                f"no usable voice in the baseline recording: {n} step(s){seen} above the silence gate, at "
                f"least {min_voice_steps} needed. Speak a few neutral sentences during the recording, check the "
                "microphone (--mic) and its level, or pass --mic none to record the face only"
            )
        stats["audio"] = _column_stats(audio, feature_set.audio, VOICED_ONLY)
    if not stats:
        raise BaselineRecordingError("a baseline needs the camera, the microphone or both")
    return UserBaseline(
        {"name": feature_set.name, "version": feature_set.version},
        stats,
        duration_s,
        datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        dict(source or {}),
    )


def save_baseline(path: str | Path, baseline: UserBaseline) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    write_private_text(tmp, yaml.safe_dump(baseline.to_dict(), sort_keys=False, width=120))  # personal data: 0600
    tmp.replace(p)
    return p


def load_baseline(path: str | Path, expected: FeatureSet) -> UserBaseline:
    """Read and check a baseline file against the feature set the model uses."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"baseline file {p} does not exist; {HINT}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataFormatError(f"{p} is not a readable YAML baseline ({type(exc).__name__}); {HINT}") from None
    if not isinstance(raw, dict) or raw.get("format") != BASELINE_FORMAT:
        raise DataFormatError(f"{p} is not an mmcl baseline (no '{BASELINE_FORMAT}' format tag); {HINT}")
    fs = raw.get("feature_set") or {}
    ident = f"{fs.get('name')}@{fs.get('version')}" if isinstance(fs, dict) else "?"
    if ident != expected.ident:
        raise DataFormatError(
            f"{p} was recorded with feature set {ident}, but the model uses {expected.ident}; {HINT} again"
        )
    stats: dict[str, ModalityStats] = {}
    for m in BASELINE_MODALITIES:
        if m not in raw:
            continue
        block = raw[m]
        cols = getattr(expected, m)
        table = block.get("columns") if isinstance(block, dict) else None
        if not isinstance(table, dict) or set(table) != set(cols):
            raise DataFormatError(
                f"{p}: the '{m}' section does not list exactly the {len(cols)} {m} columns of "
                f"{expected.ident}; {HINT} again"
            )
        try:
            mean = np.array([float(table[c]["mean"]) for c in cols])
            std = np.array([float(table[c]["std"]) for c in cols])
            count = int(block.get("count", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(f"{p}: malformed '{m}' statistics ({exc}); {HINT} again") from None
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise DataFormatError(f"{p}: '{m}' statistics hold non-finite values; {HINT} again")
        stats[m] = ModalityStats(tuple(cols), mean, std, count)
    if not stats:
        raise DataFormatError(f"{p} holds neither vision nor audio statistics; {HINT}")
    duration = raw.get("duration_s", 0.0)
    return UserBaseline(
        {"name": expected.name, "version": expected.version},
        stats,
        float(duration) if isinstance(duration, (int, float)) and math.isfinite(duration) else 0.0,
        str(raw.get("created", "")),
        raw.get("source") if isinstance(raw.get("source"), dict) else {},
    )


def reference_means(model: Any) -> dict[str, np.ndarray]:
    """The training population's per-feature means stored in an MMCL model (``mean_<m>`` buffers)."""
    out = {}
    for m in BASELINE_MODALITIES:
        buf = getattr(model, f"mean_{m}", None)
        if buf is None:
            raise DataFormatError(f"the model has no training mean for {m}; a baseline cannot be applied to it")
        out[m] = buf.detach().float().cpu().numpy().astype(np.float32)
    return out


class BaselineTransform:
    """``transform(features, masks) -> features``: the shift of the module docstring (a new dict; the input
    arrays are not modified). Callable from the monitor's window loop (numpy only, microseconds)."""

    def __init__(self, baseline: UserBaseline, reference: dict[str, np.ndarray], feature_set: FeatureSet) -> None:
        self.baseline = baseline
        self.offsets: dict[str, np.ndarray] = {}
        self.clip: dict[str, np.ndarray] = {}
        for m, st in baseline.stats.items():
            ref = np.asarray(reference[m], dtype=np.float64).reshape(-1)
            cols = getattr(feature_set, m)
            if ref.shape != (len(cols),):
                raise DataFormatError(f"reference means for {m} have {ref.shape[0]} values, expected {len(cols)}")
            shift = st.mean - ref
            keep = np.array([_base_name(c) not in NOT_SHIFTED.get(m, ()) for c in cols])
            self.offsets[m] = np.where(keep, shift, 0.0).astype(np.float32)
            self.clip[m] = np.array([c.startswith(CLIP_01_PREFIX) for c in cols])

    def __call__(self, features: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = dict(features)
        for m, off in self.offsets.items():
            x = np.array(features[m], dtype=np.float32, copy=True)  # (L, D) or (B, L, D)
            rows = np.asarray(masks[m], dtype=bool)
            y = x[rows] - off
            clip = self.clip[m]
            if clip.any():
                y[..., clip] = np.clip(y[..., clip], 0.0, 1.0)
            x[rows] = y
            out[m] = x
        return out

    def describe(self) -> str:
        parts = [f"{m} mean |shift| {float(np.abs(o).mean()):.3g}" for m, o in self.offsets.items()]
        return "baseline: " + ", ".join(parts)
