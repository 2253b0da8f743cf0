"""Post-training quantisation from recorded windows.

``onnx-int8`` (CPU): the checkpoint is exported to FP32 ONNX by ``model.export`` (parity-checked against
eager), then ONNX Runtime static quantisation writes a QDQ model calibrated on the recorded windows
(``CalibrationDataReader`` over the shards, MinMax ranges by default):

* activations uint8 (asymmetric), weights int8 (symmetric, per tensor unless ``per_channel``): the U8S8
  pairing that ORT's x86 kernels (AVX2 / AVX512-VNNI) run as ``QLinearMatMul``; on a CPU without VNNI
  the weights get 7 bits (``reduce_range``, automatic) because those kernels saturate otherwise;
* only the ``MatMul``/``Gemm`` nodes whose second input is a weight are quantised (every ``nn.Linear``:
  projections, attention in/out projections, feed-forwards, head). The activation × activation products
  — attention scores QKᵀ, attention · V, the CSD cosine similarities and W·Z — stay FP32 by default
  (``attention=True`` quantises them too); LayerNorm, softmax, GELU and the masking logic always do.

Masked steps: live windows hold zeros at steps without data (no face, silence, no words yet). After the
model's standardisation those zeros can lie far outside the training range (``face_present`` is 1 at every
observed step, so its std is floored at 1e-3 and a masked 0 becomes −1000) and would dominate the MinMax
ranges of the input projections, costing the real steps their precision. The model multiplies every
masked step by 0 right after its projection, so the calibration batches carry the training mean at
masked steps (0 after standardisation): the ranges describe real steps only, and at run time masked
values merely saturate before being zeroed (``fill_masked``).

The written file carries metadata (``mmcl.model_digest`` = the checkpoint's content hash, the feature
set, the quantisation settings and calibration source) so that the ``onnx-int8`` backend refuses to run
it with another checkpoint. The gate: every 5th recorded window is held out of calibration, and before
the file is kept the INT8 model must match eager FP32 on those held-out real windows within
``TOLERANCES["int8"]`` (0.02 + 0.1·max|ref| per batch); a failure removes it (``ExportError``). The
synthetic live-window parity cases (features drawn around the training mean, masked steps with NaN, missing
modalities) are reported but not required: a model calibrated on real windows may clip synthetic inputs
that lie outside their ranges. Measured on the shipped default model (d = 64): with the attention/CSD
products quantised too (``attention=True``) one synthetic row exceeded the tolerance (0.18 > 0.12) — the
reason they stay FP32 by default; weight-only INT8 stays within it (0.034 <= 0.12).

``tensorrt-int8`` / ``tensorrt-fp8`` (CUDA GPU): NVIDIA ModelOpt PTQ (``mtq.INT8_DEFAULT_CFG`` /
``mtq.FP8_DEFAULT_CFG``) with the recorded windows as the forward loop, compiled by the project's
``TensorRTBackend`` (engine saved to ``out``, parity-checked). Imported lazily; without torch-tensorrt,
ModelOpt or a GPU this raises ``BackendUnavailable`` naming what is missing. This path has not been run
in this project (no TensorRT on the machines available).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calibration.shards import CalibrationSet
from model.backends.base import OUTPUT_NAME, ModelInputs
from model.backends.cache import model_digest, package_version
from model.backends.inputs import ParityCase, parity_cases
from model.backends.parity import ParityReport, compare, eager_reference, require
from model.backends.probe import modelopt_status, onnxruntime_status, tensorrt_status
from model.checkpoint import LoadedCheckpoint
from model.errors import BackendUnavailable, ConfigError, ExportError

log = logging.getLogger(__name__)

TARGETS: tuple[str, ...] = ("onnx-int8", "tensorrt-int8", "tensorrt-fp8")
METHODS: tuple[str, ...] = ("minmax", "percentile", "entropy")
META_PREFIX = "mmcl."
MODELOPT_MIN_WINDOWS, MODELOPT_MAX_WINDOWS = 128, 512


@dataclass
class QuantizeSettings:
    attention: bool = False  # also quantise activation × activation MatMuls (attention, CSD)
    per_channel: bool = False  # per-output-channel weight scales
    method: str = "minmax"  # ORT calibration: minmax | percentile | entropy
    batch: int = 16  # calibration windows per forward pass
    # 7-bit weights. None = auto: on where the CPU has no VNNI (AVX2 only), whose U8S8 kernels add pairs of
    # u8·s8 products in int16 and saturate (measured here, AMD EPYC without VNNI: max error 0.106 against
    # the 0.048 bound on a test model; with 7-bit weights it passes).
    reduce_range: bool | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.batch < 1:
            raise ConfigError("calibration batch must be >= 1")


@dataclass
class QuantizeResult:
    target: str
    out: Path
    parity: ParityReport  # the gate: held-out recorded windows vs eager FP32 (required)
    calib_windows: int  # windows the ranges were measured on
    check_windows: int  # held-out recorded windows of the gate
    synthetic: ParityReport | None = None  # live-like synthetic cases (reported, not required)
    fp32_onnx: Path | None = None  # the FP32 graph it started from
    matmuls: dict[str, int] = field(default_factory=dict)  # quantised / kept in FP32 (read from the file)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "out": str(self.out),
            "parity": self.parity.to_dict(),
            "synthetic": self.synthetic.to_dict() if self.synthetic is not None else None,
            "calib_windows": self.calib_windows,
            "check_windows": self.check_windows,
            "matmuls": self.matmuls,
            "notes": self.notes,
        }


def split_check(inputs: ModelInputs, every: int = 5) -> tuple[ModelInputs, ModelInputs, bool]:
    """(calibration part, held-out check part, held_out): every ``every``-th recorded window is held out
    to check the INT8 model; with fewer than 2·every windows all of them serve both (held_out False)."""
    n = inputs.batch
    if n < 2 * every:
        return inputs, inputs, False
    idx = np.arange(n)
    return inputs.select(list(idx[idx % every != every - 1])), inputs.select(list(idx[idx % every == every - 1])), True


def check_cases(check: ModelInputs, batch: int = 64) -> list[ParityCase]:
    return [
        ParityCase(
            f"recorded windows {i + 1}–{min(i + batch, check.batch)} (held out)", check.select(slice(i, i + batch))
        )
        for i in range(0, check.batch, batch)
    ]


class WindowReader:
    """ORT ``CalibrationDataReader`` over recorded windows, ``batch`` at a time; ``on_batch(done, total)``."""

    def __init__(self, batches: list[ModelInputs], on_batch: Callable[[int, int], None] | None = None) -> None:
        self.batches = batches
        self.on_batch = on_batch
        self._i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= len(self.batches):
            return None
        feeds = self.batches[self._i].feeds()
        self._i += 1
        if self.on_batch:
            self.on_batch(self._i, len(self.batches))
        return feeds

    def rewind(self) -> None:
        self._i = 0

    def __len__(self) -> int:
        return len(self.batches)


def fill_masked(inputs: ModelInputs, means: dict[str, np.ndarray]) -> ModelInputs:
    """A copy of ``inputs`` with each modality's masked steps set to ``means[m]`` (module docstring)."""
    arrays = {}
    for m in ("vision", "audio", "text"):
        x = np.array(getattr(inputs, m), dtype=np.float32, copy=True)
        x[~np.asarray(getattr(inputs, f"{m}_mask"), dtype=bool)] = means[m]
        arrays[m] = x
    return ModelInputs(**arrays, **{f"{m}_mask": getattr(inputs, f"{m}_mask") for m in ("vision", "audio", "text")})


