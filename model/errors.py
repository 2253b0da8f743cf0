"""The project's error hierarchy.

Every error a user can cause (bad file, bad config, missing device, wrong checkpoint) is raised as one of
these, with a message that says what went wrong *and what to do about it*. The CLI prints the message
without a traceback and exits with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class MmclError(Exception):
    """Base class of all errors the project raises on purpose."""


class ConfigError(MmclError):
    """A configuration file or ``key=value`` override is invalid (unknown key, wrong type, bad value)."""


class DataFormatError(MmclError):
    """A dataset, recording or shard file is missing, corrupt or not in the expected layout."""


class CheckpointError(MmclError):
    """A checkpoint is missing, corrupt, or does not match the model/feature set it is used with."""


class DeviceError(MmclError):
    """A camera, microphone or stream cannot be opened or has stopped delivering data."""


class BackendUnavailable(MmclError):
    """An inference backend (TensorRT, CUDA, ONNX Runtime, ...) is not installed or cannot run here."""


class ExportError(MmclError):
    """An export failed, or its numerical parity check against eager PyTorch failed."""


class ModelAssetError(MmclError):
    """A model file that must ship inside a registry package (whisper, MediaPipe, MiniLM) is missing."""
