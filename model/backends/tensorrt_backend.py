"""TensorRT backend through torch-tensorrt's dynamo path (``torch.export`` → TensorRT engine).

* ``precision="fp16"`` (default): the low-precision copy (every matrix product in FP16, LayerNorm,
  softmax and the CSD in FP32; see ``precision.py``) compiled with explicit typing, because the dynamo
  path ignores ``enabled_precisions``. ``"int8"``: NVIDIA ModelOpt post-training quantisation
  (``mtq.INT8_DEFAULT_CFG``) calibrated on ``calibration`` windows (recorded ones from ``calibration/``;
  without them, synthetic live-like windows are used and a warning says so). ``"fp32"`` for reference.
* One optimisation profile: batch ``min_batch``…``max_batch`` (1–64, optimum ``opt_batch`` = 1, the live
  monitor's latency-critical call; its contributions follow as a batch of 3), L fixed at ``steps``.
* Engines are cached on disk (``cache.py``), keyed by checkpoint hash + GPU name + torch /
  torch-tensorrt / TensorRT versions + precision + shape profile (+ calibration hash for INT8).
* Batch 1 replays a captured CUDA graph (``cudagraph.py``); if capture fails the backend logs it once and
  runs without.
* Every build is parity-checked against eager FP32 on the live-window cases; a failure is ExportError.

Everything TensorRT/CUDA is imported lazily. Without torch-tensorrt or without a CUDA GPU the constructor
raises BackendUnavailable naming what is missing. This module has not been run on a machine with
TensorRT in this project (the lent GPU machine has none); see the README's verification table.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from model.backends.base import InferenceBackend, ModelInputs
from model.backends.cache import cache_dir, key_of, model_digest, package_version
from model.backends.cudagraph import CudaGraphRunner
from model.backends.graphs import export_program
from model.backends.inputs import LIVE_STEPS, input_dims, live_like_inputs, parity_cases
from model.backends.parity import ParityReport, compare, eager_reference, require
from model.backends.precision import check_precision, low_precision_copy
from model.backends.probe import modelopt_status, tensorrt_status
from model.checkpoint import LoadedCheckpoint
from model.errors import BackendUnavailable, ConfigError, ExportError

log = logging.getLogger(__name__)


def require_tensorrt() -> Any:
    status = tensorrt_status()
    if not status.ok:
        raise BackendUnavailable(
            f"the tensorrt backend cannot run here: {status.reason}. Use --backend auto (falls back to the "
            "fastest CPU backend) or onnx/compile/eager"
        )
    import torch_tensorrt

    return torch_tensorrt


def _supported_kwargs(fn: Any, wanted: dict[str, Any]) -> dict[str, Any]:
    """Pass only the settings this torch-tensorrt version knows (its signature changes between releases)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return wanted
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return wanted
    return {k: v for k, v in wanted.items() if k in params}