def model_means(model: Any) -> dict[str, np.ndarray]:
    """The model's training means per modality (zeros for a model without standardisation buffers)."""
    from model.backends.inputs import input_dims

    out = {}
    for m, d in input_dims(model).items():
        buf = getattr(model, f"mean_{m}", None)
        out[m] = buf.detach().float().cpu().numpy() if buf is not None else np.zeros(d, np.float32)
    return out


def calibration_batches(loaded: LoadedCheckpoint, windows: ModelInputs, batch: int) -> list[ModelInputs]:
    means = model_means(loaded.model)
    return [fill_masked(windows.select(slice(i, i + batch)), means) for i in range(0, windows.batch, batch)]


def _reader_class() -> type:
    """``WindowReader`` registered as an ORT ``CalibrationDataReader`` (ORT imported on use)."""
    from onnxruntime.quantization import CalibrationDataReader

    return type("OrtWindowReader", (WindowReader, CalibrationDataReader), {})


def cpu_has_vnni() -> bool:
    """Whether this CPU has VNNI (AVX512-VNNI or AVX-VNNI), read from /proc/cpuinfo; False when unknown."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def activation_matmuls(path: Path) -> tuple[list[str], int]:
    """(names of the MatMul nodes whose second input is not a weight, number of weight MatMul/Gemm nodes)
    of an FP32 graph. ORT's ``MatMulConstBOnly`` does not restrict QDQ quantisation (checked with ORT 1.32),
    so the activation × activation products are kept in FP32 by name."""
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    consts = {i.name for i in g.initializer} | {o for n in g.node if n.op_type == "Constant" for o in n.output}
    act, weight = [], 0
    for n in g.node:
        if n.op_type in ("MatMul", "Gemm"):
            if len(n.input) > 1 and n.input[1] in consts:
                weight += 1
            else:
                act.append(n.name)
    return act, weight


def quantised_matmuls(path: Path) -> dict[str, int]:
    """MatMul/Gemm nodes of a written QDQ graph whose inputs all come from DequantizeLinear (run in INT8)
    and the others (FP32): read from the file, not assumed."""
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    made_by = {o: n.op_type for n in g.node for o in n.output}
    q = f = 0
    for n in g.node:
        if n.op_type in ("MatMul", "Gemm"):
            if all(made_by.get(i) == "DequantizeLinear" for i in n.input[:2]):
                q += 1
            else:
                f += 1
    return {"quantised": q, "fp32": f}


def _ort_session(path: Path, threads: int = 0) -> Any:
    from model.backends.onnx_backend import make_session

    return make_session(path, threads)


def quantize_onnx_int8(
    loaded: LoadedCheckpoint,
    calib: CalibrationSet,
    out: str | Path,
    *,
    settings: QuantizeSettings | None = None,
    work_dir: str | Path | None = None,
    fp32_onnx: str | Path | None = None,
    on_step: Callable[[str], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> QuantizeResult:
    """Quantise to ``out`` and verify. The FP32 graph: ``fp32_onnx`` when given (an export of this same
    checkpoint), else a fresh export into ``work_dir`` when given, else the onnx backend's on-disk cache."""
    status = onnxruntime_status()
    if not status.ok:
        raise BackendUnavailable(f"onnx-int8 quantisation needs ONNX Runtime: {status.reason}")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from model.export import export_checkpoint

    s = settings or QuantizeSettings()
    step = on_step or (lambda _m: None)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fp32_onnx is not None:
        fp32 = Path(fp32_onnx)
    elif work_dir is not None:
        fp32 = Path(work_dir) / "model_fp32.onnx"
        step("exporting the FP32 ONNX graph (parity-checked against eager)")
        export_checkpoint(loaded, "onnx", fp32, steps=calib.inputs.steps)
    else:  # the onnx backend's cached, parity-checked export of this checkpoint (exported on first use)
        from model.backends.onnx_backend import cached_onnx

        step("FP32 ONNX graph (the onnx backend's cached export; exported and parity-checked on first use)")
        fp32 = cached_onnx(loaded)
    act_nodes, _ = activation_matmuls(fp32)
    reduce = (not cpu_has_vnni()) if s.reduce_range is None else s.reduce_range
    cal_part, check_part, held_out = split_check(calib.inputs)
    step(f"calibrating on {cal_part.batch} windows and writing INT8 (QDQ)")
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    reader = _reader_class()(calibration_batches(loaded, cal_part, s.batch), on_batch)
    tmp_out = out.with_name(f".{out.name}.tmp")
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))  # ORT logs pre-processing advice on the root logger
    try:
        quantize_static(
            str(fp32),
            str(tmp_out),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=s.per_channel,
            reduce_range=reduce,
            op_types_to_quantize=["MatMul", "Gemm"],
            nodes_to_exclude=[] if s.attention else act_nodes,
            calibrate_method=methods[s.method],
            extra_options={"WeightSymmetric": True},
        )
    except Exception as exc:  # ORT raises plain Exceptions/RuntimeErrors from its graph tools
        tmp_out.unlink(missing_ok=True)
        raise ExportError(f"ONNX Runtime quantisation failed ({type(exc).__name__}: {str(exc)[:300]})") from exc
    finally:
        root.setLevel(level)
    matmuls = quantised_matmuls(tmp_out)
    meta = {
        "model_digest": model_digest(loaded.model),
        "feature_set": loaded.feature_set.ident,
        "quantization": json.dumps(
            {
                "target": "onnx-int8",
                "format": "QDQ",
                "activations": "uint8",
                "weights": "int8",
                "per_channel": s.per_channel,
                "reduce_range": reduce,
                "method": s.method,
                "attention_quantised": s.attention,
                "matmuls": matmuls,
                "onnxruntime": package_version("onnxruntime"),
            }
        ),
        "calibration": json.dumps(
            {
                "windows": cal_part.batch,
                "check_windows": check_part.batch,
                "folder_windows": calib.total,
                "shards": calib.shards,
                "sources": calib.sources,
            }
        ),
    }
    _set_metadata(tmp_out, meta)
    step("checking INT8 against eager FP32")
    try:
        session = _ort_session(tmp_out)
        model = loaded.model.eval()

        def run(x: ModelInputs) -> np.ndarray:
            return np.asarray(session.run([OUTPUT_NAME], x.feeds())[0])

        def eager(x: ModelInputs) -> np.ndarray:
            return eager_reference(model, x)

        report = compare(f"ONNX INT8 {out.name}", "int8", eager, run, check_cases(check_part))
        synthetic = compare(
            f"ONNX INT8 {out.name}, synthetic", "int8", eager, run, parity_cases(model, calib.inputs.steps)
        )
        require(report)
    except BaseException:
        tmp_out.unlink(missing_ok=True)
        raise
    tmp_out.replace(out)
    notes = [
        f"{matmuls['quantised']} MatMul/Gemm run in INT8, {matmuls['fp32']} kept in FP32"
        + ("" if s.attention else " (attention scores, attention·V and CSD products)")
    ]
    if not held_out:
        notes.append(f"only {calib.inputs.batch} windows: the check reuses the calibration windows")
    if not synthetic.ok:
        notes.append(
            "synthetic live-like inputs (features drawn around the training mean) exceed the tolerance: "
            f"{synthetic.summary()}; they lie outside the recorded windows' ranges, which INT8 clips"
        )
    return QuantizeResult("onnx-int8", out, report, cal_part.batch, check_part.batch, synthetic, fp32, matmuls, notes)


