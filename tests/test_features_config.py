"""FeatureConfig validation and its place in the app config."""

from __future__ import annotations

import pytest

from mmcl.app_config import load_app_config
from model.errors import ConfigError
from realtime.features.config import FeatureConfig


def test_defaults_match_the_live_window() -> None:
    cfg = FeatureConfig()
    assert cfg.grid_hz == 10.0 and cfg.window_s == 5.0 and cfg.window_steps == 50


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
