"""Numerical parity of a backend or exported graph against eager FP32 PyTorch on the same inputs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from model.backends.base import ModelInputs
from model.backends.inputs import ParityCase
from model.backends.precision import TOLERANCES, Tolerance
from model.errors import ExportError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaseResult:
    name: str
    max_abs_err: float
    bound: float  # the tolerance for this case: atol + rtol · max|ref|
    ref_scale: float  # max |eager output|

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_abs_err)) and self.max_abs_err <= self.bound


@dataclass(frozen=True)
class ParityReport:
    what: str
    precision: str
    tolerance: Tolerance
    cases: tuple[CaseResult, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.cases)

    @property
    def max_abs_err(self) -> float:
        return max(c.max_abs_err for c in self.cases)

    def summary(self) -> str:
        worst = max(self.cases, key=lambda c: c.max_abs_err / max(c.bound, 1e-30))
        return (
            f"{self.what} ({self.precision}): max abs error {self.max_abs_err:.3g} "
            f"over {len(self.cases)} cases; "
            f"tolerance {self.tolerance.describe()} (worst case '{worst.name}': {worst.max_abs_err:.3g} <= "
            f"{worst.bound:.3g}: {'ok' if worst.ok else 'FAILED'})"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "what": self.what,
            "precision": self.precision,
            "tolerance": {"atol": self.tolerance.atol, "rtol": self.tolerance.rtol},
            "ok": self.ok,
            "max_abs_err": self.max_abs_err,
            "cases": [
                {
                    "name": c.name,
                    "max_abs_err": c.max_abs_err,
                    "bound": c.bound,
                    "ref_scale": c.ref_scale,
                    "ok": c.ok,
                }
                for c in self.cases
            ],
        }


@torch.inference_mode()
def eager_reference(model: nn.Module, inputs: ModelInputs) -> np.ndarray:
    """The FP32 eager output on the CPU: the reference every other path is compared with."""
    was_training = model.training
    model.eval()
    try:
        params = list(model.parameters())
        device = params[0].device if params else torch.device("cpu")
        return model(*inputs.tensors(device)).float().cpu().numpy()
    finally:
        model.train(was_training)


def compare(
    what: str,
    precision: str,
    reference: Callable[[ModelInputs], np.ndarray],
    candidate: Callable[[ModelInputs], np.ndarray],
    cases: Sequence[ParityCase],
    tolerance: Tolerance | None = None,
) -> ParityReport:
    """Run both on every case; never raises on a mismatch (see ``require``)."""
    tol = tolerance or TOLERANCES[precision]
    results = []
    for case in cases:
        ref = np.asarray(reference(case.inputs), dtype=np.float64)
        out = np.asarray(candidate(case.inputs), dtype=np.float64)
        if out.shape != ref.shape:
            raise ExportError(
                f"{what}: output shape {out.shape} differs from eager {ref.shape} on '{case.name}'"
            )
        scale = float(np.abs(ref).max()) if ref.size else 0.0
        err = float(np.abs(out - ref).max()) if ref.size else 0.0
        if not np.isfinite(out).all():
            err = float("inf")
        results.append(CaseResult(case.name, err, tol.bound(scale), scale))
    report = ParityReport(what, precision, tol, tuple(results))
    log.debug("%s", report.summary())
    return report


def require(report: ParityReport) -> ParityReport:
    """Raise ExportError unless every case is within tolerance."""
    if not report.ok:
        bad = "; ".join(f"'{c.name}': {c.max_abs_err:.3g} > {c.bound:.3g}" for c in report.cases if not c.ok)
        raise ExportError(
            f"parity check failed for {report.what} ({report.precision}, "
            f"tolerance {report.tolerance.describe()}): "
            f"{bad}. The exported graph does not compute what the checkpoint computes; do not deploy it. "
            "Try --precision fp32, another opset, or report the failing case."
        )
    return report