def _set_metadata(path: Path, values: dict[str, str]) -> None:
    import onnx

    proto = onnx.load(str(path))
    keep = [p for p in proto.metadata_props if not p.key.startswith(META_PREFIX)]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for k, v in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_PREFIX + k, v
    onnx.save(proto, str(path))


# ---- GPU: ModelOpt + TensorRT ---------------------------------------------------------------------------
def require_modelopt_tensorrt(target: str) -> None:
    """BackendUnavailable naming every missing piece (torch-tensorrt, a CUDA GPU, nvidia-modelopt)."""
    missing = []
    trt = tensorrt_status()
    if not trt.ok:
        missing.append(trt.reason)
    mo = modelopt_status()
    if not mo.ok:
        missing.append(mo.reason)
    if missing:
        raise BackendUnavailable(
            f"--target {target} needs NVIDIA ModelOpt and TensorRT on a CUDA GPU: {'; '.join(missing)}. "
            "On this machine use --target onnx-int8 (ONNX Runtime, CPU)"
        )


def _fp8_backend(loaded: LoadedCheckpoint, **kwargs: Any) -> Any:
    """``TensorRTBackend`` built through its INT8 (ModelOpt Q/DQ, explicit typing) path, with ModelOpt's FP8
    config instead of INT8 (FP8 needs Hopper or newer)."""
    from model.backends.tensorrt_backend import TensorRTBackend

    class Fp8TensorRTBackend(TensorRTBackend):
        def _prepared_module(self) -> Any:
            import modelopt.torch.quantization as mtq
            import torch

            module = copy.deepcopy(self.loaded.model).to(self.device).eval()
            calibration = list(self.calibration or [])

            def forward_loop(m: Any) -> None:
                with torch.no_grad():
                    for batch in calibration:
                        m(*batch.tensors(self.device))

            return mtq.quantize(module, mtq.FP8_DEFAULT_CFG, forward_loop)

        def describe(self) -> str:
            return super().describe().replace("(int8", "(fp8", 1)

    return Fp8TensorRTBackend(loaded, precision="int8", **kwargs)


