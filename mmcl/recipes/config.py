"""Configuration of the default-model recipe (``mmcl train-default``; defaults in configs/recipes/default_model.yaml).

Every choice that shapes the training set is a field here, so the checkpoint's stored config says how it
was made: the label mappings of each source (valence −3…+3, arousal −1…+1), the person groups held out
for the final test, the cross-validation protocol, the TTS voices, the synthetic face motion, how
modalities are paired and the candidates compared by cross-validation.
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


def _frac(where: str, value: float) -> None:
    if not 0 < value < 1:
        raise ConfigError(f"{where} must be in (0, 1), got {value}")


@dataclass
class ProtocolConfig:
    """Person-grouped selection: k folds over the development groups; a final test group scored once."""

    folds: int = 4  # cross-validation folds (groups: documents, actors, subjects, clips)
    seeds: list[int] = field(default_factory=lambda: [0])  # seeds of every candidate on every fold
    # the candidates compared (ModelConfig / TrainConfig fields over the recipe's model and train sections)
    candidates: list[dict[str, Any]] = field(
        default_factory=lambda: [{"csd": "paper"}, {"csd": "reference"}, {"ablation": "no_csd"}]
    )

    def __post_init__(self) -> None:
        if not 2 <= self.folds <= 10:
            raise ConfigError("protocol.folds must be in 2..10")
        if not self.seeds:
            raise ConfigError("protocol.seeds must list at least one seed")
        if not self.candidates or not all(isinstance(c, dict) for c in self.candidates):
            raise ConfigError("protocol.candidates must list at least one mapping of model/train settings")


@dataclass
class TextSourceConfig:
    """Rated sentences (text/hutto_sentences.tsv): all of them as clean text, a subset spoken and transcribed."""

    rating_scale: float = 0.75  # valence = rating × 0.75 (−4..+4 → −3..+3; linear, sign kept)
    test_frac: float = 0.15  # documents held out for the final test (seeded)
    # clean-text windows: every sentence, words timed at a natural reading pace (no audio)
    clean_min_words: int = 2
    # at most this many clean-text sentences per split (evenly spaced; 0 = all): the e5 phrase embeddings of
    # every word cost ≈ 25 ms each on one core, ≈ 2 CPU-hours for all 23.7k sentences
    clean_max_dev: int = 0
    clean_max_test: int = 0
    clean_stride: int = 1  # then every n-th of those (halves the cost, keeps the sentences already cached)
    clean_stride_test: int = 0  # the same for the final-test sentences (0: clean_stride)
    words_per_s: float = 2.6  # mean pace of the synthetic timing (seeded tempo ±20% per sentence)
    # spoken windows: eSpeak NG + the live faster-whisper (greedy), stratified by corpus and sign
    n_tts: int = 2000
    tts_min_words: int = 3
    tts_max_words: int = 24
    voices: list[str] = field(
        default_factory=lambda: ["en-us", "en-us+m3", "en-us+f2", "en-gb", "en-gb-x-rp+m5", "en-us+f4"]
    )
    rate_min: int = 150
    rate_max: int = 190
    pitch_min: int = 35
    pitch_max: int = 65
    asr_beam_size: int = 1  # the live streaming ASR decodes greedily (AsrConfig.beam_size = 1)

    def __post_init__(self) -> None:
        if self.clean_max_dev < 0 or self.clean_max_test < 0 or self.clean_stride < 1 or self.clean_stride_test < 0:
            raise ConfigError(
                "text.clean_max_dev and text.clean_max_test must be >= 0 (0 = all sentences), text.clean_stride "
                ">= 1 and text.clean_stride_test >= 0 (0 = clean_stride)"
            )
        if self.n_tts < 0 or not 1 <= self.tts_min_words <= self.tts_max_words or self.clean_min_words < 1:
            raise ConfigError("text.n_tts must be >= 0 and 1 <= text.tts_min_words <= text.tts_max_words")
        if not 0 < self.rating_scale <= 1:
            raise ConfigError("text.rating_scale must be in (0, 1] (0.75 maps −4..+4 onto −3..+3)")
        if not 1.0 <= self.words_per_s <= 5.0:
            raise ConfigError("text.words_per_s must be in 1..5")
        if not self.voices:
            raise ConfigError("text.voices must name at least one eSpeak NG voice (e.g. en-us)")
        if not (80 <= self.rate_min <= self.rate_max <= 450 and 0 <= self.pitch_min <= self.pitch_max <= 99):
            raise ConfigError("text.rate_* must be in 80..450 wpm and text.pitch_* in 0..99, min <= max")
        if self.asr_beam_size < 1:
            raise ConfigError("text.asr_beam_size must be >= 1")
        _frac("text.test_frac", self.test_frac)


def _default_valence() -> dict[str, float]:
    return {"neutral": 0.0, "calm": 1.0, "happy": 2.0, "surprised": 1.0,
            "sad": -2.0, "angry": -2.0, "fearful": -1.5, "disgust": -2.0}  # fmt: skip


def _default_arousal() -> dict[str, float]:
    # positions on Russell's circumplex (−1 calm … +1 excited); strong intensity scales them by 1.25
    return {"neutral": 0.0, "calm": -0.5, "happy": 0.5, "surprised": 0.7,
            "sad": -0.4, "angry": 0.8, "fearful": 0.6, "disgust": 0.3}  # fmt: skip


@dataclass
class VoiceSourceConfig:
    """RAVDESS acted speech (speech/ravdess16k), grouped by actor; emotion → valence and arousal."""

    valence: dict[str, float] = field(default_factory=_default_valence)
    arousal: dict[str, float] = field(default_factory=_default_arousal)
    strong_arousal_gain: float = 1.25
    test_actors: list[int] = field(default_factory=lambda: [5, 6, 15, 16])  # 2 male (odd), 2 female (even)
    transcribe_repetitions: list[int] = field(default_factory=lambda: [1])  # the others: text masked
    asr_beam_size: int = 1
    # pyAudioAnalysis speechEmotion clips (ratings −1..+1): valence × scale, arousal as rated
    pyaa_valence_scale: float = 2.5
    pyaa_test_clips: int = 10

    def __post_init__(self) -> None:
        if not self.test_actors:
            raise ConfigError("voice.test_actors must name the RAVDESS actors held out for the final test")
        for name, v in self.valence.items():
            if not -3.0 <= float(v) <= 3.0:
                raise ConfigError(f"voice.valence.{name} = {v} is outside −3..+3")
        for name, v in self.arousal.items():
            if not -1.0 <= float(v) <= 1.0:
                raise ConfigError(f"voice.arousal.{name} = {v} is outside −1..+1")
        if set(self.valence) != set(self.arousal):
            raise ConfigError("voice.valence and voice.arousal must map the same emotions")


@dataclass
class FaceSourceConfig:
    """London set still portraits (faces_expr/), grouped by subject; a window of gently moving frames."""

    smiling_valence: float = 1.5
    neutral_valence: float = 0.0
    smiling_arousal: float = 0.4
    neutral_arousal: float = 0.0
    test_frac: float = 0.2  # subjects held out for the final test (seeded)
    variants: int = 3  # windows per image, each with its own synthetic head motion
    fps: float = 10.0
    shift_px: float = 4.0  # random-walk head motion: translation step (px), rotation (deg), scale
    rotate_deg: float = 1.0
    scale: float = 0.01
    brightness: float = 0.03  # per-frame gain jitter (±)

    def __post_init__(self) -> None:
        _frac("face.test_frac", self.test_frac)
        if self.variants < 1 or not 1 <= self.fps <= 60:
            raise ConfigError("face.variants must be >= 1 and face.fps in 1..60")


@dataclass
class ComposeConfig:
    """How windows are cut and modalities paired into training samples."""

    window_s: float = 5.0  # the live monitor's window (L = 50 at 10 Hz)
    max_tail_s: float = 1.0  # a short clip ends 0..max_tail_s before the window's end (live: just spoken)
    voice_copies: int = 2  # speech-only windows per RAVDESS clip (different offsets)
    voice_face_copies: int = 1
    tts_copies: int = 1  # speech windows per spoken rated sentence (T; different offsets)
    text_face_copies: int = 1
    face_only_copies: int = 1  # windows per face variant with audio and text masked (a silent person)
    smile_min_label: float = 1.0  # a smiling face is paired only with speech labelled >= this
    smile_prob: float = 0.7  # ... and then with this probability (else a neutral face)
    balance_voice: bool = True  # repeat positive RAVDESS windows so positive and negative clips weigh the same
    # speaker sessions: a voice window is normalised after 0..max priming recordings of the same speaker
    max_priming_clips: int = 12
    # talking-face invariance: mouth-movement blendshapes of face windows replaced by real speech motion
    talking_prob: float = 0.5

    def __post_init__(self) -> None:
        if not 0.5 <= self.window_s <= 30 or not 0 <= self.max_tail_s < self.window_s:
            raise ConfigError("compose.window_s must be in 0.5..30 s and 0 <= compose.max_tail_s < window_s")
        counts = (self.voice_copies, self.voice_face_copies, self.text_face_copies, self.face_only_copies,
                  self.max_priming_clips, self.tts_copies - 1)  # fmt: skip
        if min(counts) < 0 or not 0 <= self.smile_prob <= 1 or not 0 <= self.talking_prob <= 1:
            raise ConfigError("compose counts must be >= 0 (tts_copies >= 1) and compose.*_prob in [0, 1]")


@dataclass
class RecipeConfig:
    data_root: str = "../shared/data"
    cache_dir: str = str(DEFAULT_CACHE)
    seed: int = 0
    limit: int = 0  # > 0: at most this many items per source and group side (CI smoke runs)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    text: TextSourceConfig = field(default_factory=TextSourceConfig)
    voice: VoiceSourceConfig = field(default_factory=VoiceSourceConfig)
    face: FaceSourceConfig = field(default_factory=FaceSourceConfig)
    compose: ComposeConfig = field(default_factory=ComposeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    def __post_init__(self) -> None:
        if self.limit < 0:
            raise ConfigError("limit must be >= 0 (0 = all data)")

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
