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

``name:precision`` is accepted as shorthand, e.g. ``compile:bf16`` or ``tensorrt:int8``. ``BACKENDS`` is the
one list of names: the CLI help (``backend_choices``), config validation (``parse_backend``), ``auto``'s
CPU candidates and ``mmcl bench --backend all`` read their entries; adding a backend is its module plus one
entry. Heavy
libraries (onnxruntime, torch_tensorrt, CUDA) are imported only when their backend is created.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class BackendEntry:
    """One registry entry: everything the CLI help, config validation, ``auto`` and ``mmcl bench`` need
    to know about a backend without importing it (adding a backend = its module + one entry here)."""

    factory: Callable[..., InferenceBackend]
    precisions: tuple[str, ...] = ()  # accepted as ``name:precision`` (the backend's own check stays too)
    auto_cpu: bool = False  # a CPU candidate ``auto`` measures
    bench: tuple[str, ...] = ()  # specs ``mmcl bench --backend all`` times on CPU (``:bf16`` only with native BF16)
    bench_gpu: tuple[str, ...] = ()  # specs it adds when TensorRT is usable


BACKENDS: dict[str, BackendEntry] = {
    "eager": BackendEntry(EagerBackend, ("fp32", "bf16", "fp16"), auto_cpu=True, bench=("eager", "eager:bf16")),
    "compile": BackendEntry(_compile, ("fp32", "bf16", "fp16"), bench=("compile", "compile:bf16")),
    "onnx": BackendEntry(_onnx, ("fp32",), auto_cpu=True, bench=("onnx",)),
    "onnx-int8": BackendEntry(_onnx_int8, ("int8",)),
    "tensorrt": BackendEntry(_tensorrt, ("fp32", "fp16", "int8"), bench_gpu=("tensorrt:fp16", "tensorrt:int8")),
    "auto": BackendEntry(_auto),
}


def backend_names() -> tuple[str, ...]:
    """The registry's names, ``auto`` first (the default), then in registry order."""
    return ("auto", *(n for n in BACKENDS if n != "auto")) if "auto" in BACKENDS else tuple(BACKENDS)


def backend_choices() -> str:
    """The ``--backend`` help text: ``auto|eager|…[:precision]``, from the registry."""
    return "|".join(backend_names()) + "[:precision]"


def auto_candidates() -> tuple[str, ...]:
    """The CPU backends ``auto`` measures (registry entries with ``auto_cpu``)."""
    return tuple(n for n, e in BACKENDS.items() if e.auto_cpu)


def bench_specs(gpu: bool = False) -> tuple[str, ...]:
    """The specs ``mmcl bench --backend all`` may time: the CPU ones, plus the GPU ones with ``gpu``."""
    return tuple(s for e in BACKENDS.values() for s in (*e.bench, *(e.bench_gpu if gpu else ())))


def parse_backend(spec: str) -> tuple[str, dict[str, object]]:
    """``"compile:bf16"`` → ``("compile", {"precision": "bf16"})``; an unknown name, or a precision the
    backend does not support, is a ConfigError."""
    name, sep, precision = spec.strip().partition(":")
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {', '.join(backend_names())}")
    allowed = BACKENDS[name].precisions
    if sep and precision not in allowed:
        supports = f"precision {' | '.join(allowed)}" if allowed else "no :precision"
        raise ConfigError(f"backend {name!r} supports {supports}, not {precision!r} (in {spec!r})")
    return name, ({"precision": precision} if precision else {})


def create_backend(name: str, loaded: LoadedCheckpoint, **options: object) -> InferenceBackend:
    base, extra = parse_backend(name)
    return BACKENDS[base].factory(loaded, **{**extra, **options})


__all__ = [
    "BACKENDS", "BackendEntry", "InferenceBackend", "ModelInputs", "auto_candidates", "backend_choices",
    "backend_names", "bench_specs", "create_backend", "parse_backend",
]  # fmt: skip