def quantize_tensorrt(
    loaded: LoadedCheckpoint,
    calib: CalibrationSet,
    out: str | Path,
    target: str,
    *,
    batch: int = 16,
    on_step: Callable[[str], None] | None = None,
) -> tuple[QuantizeResult, Any]:
    """ModelOpt PTQ on the recorded windows → TensorRT engine at ``out``; returns (result, backend)."""
    if target not in ("tensorrt-int8", "tensorrt-fp8"):
        raise ConfigError(f"unknown TensorRT target {target!r}")
    require_modelopt_tensorrt(target)
    step = on_step or (lambda _m: None)
    n = calib.inputs.batch
    notes = []
    if n < MODELOPT_MIN_WINDOWS:
        notes.append(
            f"only {n} calibration windows (ModelOpt recommends {MODELOPT_MIN_WINDOWS}–"
            f"{MODELOPT_MAX_WINDOWS}); record more for a steadier calibration"
        )
        log.warning("%s", notes[-1])
    out = Path(out)
    out.unlink(missing_ok=True)  # the backend loads an existing engine file instead of building
    cal_part, check_part, _held_out = split_check(calib.inputs)
    batches = calibration_batches(loaded, cal_part, batch)
    step(f"ModelOpt {target.split('-')[1].upper()} calibration on {n} windows and TensorRT engine build")
    kwargs = {"steps": calib.inputs.steps, "calibration": batches, "engine_path": out, "cuda_graphs": False}
    if target == "tensorrt-int8":
        from model.backends.tensorrt_backend import TensorRTBackend

        backend = TensorRTBackend(loaded, precision="int8", **kwargs)
    else:
        backend = _fp8_backend(loaded, **kwargs)
    assert backend.parity is not None  # TensorRTBackend requires its synthetic parity cases itself
    cpu_model = copy.deepcopy(loaded.model).cpu()
    report = compare(f"TensorRT {target} {out.name}", "int8", lambda x: eager_reference(cpu_model, x), backend.run,
                     check_cases(check_part, backend.max_batch))  # fmt: skip
    require(report)
    return QuantizeResult(target, out, report, cal_part.batch, check_part.batch, backend.parity, notes=notes), backend
