"""Whole-graph captures of the model: ``torch.export`` programs and ONNX files.

Both keep the batch **and** the time axis dynamic (batch 1…4096, L 1…``max_steps`` of the time code) and
take the three masks as inputs, so one file serves the live window (batch 4, L = 50), single windows
and offline batches. The capture is strict about graph breaks: ``torch.export`` fails rather than
splitting the graph, which is also the graph torch-tensorrt's dynamo path consumes.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from model.backends.base import INPUT_NAMES, OUTPUT_NAME
from model.backends.inputs import LIVE_STEPS, live_like_inputs
from model.errors import ExportError

log = logging.getLogger(__name__)

DEFAULT_OPSET = 20
MAX_BATCH = 4096


def max_steps(model: nn.Module) -> int:
    cfg = getattr(model, "cfg", None)
    return int(getattr(cfg, "max_steps", 512)) if cfg is not None else 512


def dynamic_shapes(
    model: nn.Module, batch: tuple[int, int] = (1, MAX_BATCH), dynamic_steps: bool = True
) -> tuple[dict[int, object], ...]:
    """``torch.export`` dynamic-shape spec, one entry per positional input (``INPUT_NAMES`` order):
    dim 0 (batch) of every input, and dim 1 (L) when asked."""
    b = torch.export.Dim("batch", min=batch[0], max=batch[1])
    spec: dict[int, object] = {0: b}
    if dynamic_steps:
        spec[1] = torch.export.Dim("steps", min=1, max=max_steps(model))
    return tuple(dict(spec) for _ in INPUT_NAMES)


def example_args(model: nn.Module, batch: int = 4, steps: int = LIVE_STEPS, device: str = "cpu") -> tuple:
    """Real-shaped example inputs (with masked steps and missing modalities) as tensors."""
    return live_like_inputs(model, batch, steps).tensors(device)


def export_program(
    model: nn.Module,
    *,
    steps: int = LIVE_STEPS,
    batch: tuple[int, int] = (1, MAX_BATCH),
    dynamic_steps: bool = True,
    device: str = "cpu",
) -> torch.export.ExportedProgram:
    """``torch.export.export`` with dynamic batch (and L). Raises ExportError on a graph break."""
    model = model.eval()
    example = example_args(model, batch=max(2, min(4, batch[1])), steps=steps, device=device)
    try:
        with torch.no_grad():
            return torch.export.export(
                model, example, dynamic_shapes=dynamic_shapes(model, batch, dynamic_steps), strict=False
            )
    except Exception as exc:  # torch raises many types (UserError, GuardOnDataDependentSymNode, ...)
        first = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            "torch.export could not capture the model as one graph with a dynamic batch "
            f"({type(exc).__name__}: "
            f"{first}); this is a bug in the model's exportability, please report it"
        ) from exc


def export_onnx(
    model: nn.Module, path: str | Path, *, opset: int = DEFAULT_OPSET, steps: int = LIVE_STEPS
) -> list[Path]:
    """Write ``path`` (graph) and ``path.data`` (weights) with the dynamo exporter; return the files."""
    if opset < 18:
        raise ExportError(f"opset {opset} is too old for the dynamo exporter; use 18 or newer (default 20)")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = example_args(model, steps=steps)
    # The exporter's own loggers report every rewrite at INFO (hundreds of lines) and warn that torchvision
    # is absent; keep them quiet for the duration of the export.
    noisy = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in noisy]
    for lg in noisy:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                example,
                dynamo=True,
                opset_version=opset,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_shapes=dynamic_shapes(model),
                external_data=True,
                verbose=False,
            )
            if program is None:  # pragma: no cover - dynamo=True always returns a program
                raise ExportError("torch.onnx.export returned nothing")
            program.save(str(out), external_data=True)
    except ExportError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"ONNX export failed ({type(exc).__name__}: {first})") from exc
    finally:
        for lg, level in zip(noisy, levels, strict=True):
            lg.setLevel(level)
    files = [out]
    data = out.with_name(out.name + ".data")
    if data.exists():
        files.append(data)
    log.debug("wrote ONNX opset %d: %s", opset, ", ".join(str(f) for f in files))
    return files
