"""``mmcl export``: write a checkpoint as an ONNX file, a ``torch.export`` program or a TensorRT engine,
and prove it computes what the checkpoint computes.

Every export is reloaded from disk and run on the live-window parity cases (L = 50 by default, batch 1
and batch 4, masked steps, NaN in masked steps, a fully missing modality; plus a second window length
for the formats whose time axis is dynamic) against eager FP32 PyTorch. The report carries the max
abs error and the tolerance; a failure raises ExportError (``mmcl`` exits with status 2) and the files
written are removed, so a graph that failed its check is never left behind for deployment.

=====================  ==========================================================================
``onnx``               ``FILE`` + ``FILE.data`` (weights); opset 20; dynamic batch and L; FP32.
``exported-program``   ``torch.export.save`` archive (``.pt2``); dynamic batch and L; FP32 or the
                       BF16/FP16 low-precision copy; load with ``torch.export.load(FILE).module()``.
``tensorrt``           torch-tensorrt engine saved as an exported program; FP16 (default) / INT8 /
                       FP32; batch 1–64, fixed L. Needs torch-tensorrt and a CUDA GPU.
=====================  ==========================================================================
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from model.backends.base import OUTPUT_NAME
from model.backends.graphs import DEFAULT_OPSET, export_onnx, export_program
from model.backends.inputs import LIVE_STEPS, parity_cases
from model.backends.parity import ParityReport, compare, eager_reference, require
from model.backends.precision import low_precision_copy
from model.checkpoint import LoadedCheckpoint
from model.errors import ConfigError, ExportError

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("onnx", "exported-program", "tensorrt")
FORMAT_PRECISIONS: dict[str, tuple[str, ...]] = {
    "onnx": ("fp32",),
    "exported-program": ("fp32", "bf16", "fp16"),
    "tensorrt": ("fp16", "int8", "fp32"),
}


@dataclass
class ExportReport:
    format: str
    precision: str
    files: list[Path]
    parity: ParityReport
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "format": self.format,
            "precision": self.precision,
            "files": [str(f) for f in self.files],
            "parity": self.parity.to_dict(),
            "seconds": self.seconds,
            "notes": self.notes,
        }


def export_checkpoint(
    loaded: LoadedCheckpoint,
    fmt: str,
    out: str | Path,
    *,
    precision: str | None = None,
    steps: int = LIVE_STEPS,
    opset: int = DEFAULT_OPSET,
) -> ExportReport:
    """Export, reload, parity-check. Raises ExportError (and removes the output) when parity fails."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    precision = precision or FORMAT_PRECISIONS[fmt][0]
    if precision not in FORMAT_PRECISIONS[fmt]:
        raise ConfigError(
            f"format {fmt} supports precision {' | '.join(FORMAT_PRECISIONS[fmt])}, not {precision!r}"
        )
    out = Path(out)
    model = loaded.model.eval()
    start = time.perf_counter()
    files: list[Path] = []
    try:
        if fmt == "onnx":
            files, report = _onnx(loaded, out, steps, opset)
        elif fmt == "exported-program":
            files, report = _program(loaded, out, precision, steps)
        else:
            files, report = _tensorrt(loaded, out, precision, steps)
        require(report)
    except ExportError:
        for f in files or [out, out.with_name(out.name + ".data")]:
            Path(f).unlink(missing_ok=True)
        raise
    model.eval()
    return ExportReport(fmt, precision, files, report, time.perf_counter() - start)


def _reference(loaded: LoadedCheckpoint):
    return lambda x: eager_reference(loaded.model, x)


def _onnx(loaded: LoadedCheckpoint, out: Path, steps: int, opset: int) -> tuple[list[Path], ParityReport]:
    from model.backends.onnx_backend import make_session

    files = export_onnx(loaded.model, out, opset=opset, steps=steps)
    session = make_session(out)
    report = compare(
        f"ONNX {out.name}",
        "fp32",
        _reference(loaded),
        lambda x: session.run([OUTPUT_NAME], x.feeds())[0],
        parity_cases(loaded.model, steps),
    )
    return files, report


def _program(
    loaded: LoadedCheckpoint, out: Path, precision: str, steps: int
) -> tuple[list[Path], ParityReport]:
    module = low_precision_copy(loaded.model, precision)
    program = export_program(module, steps=steps)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(out))
    reloaded = torch.export.load(str(out)).module()

    def run(x):
        with torch.inference_mode():
            return reloaded(*x.tensors()).float().numpy()

    report = compare(
        f"exported program {out.name}", precision, _reference(loaded), run, parity_cases(loaded.model, steps)
    )
    return [out], report


def _tensorrt(
    loaded: LoadedCheckpoint, out: Path, precision: str, steps: int
) -> tuple[list[Path], ParityReport]:
    from model.backends.tensorrt_backend import TensorRTBackend

    # The first backend builds the engine, saves it to ``out`` and checks the built module; the second loads
    # the file back and checks again, so that what is on disk is what was verified.
    out.unlink(missing_ok=True)
    TensorRTBackend(loaded, precision=precision, steps=steps, engine_path=out, cuda_graphs=False)
    reloaded = TensorRTBackend(loaded, precision=precision, steps=steps, engine_path=out, cuda_graphs=False)
    if reloaded.parity is None:  # pragma: no cover - the constructor always checks
        raise ExportError("TensorRT export produced no parity report")
    return [out], reloaded.parity
