"""Numeric precision of a backend, its parity tolerance, and the low-precision model transform.

Low precision here means **the matrix products** (every ``nn.Linear``: projections, attention
projections, feed-forwards, head) run in BF16/FP16 with weights stored in that type, while everything
else stays FP32: the residual stream, LayerNorm, softmax/attention, the parameter-free CSD (cosine
similarities, masked minimum) and pooling. That is what autocast would do, written into the module so
that it survives ``torch.export``/ONNX/TensorRT (explicit typing) and keeps LayerNorm in FP32 as the
TensorRT notes require. INT8 is not a transform here: it needs calibration (``calibration/``, NVIDIA
ModelOpt for TensorRT).

Tolerance of a parity check: ``max |out − eager_fp32| <= atol + rtol · max |eager_fp32|`` over a case.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from model.errors import ConfigError

Precision = Literal["fp32", "bf16", "fp16", "int8"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16", "int8")
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float

    def bound(self, scale: float) -> float:
        return self.atol + self.rtol * scale

    def describe(self) -> str:
        return f"{self.atol:g} + {self.rtol:g}·max|ref|"


# FP32 paths differ only by summation order (~1e-7 relative); the low-precision ones by their mantissa
# (BF16: 8 bits, FP16: 11 bits) accumulated over ~10 matrix products; INT8 by its quantisation step.
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=1e-4, rtol=1e-4),
    "fp16": Tolerance(atol=2e-3, rtol=1e-2),
    "bf16": Tolerance(atol=5e-3, rtol=3e-2),
    "int8": Tolerance(atol=2e-2, rtol=1e-1),
}


def check_precision(precision: str, allowed: tuple[str, ...], backend: str) -> str:
    if precision not in allowed:
        raise ConfigError(f"backend {backend!r} supports precision {' | '.join(allowed)}, not {precision!r}")
    return precision


class LowPrecisionLinear(nn.Module):
    """``nn.Linear`` whose product runs in ``dtype``; input and output keep the caller's dtype (FP32)."""

    def __init__(self, linear: nn.Linear, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().to(dtype), requires_grad=False)  # (out, in)
        self.bias = (
            nn.Parameter(linear.bias.detach().to(dtype), requires_grad=False)
            if linear.bias is not None
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(self.weight.dtype), self.weight, self.bias).to(x.dtype)


def low_precision_copy(model: nn.Module, precision: str) -> nn.Module:
    """A copy of ``model`` (eval mode) with every ``nn.Linear`` computing in ``precision``.

    ``fp32`` returns the model itself (no copy). The original model is never modified.
    """
    if precision == "fp32":
        return model.eval()
    if precision not in ("bf16", "fp16"):
        raise ConfigError(f"no low-precision transform for {precision!r}; use fp32, bf16 or fp16")
    dtype = DTYPES[precision]
    out = copy.deepcopy(model).eval()
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, LowPrecisionLinear(child, dtype))
    return out


def cpu_supports_bf16() -> bool:
    """True when oneDNN has native BF16 kernels here (AVX-512 BF16 or AMX); emulated BF16 is slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without mkldnn
        return False
