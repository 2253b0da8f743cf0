"""FeatureConfig validation and its place in the app config."""

from __future__ import annotations

import pytest

from mmcl.app_config import load_app_config
from model.errors import ConfigError
from realtime.features.config import FeatureConfig


def test_the_default_window_is_the_one_the_assembler_and_the_backends_use() -> None:
    """features.window_s × grid_hz is L everywhere: the live assembler, the backends' live-like inputs and
    the window length a changed config gives."""
    from model.backends.inputs import LIVE_STEPS
    from realtime.pipeline.windows import WindowAssembler

    cfg = FeatureConfig()
    assert cfg.window_steps == WindowAssembler(cfg.window_s, cfg.grid_hz).n_steps == LIVE_STEPS
    short = FeatureConfig(window_s=3.0)
    assert short.window_steps == WindowAssembler(short.window_s, short.grid_hz).n_steps == 30


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("grid_hz", 20.0, "10 Hz grid"),
        ("window_s", 5.05, "whole number"),
        ("window_s", 0.1, "between"),
        ("face_min_detection_confidence", 1.5, r"\[0, 1\]"),
        ("audio_silence_dbfs", 3.0, "dBFS"),
        ("whisper_cpu_threads", 0, ">= 1"),
    ],
)
def test_bad_values_are_config_errors(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FeatureConfig(**{field: value})


def test_app_config_carries_features_with_overrides() -> None:
    cfg = load_app_config(overrides=["features.whisper_beam_size=1", "features.window_s=3"])
    assert cfg.features.whisper_beam_size == 1 and cfg.features.window_steps == 30
    with pytest.raises(ConfigError, match="whisper_beam_size"):
        load_app_config(overrides=["features.whisper_beam=1"])
