"""Is TensorRT usable here? Cheap probes that import nothing heavy (no TensorRT, no CUDA context).

``find_spec`` and ``cuda_device_count`` are the lowest layer: tests monkeypatch them to fake a machine
with a GPU but without torch-tensorrt (or the reverse).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str  # what is missing (or what was found), in words a user can act on


def find_spec(name: str) -> object | None:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def cuda_device_count() -> int:
    try:
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except RuntimeError:  # a broken driver reads as "no GPU"
        return 0


def cuda_status() -> Availability:
    n = cuda_device_count()
    if n == 0:
        build = (
            "a CPU-only torch build"
            if torch.version.cuda is None
            else f"torch built for CUDA {torch.version.cuda}"
        )
        return Availability(False, f"no CUDA GPU is visible ({build})")
    return Availability(True, f"{n} CUDA GPU(s)")


def tensorrt_status() -> Availability:
    """Both torch-tensorrt and a CUDA GPU are needed; the reason names every missing piece."""
    missing = []
    if find_spec("torch_tensorrt") is None:
        missing.append("torch_tensorrt is not installed (pip install torch-tensorrt, matching your torch)")
    cuda = cuda_status()
    if not cuda.ok:
        missing.append(cuda.reason)
    if missing:
        return Availability(False, "; ".join(missing))
    return Availability(True, f"torch_tensorrt installed, {cuda.reason}")


def onnxruntime_status() -> Availability:
    if find_spec("onnxruntime") is None:
        return Availability(False, "onnxruntime is not installed (pip install onnxruntime)")
    if find_spec("onnx") is None or find_spec("onnxscript") is None:
        return Availability(
            False, "the ONNX exporter needs onnx and onnxscript (pip install onnx onnxscript)"
        )
    return Availability(True, "onnxruntime installed")


def modelopt_status() -> Availability:
    if find_spec("modelopt") is None:
        return Availability(False, "nvidia-modelopt is not installed (pip install nvidia-modelopt[torch])")
    return Availability(True, "nvidia-modelopt installed")
