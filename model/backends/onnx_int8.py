"""``onnx-int8``: ONNX Runtime (CPU) on the INT8 QDQ model written by ``mmcl calibrate quantize``.

The file is ``path=`` or, when not given, the one the quantize command recorded in the checkpoint
(``extra["quantization"]["onnx-int8"]["path"]``), so ``mmcl monitor --checkpoint P --backend onnx-int8``
needs nothing else. The file's metadata must carry this checkpoint's content hash (``mmcl.model_digest``):
an INT8 model quantised from another checkpoint is refused. Session settings are the ``onnx`` backend's.
"""

from __future__ import annotations

import json
from pathlib import Path

from model.backends.cache import model_digest, package_version
from model.backends.onnx_backend import OnnxBackend
from model.backends.precision import check_precision
from model.checkpoint import LoadedCheckpoint
from model.errors import BackendUnavailable, CheckpointError

META_DIGEST = "mmcl.model_digest"
HINT = "write one with `mmcl calibrate quantize --checkpoint P --calib DIR --target onnx-int8 --out FILE`"


def recorded_path(loaded: LoadedCheckpoint) -> Path | None:
    rec = (loaded.extra.get("quantization") or {}).get("onnx-int8") if isinstance(loaded.extra, dict) else None
    path = rec.get("path") if isinstance(rec, dict) else None
    return Path(path) if isinstance(path, str) and path else None


def file_metadata(path: Path) -> dict[str, str]:
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError/OSError/... on a damaged file
        raise BackendUnavailable(f"{path} is not a readable ONNX model ({type(exc).__name__}); {HINT}") from None
    return {p.key: p.value for p in proto.metadata_props}


class OnnxInt8Backend(OnnxBackend):
    name = "onnx-int8"

    def __init__(
        self,
        loaded: LoadedCheckpoint,
        path: str | Path | None = None,
        threads: int = 0,
        optimization: str = "all",
        precision: str = "int8",
    ) -> None:
        check_precision(precision, ("int8",), self.name)
        p = Path(path) if path is not None else recorded_path(loaded)
        if p is None:
            raise BackendUnavailable(f"no INT8 model is recorded for this checkpoint; {HINT}")
        if not p.is_file():
            raise BackendUnavailable(f"INT8 model {p} does not exist; {HINT}")
        meta = file_metadata(p)
        digest = meta.get(META_DIGEST)
        if digest is None:
            raise BackendUnavailable(f"{p} has no {META_DIGEST} metadata: it was not written by mmcl; {HINT}")
        if digest != model_digest(loaded.model):
            raise CheckpointError(
                f"{p} was quantised from another checkpoint (model digest {digest}); quantise this one: {HINT}"
            )
        self.quantization = json.loads(meta.get("mmcl.quantization", "{}") or "{}")
        super().__init__(loaded, path=p, threads=threads, optimization=optimization)

    def describe(self) -> str:
        what = "QDQ INT8" + (", attention in FP32" if not self.quantization.get("attention_quantised") else "")
        return (
            f"onnx-int8 (onnxruntime {package_version('onnxruntime')}, CPU, {self.threads} thread(s), {what}, "
            f"{self.path.name})"
        )
