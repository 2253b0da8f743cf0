"""ONNX Runtime backend (CPU execution provider).

Without ``path`` the checkpoint is exported once (dynamo exporter, opset 20, dynamic batch and L, masks
as inputs), parity-checked against eager on the live-window cases, and cached on disk by model hash +
torch/onnx versions + opset; later processes load the cached file. With ``path`` an existing
``mmcl export --format onnx`` file is used as is (its parity was checked when it was written).

Session settings: all graph optimisations (constant folding, MatMul+Add/GELU/LayerNorm fusions),
``threads`` intra-op threads (default: torch's current thread count, so ``torch.set_num_threads`` /
``monitor.torch_threads`` govern both) that do not spin while idle, one inter-op thread, sequential
execution.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.backends.base import OUTPUT_NAME, InferenceBackend, ModelInputs
from model.backends.cache import cache_dir, key_of, model_digest, package_version
from model.backends.graphs import DEFAULT_OPSET, export_onnx
from model.backends.inputs import parity_cases
from model.backends.parity import compare, eager_reference, require
from model.backends.precision import check_precision
from model.backends.probe import onnxruntime_status
from model.checkpoint import LoadedCheckpoint
from model.errors import BackendUnavailable

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"


def _ort() -> Any:
    status = onnxruntime_status()
    if not status.ok:
        raise BackendUnavailable(f"the onnx backend needs ONNX Runtime: {status.reason}")
    import onnxruntime

    return onnxruntime


def make_session(path: str | Path, threads: int = 0, optimization: str = "all") -> Any:
    """An ONNX Runtime CPU session with this project's settings."""
    ort = _ort()
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    so = ort.SessionOptions()
    so.graph_optimization_level = levels[optimization]
    so.intra_op_num_threads = threads if threads > 0 else torch.get_num_threads()
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3  # errors only
    # No busy-waiting between runs: spinning intra-op threads steal the cores that the capture, ASR and
    # face workers (and, in a benchmark, the other backends) need.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def cached_onnx(loaded: LoadedCheckpoint, opset: int = DEFAULT_OPSET) -> Path:
    """The cached, parity-checked ONNX file of this checkpoint (exported on first use)."""
    model = loaded.model.eval()
    key = key_of(
        "mmcl",
        model_digest(model),
        torch.__version__,
        package_version("onnx"),
        package_version("onnxscript"),
        opset,
    )
    root = cache_dir("onnx")
    final = root / key
    if (final / MODEL_FILE).is_file():
        return final / MODEL_FILE
    log.info("onnx: exporting this checkpoint once (tens of seconds); later runs reuse %s", final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    try:
        export_onnx(model, tmp / MODEL_FILE, opset=opset)
        session = make_session(tmp / MODEL_FILE)
        report = compare(
            "ONNX (cached export)",
            "fp32",
            lambda x: eager_reference(model, x),
            lambda x: session.run([OUTPUT_NAME], x.feeds())[0],
            parity_cases(model),
        )
        require(report)
        log.debug("%s", report.summary())
        try:
            os.replace(tmp, final)  # atomic; another process may have won the race: then keep theirs
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final / MODEL_FILE


class OnnxBackend(InferenceBackend):
    name = "onnx"

    def __init__(
        self,
        loaded: LoadedCheckpoint,
        path: str | Path | None = None,
        threads: int = 0,
        optimization: str = "all",
        opset: int = DEFAULT_OPSET,
        precision: str = "fp32",
    ) -> None:
        super().__init__(loaded)
        check_precision(precision, ("fp32",), self.name)  # ORT's CPU provider has no fast BF16/FP16 MatMul
        _ort()
        self.path = Path(path) if path is not None else cached_onnx(loaded, opset)
        if not self.path.is_file():
            raise BackendUnavailable(
                f"ONNX file {self.path} does not exist; write one with `mmcl export --format onnx`"
            )
        self.session = make_session(self.path, threads, optimization)
        self.threads = self.session.get_session_options().intra_op_num_threads

    def run(self, inputs: ModelInputs) -> np.ndarray:
        return np.asarray(self.session.run([OUTPUT_NAME], inputs.feeds())[0], dtype=np.float32)

    def describe(self) -> str:
        return f"onnx (onnxruntime {package_version('onnxruntime')}, CPU, {self.threads} thread(s))"
