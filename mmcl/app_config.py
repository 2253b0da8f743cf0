"""The one app config, composed of each component's config dataclass.

Load order: dataclass defaults ← YAML file(s) ← ``key=value`` overrides. Unknown keys are errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibration.config import CalibrationConfig
from model.config import DataConfig, ModelConfig, TrainConfig
from model.configlib import apply_overrides, deep_merge, from_dict, read_yaml, to_dict
from realtime.asr.config import AsrConfig
from realtime.features.config import FeatureConfig
from realtime.pipeline.config import MonitorConfig
from realtime.sources.factory import SourcesConfig


@dataclass
class AppConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def load_app_config(
    files: list[str | Path] | tuple[str | Path, ...] = (),
    overrides: list[str] | tuple[str, ...] = (),
    base: dict[str, Any] | None = None,
) -> AppConfig:
    """Merge ``base`` ← each YAML file ← overrides, then build the AppConfig strictly."""
    data: dict[str, Any] = dict(base or {})
    for f in files:
        data = deep_merge(data, read_yaml(f))
    apply_overrides(data, list(overrides))
    return from_dict(AppConfig, data)