def synthetic_calibration(
    model: nn.Module, steps: int, samples: int = 256, batch: int = 32
) -> list[ModelInputs]:
    return [live_like_inputs(model, batch, steps, seed=1000 + i) for i in range(max(1, samples // batch))]


def quantize_int8(module: nn.Module, calibration: Sequence[ModelInputs], device: torch.device) -> nn.Module:
    """ModelOpt INT8 post-training quantisation (fake-quant Q/DQ nodes that TensorRT turns into INT8)."""
    status = modelopt_status()
    if not status.ok:
        raise BackendUnavailable(f"INT8 TensorRT engines need NVIDIA ModelOpt: {status.reason}")
    import modelopt.torch.quantization as mtq

    def forward_loop(m: nn.Module) -> None:
        with torch.no_grad():
            for batch in calibration:
                m(*batch.tensors(device))

    return mtq.quantize(module, mtq.INT8_DEFAULT_CFG, forward_loop)


class TensorRTBackend(InferenceBackend):
    name = "tensorrt"

    def __init__(
        self,
        loaded: LoadedCheckpoint,
        precision: str = "fp16",
        steps: int = LIVE_STEPS,
        min_batch: int = 1,
        opt_batch: int = 1,
        max_batch: int = 64,
        cuda_graphs: bool = True,
        calibration: Sequence[ModelInputs] | None = None,
        engine_path: str | Path | None = None,
        device: str = "cuda:0",
    ) -> None:
        super().__init__(loaded)
        self.precision = check_precision(precision, ("fp32", "fp16", "int8"), self.name)
        if not 1 <= min_batch <= opt_batch <= max_batch:
            raise ConfigError(
                f"tensorrt batch profile must satisfy 1 <= min <= opt <= max, got "
                f"{min_batch}/{opt_batch}/{max_batch}"
            )
        self.trt = require_tensorrt()
        self.device = torch.device(device)
        self.steps, self.max_batch = steps, max_batch
        self.profile = (min_batch, opt_batch, max_batch)
        self.calibration = calibration
        self.parity: ParityReport | None = None
        model = loaded.model.eval()
        key = key_of(
            "mmcl-trt",
            model_digest(model),
            torch.cuda.get_device_name(self.device),
            torch.__version__,
            package_version("torch_tensorrt"),
            package_version("tensorrt"),
            self.precision,
            steps,
            self.profile,
            _calibration_digest(calibration) if self.precision == "int8" else "",
        )
        self.engine_path = Path(engine_path) if engine_path else cache_dir("tensorrt") / f"{key}.ep"
        if self.engine_path.is_file():
            log.info("tensorrt: loading cached engine %s", self.engine_path)
            saved = self.trt.load(str(self.engine_path))
            # torch-tensorrt returns an ExportedProgram (older releases) or a callable module (newer ones)
            self.module = saved.module() if isinstance(saved, torch.export.ExportedProgram) else saved
        else:
            self.module = self.build()
            self.save(self.engine_path)
        self._graph: CudaGraphRunner | None = None
        self._graphs_enabled = cuda_graphs
        self.parity = require(self.check_parity())

    def _prepared_module(self) -> nn.Module:
        base = self.loaded.model.eval()
        if self.precision == "fp16":
            return low_precision_copy(base, "fp16").to(self.device)
        module = copy.deepcopy(base).to(self.device).eval()
        if self.precision == "int8":
            if self.calibration is None:
                log.warning(
                    "tensorrt int8: no calibration windows given; calibrating on synthetic live-like "
                    "windows. "
                    "Record real ones (mmcl monitor --record-calib) for a faithful INT8 engine"
                )
            calib = self.calibration or synthetic_calibration(base, self.steps)
            module = quantize_int8(module, calib, self.device)
        return module

    def _input_specs(self) -> list[Any]:
        lo, opt, hi = self.profile
        dims = input_dims(self.loaded.model)
        specs = [
            self.trt.Input(
                min_shape=(lo, self.steps, d),
                opt_shape=(opt, self.steps, d),
                max_shape=(hi, self.steps, d),
                dtype=torch.float32,
                name=m,
            )
            for m, d in dims.items()
        ]
        specs += [
            self.trt.Input(
                min_shape=(lo, self.steps),
                opt_shape=(opt, self.steps),
                max_shape=(hi, self.steps),
                dtype=torch.bool,
                name=f"{m}_mask",
            )
            for m in dims
        ]
        return specs

    def build(self) -> nn.Module:
        module = self._prepared_module()
        lo, _, hi = self.profile
        if self.precision == "int8":
            from modelopt.torch.quantization.utils import export_torch_mode

            with export_torch_mode():
                program = export_program(
                    module, steps=self.steps, batch=(lo, hi), dynamic_steps=False, device=str(self.device)
                )
        else:
            program = export_program(
                module, steps=self.steps, batch=(lo, hi), dynamic_steps=False, device=str(self.device)
            )
        settings = {
            "arg_inputs": self._input_specs(),
            "use_explicit_typing": self.precision != "fp32",
            "enabled_precisions": {torch.float32} if self.precision == "fp32" else None,
            "min_block_size": 1,
            "truncate_double": True,
            "device": self.device,
        }
        settings = {k: v for k, v in settings.items() if v is not None}
        log.info(
            "tensorrt: building a %s engine (batch %d–%d, L=%d); this takes a while once",
            self.precision,
            lo,
            hi,
            self.steps,
        )
        try:
            return self.trt.dynamo.compile(program, **_supported_kwargs(self.trt.dynamo.compile, settings))
        except Exception as exc:
            raise ExportError(
                f"TensorRT engine build failed ({type(exc).__name__}: {str(exc)[:400]})"
            ) from exc

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        example = live_like_inputs(self.loaded.model, self.profile[1], self.steps).tensors(self.device)
        tmp = path.with_name(path.name + ".tmp")
        wanted = {"output_format": "exported_program", "arg_inputs": list(example)}
        kwargs = _supported_kwargs(self.trt.save, wanted)
        if "arg_inputs" not in kwargs:  # releases before 2.6 call it ``inputs``
            kwargs["inputs"] = list(example)
        self.trt.save(self.module, str(tmp), **kwargs)
        tmp.replace(path)

    def check_parity(self) -> ParityReport:
        model = self.loaded.model
        cpu_model = copy.deepcopy(model).cpu().eval()
        return compare(
            f"TensorRT engine {self.engine_path.name}",
            self.precision,
            lambda x: eager_reference(cpu_model, x),
            self._run_plain,
            parity_cases(model, steps=self.steps, dynamic_steps=False),
        )

    @torch.inference_mode()
    def _run_plain(self, inputs: ModelInputs) -> np.ndarray:
        outs = []
        for start in range(0, inputs.batch, self.max_batch):
            part = inputs.select(slice(start, start + self.max_batch))
            outs.append(self.module(*part.tensors(self.device)).float().cpu().numpy())
        return np.concatenate(outs, axis=0)

    @torch.inference_mode()
    def run_tensors(self, *tensors: torch.Tensor) -> torch.Tensor:
        """Device tensors in, device tensor out (batch <= max_batch); batch 1 replays a CUDA graph."""
        if tensors[0].shape[0] == 1 and self._graphs_enabled:
            if self._graph is None:
                try:
                    self._graph = CudaGraphRunner(self.module, tensors)
                except Exception as exc:
                    log.warning("tensorrt: CUDA graph capture failed (%s); running batch 1 without", exc)
                    self._graphs_enabled = False
                    return self.module(*tensors)
            return self._graph(*tensors)
        return self.module(*tensors)

    def run(self, inputs: ModelInputs) -> np.ndarray:
        if inputs.steps != self.steps:
            raise ConfigError(
                f"this TensorRT engine was built for windows of L={self.steps} steps, got L={inputs.steps}; "
                "build one for that length (TensorRTBackend(steps=...)) or use another backend"
            )
        if inputs.batch == 1:
            return self.run_tensors(*inputs.tensors(self.device)).float().cpu().numpy()
        return self._run_plain(inputs)

    def describe(self) -> str:
        lo, opt, hi = self.profile
        return (
            f"tensorrt ({self.precision}, {torch.cuda.get_device_name(self.device)}, "
            f"batch {lo}–{hi} opt {opt}, "
            f"L={self.steps}{', CUDA graphs for batch 1' if self._graphs_enabled else ''})"
        )


def _calibration_digest(calibration: Sequence[ModelInputs] | None) -> str:
    if not calibration:
        return "synthetic"
    import hashlib

    h = hashlib.sha256()
    for batch in calibration:
        for a in batch.as_tuple():
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:12]
