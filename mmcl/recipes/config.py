"""Configuration of the default-model recipe (``mmcl train-default``; defaults in configs/recipes/default_model.yaml).

Every choice that shapes the training set is a field here, so the checkpoint's stored config says how it
was made: the label mappings of each source, the splits, the TTS voices, the synthetic face motion, how
modalities are paired, the model sizes searched and the optimiser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.config import ModelConfig, TrainConfig
from model.configlib import deep_merge, from_dict, read_yaml
from model.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RECIPE_YAML = REPO / "configs" / "recipes" / "default_model.yaml"
DEFAULT_CACHE = Path("~/.cache/mmcl-live/recipe")


def _check_fracs(where: str, valid: float, test: float) -> None:
    if not (0 < valid < 1 and 0 < test < 1 and valid + test < 1):
        raise ConfigError(
            f"{where}.valid_frac and {where}.test_frac must be in (0, 1) and sum to less than 1"
        )


@dataclass
class TextSourceConfig:
    """Rated sentences (text/hutto_sentences.tsv) spoken by eSpeak NG and transcribed by faster-whisper."""

    n_sentences: int = 800  # sentences drawn (stratified by source and rating sign)
    min_words: int = 3
    max_words: int = 14  # ≈ 5 s of eSpeak speech at 170 wpm: the whole sentence fits the live window
    rating_scale: float = 0.75  # label = rating × 0.75 (−4..+4 → −3..+3; linear, sign kept)
    valid_frac: float = 0.15
    test_frac: float = 0.15
    # eSpeak NG voices (voice[+variant]); one is drawn per sentence with its rate (wpm) and pitch (0-99).
    voices: list[str] = field(
        default_factory=lambda: ["en-us", "en-us+m3", "en-us+f2", "en-gb", "en-gb-x-rp+m5", "en-us+f4"]
    )
    rate_min: int = 150
    rate_max: int = 190
    pitch_min: int = 35
    pitch_max: int = 65
    asr_beam_size: int = 1  # the live streaming ASR decodes greedily (AsrConfig.beam_size = 1)

    def __post_init__(self) -> None:
        if self.n_sentences < 1 or not 1 <= self.min_words <= self.max_words:
            raise ConfigError("text.n_sentences must be >= 1 and 1 <= text.min_words <= text.max_words")
        if not 0 < self.rating_scale <= 1:
            raise ConfigError("text.rating_scale must be in (0, 1] (0.75 maps −4..+4 onto −3..+3)")
        if not self.voices:
            raise ConfigError("text.voices must name at least one eSpeak NG voice (e.g. en-us)")
        if not (80 <= self.rate_min <= self.rate_max <= 450 and 0 <= self.pitch_min <= self.pitch_max <= 99):
            raise ConfigError("text.rate_* must be in 80..450 wpm and text.pitch_* in 0..99, min <= max")
        if self.asr_beam_size < 1:
            raise ConfigError("text.asr_beam_size must be >= 1")
        _check_fracs("text", self.valid_frac, self.test_frac)


@dataclass
class VoiceSourceConfig:
    """RAVDESS acted speech (speech/ravdess16k), split by actor; emotion category → valence."""

    # Emotions absent from this mapping (by default: surprised, whose valence is ambiguous) are not used.
    valence: dict[str, float] = field(
        default_factory=lambda: {
            "neutral": 0.0, "calm": 1.0, "happy": 2.0,
            "sad": -2.0, "angry": -2.0, "fearful": -1.5, "disgust": -2.0,
        }
    )  # fmt: skip
    valid_actors: list[int] = field(default_factory=lambda: [3, 4, 17, 18])
    test_actors: list[int] = field(default_factory=lambda: [1, 2, 11, 12])  # 2 male (odd), 2 female (even)
    # Clips of these repetitions are transcribed (text present); the others have text masked.
    transcribe_repetitions: list[int] = field(default_factory=lambda: [1])
    asr_beam_size: int = 1

    def __post_init__(self) -> None:
        overlap = set(self.valid_actors) & set(self.test_actors)
        if overlap or not self.valid_actors or not self.test_actors:
            raise ConfigError(
                f"voice.valid_actors and voice.test_actors must be non-empty and disjoint ({overlap})"
            )
        for name, v in self.valence.items():
            if not -3.0 <= float(v) <= 3.0:
                raise ConfigError(f"voice.valence.{name} = {v} is outside −3..+3")


@dataclass
class FaceSourceConfig:
    """London set still portraits (faces_expr/), split by subject; a window of gently moving frames."""

    smiling_valence: float = 1.5
    neutral_valence: float = 0.0
    valid_frac: float = 0.15
    test_frac: float = 0.2
    variants_train: int = 3  # windows per training image, each with its own synthetic head motion
    variants_eval: int = 1
    fps: float = 10.0
    shift_px: float = 4.0  # random-walk head motion: translation step (px), rotation (deg), scale
    rotate_deg: float = 1.0
    scale: float = 0.01
    brightness: float = 0.03  # per-frame gain jitter (±)

    def __post_init__(self) -> None:
        _check_fracs("face", self.valid_frac, self.test_frac)
        if self.variants_train < 1 or self.variants_eval < 1 or not 1 <= self.fps <= 60:
            raise ConfigError("face.variants_* must be >= 1 and face.fps in 1..60")


@dataclass
class ComposeConfig:
    """How windows are cut and modalities paired into training samples."""

    window_s: float = 5.0  # the live monitor's window (L = 50 at 10 Hz)
    max_tail_s: float = 1.0  # a short clip ends 0..max_tail_s before the window's end (live: just spoken)
    text_copies: int = 1  # speech-only windows per sentence (vision masked)
    text_face_copies: int = 1  # windows per sentence paired with a face whose expression agrees
    voice_copies: int = 2  # speech-only windows per RAVDESS clip (different offsets)
    voice_face_copies: int = 1
    face_only_copies: int = 1  # windows per face variant with audio and text masked (a silent person)
    smile_min_label: float = 1.0  # a smiling face is paired only with speech labelled >= this
    smile_prob: float = 0.7  # ... and then with this probability (else a neutral face)
    # Training split only: repeat the V/VF windows of positive RAVDESS clips (calm, happy) so that positive
    # and negative clips weigh the same (4 of the 6 non-neutral emotions are negative).
    balance_voice: bool = True

    def __post_init__(self) -> None:
        if not 0.5 <= self.window_s <= 30 or not 0 <= self.max_tail_s < self.window_s:
            raise ConfigError("compose.window_s must be in 0.5..30 s and 0 <= compose.max_tail_s < window_s")
        counts = (self.text_copies, self.text_face_copies, self.voice_copies, self.voice_face_copies,
                  self.face_only_copies)  # fmt: skip
        if min(counts) < 0 or not 0 <= self.smile_prob <= 1:
            raise ConfigError("compose.*_copies must be >= 0 and compose.smile_prob in [0, 1]")


@dataclass
class RecipeConfig:
    data_root: str = "../shared/data"
    cache_dir: str = str(DEFAULT_CACHE)
    seed: int = 0
    limit: int = 0  # > 0: at most this many items per source and split (CI smoke runs)
    text: TextSourceConfig = field(default_factory=TextSourceConfig)
    voice: VoiceSourceConfig = field(default_factory=VoiceSourceConfig)
    face: FaceSourceConfig = field(default_factory=FaceSourceConfig)
    compose: ComposeConfig = field(default_factory=ComposeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # Model sizes tried (each a dict of ModelConfig fields over `model`); the best by validation MAE ships.
    candidates: list[dict[str, Any]] = field(default_factory=lambda: [{}])

    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ConfigError("limit must be >= 0 (0 = all data)")
        if not self.candidates:
            raise ConfigError("candidates must list at least one model size (e.g. [{}])")

    @property
    def data_path(self) -> Path:
        return Path(self.data_root).expanduser()

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir).expanduser()


def load_recipe_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> RecipeConfig:
    """configs/recipes/default_model.yaml (or ``path``) ← ``overrides`` (a nested dict) → RecipeConfig."""
    data = read_yaml(path or DEFAULT_RECIPE_YAML)
    if overrides:
        data = deep_merge(data, overrides)
    return from_dict(RecipeConfig, data, "recipe")
