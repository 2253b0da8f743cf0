"""Inference backends. ``create_backend(name, loaded, **options).run(ModelInputs) -> (B, out) float32``.

===========  ====================================================================================
``eager``    PyTorch eager (the reference). Options: ``device``, ``precision`` fp32 | bf16 | fp16.
``compile``  ``torch.compile`` (Inductor, frozen weights). Options: ``device``, ``precision``,
             ``dynamic``, ``mode``, ``warmup``.
``onnx``     ONNX Runtime CPU on a cached, parity-checked export (or ``path=``). Options: ``threads``,
             ``optimization``, ``opset``.
``tensorrt`` torch-tensorrt dynamo engine, FP16 / INT8, batch 1–64, cached on disk, CUDA graphs for
             batch 1. Options: see ``TensorRTBackend``. Needs torch-tensorrt and a CUDA GPU.
``auto``     TensorRT when usable, else the fastest exact CPU backend measured here (cached).
===========  ====================================================================================

``onnx-int8``: ONNX Runtime CPU on the INT8 (QDQ) file written by ``mmcl calibrate quantize`` (``path=``,
else the one recorded in the checkpoint). Options: ``path``, ``threads``, ``optimization``.

``name:precision`` is accepted as shorthand, e.g. ``compile:bf16`` or ``tensorrt:int8``. Heavy
libraries (onnxruntime, torch_tensorrt, CUDA) are imported only when their backend is created.
"""

from __future__ import annotations

from collections.abc import Callable

from model.backends.base import InferenceBackend, ModelInputs
from model.backends.eager import EagerBackend
from model.checkpoint import LoadedCheckpoint
from model.errors import BackendUnavailable, ConfigError


def _compile(loaded: LoadedCheckpoint, **options: object) -> InferenceBackend:
    from model.backends.compiled import CompileBackend

    return CompileBackend(loaded, **options)  # type: ignore[arg-type]


def _onnx(loaded: LoadedCheckpoint, **options: object) -> InferenceBackend:
    from model.backends.onnx_backend import OnnxBackend

    return OnnxBackend(loaded, **options)  # type: ignore[arg-type]


def _tensorrt(loaded: LoadedCheckpoint, **options: object) -> InferenceBackend:
    from model.backends.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(loaded, **options)  # type: ignore[arg-type]


def _onnx_int8(loaded: LoadedCheckpoint, **options: object) -> InferenceBackend:
    try:
        from model.backends.onnx_int8 import OnnxInt8Backend
    except ModuleNotFoundError as exc:
        raise BackendUnavailable(
            f"the onnx-int8 backend is not available in this installation ({exc}); quantise with "
            "`mmcl calibrate quantize` from a version that ships it, or use --backend onnx"
        ) from None
    return OnnxInt8Backend(loaded, **options)  # type: ignore[arg-type]


def _auto(loaded: LoadedCheckpoint, **options: object) -> InferenceBackend:
    from model.backends.auto import create_auto

    return create_auto(loaded, **options)  # type: ignore[arg-type]


BACKENDS: dict[str, Callable[..., InferenceBackend]] = {
    "eager": EagerBackend,
    "compile": _compile,
    "onnx": _onnx,
    "tensorrt": _tensorrt,
    "onnx-int8": _onnx_int8,
    "auto": _auto,
}


def parse_backend(spec: str) -> tuple[str, dict[str, object]]:
    """``"compile:bf16"`` → ``("compile", {"precision": "bf16"})``."""
    name, _, precision = spec.strip().partition(":")
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(sorted(BACKENDS))}")
    return name, ({"precision": precision} if precision else {})


def create_backend(name: str, loaded: LoadedCheckpoint, **options: object) -> InferenceBackend:
    base, extra = parse_backend(name)
    return BACKENDS[base](loaded, **{**extra, **options})


__all__ = ["BACKENDS", "InferenceBackend", "ModelInputs", "create_backend", "parse_backend"]
