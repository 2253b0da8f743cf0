"""Inference backends. ``create_backend(name, loaded)`` builds one; more register in ``BACKENDS``."""

from __future__ import annotations

from collections.abc import Callable

from model.backends.base import InferenceBackend, ModelInputs
from model.backends.eager import EagerBackend
from model.checkpoint import LoadedCheckpoint
from model.errors import ConfigError

BACKENDS: dict[str, Callable[..., InferenceBackend]] = {"eager": EagerBackend}


def create_backend(name: str, loaded: LoadedCheckpoint, **options: object) -> InferenceBackend:
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](loaded, **options)


__all__ = ["BACKENDS", "InferenceBackend", "ModelInputs", "create_backend"]
