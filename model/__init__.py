"""The MMCL network, datasets, metrics, training, inference backends and export.

This package knows nothing about devices, threads or screens (see DESIGN.md §10).
"""

from model.errors import (
    BackendUnavailable,
    CheckpointError,
    ConfigError,
    DataFormatError,
    DeviceError,
    MmclError,
)

__all__ = [
    "BackendUnavailable",
    "CheckpointError",
    "ConfigError",
    "DataFormatError",
    "DeviceError",
    "MmclError",
]
