"""The binary wire format between ``mmcl monitor --server`` and ``mmcl serve``: model inputs out, raw outputs back.

Every body (request and response, ``Content-Type: application/x-mmcl-frame``) is one frame::

    magic  b"MMW1"          4 bytes
    hlen   uint32 LE         length of the header
    header UTF-8 JSON        a small object of strings and integers only (never a float)
    data   little-endian     raw array bytes, C order, sizes fixed by the header

Request (``kind: "windows"``): ``feature_set`` (the ident the client computes, e.g. ``mmcl-live@live-v1``),
``dims`` ({vision, audio, text} column counts), ``batch`` B, ``steps`` L and ``variants`` (bool: the server
also scores each row with vision, audio, text masked out — the masked-modality attribution — in the same
backend call). Data: vision (B, L, Dv), audio (B, L, Da), text (B, L, Dt) float32, then the three masks
(B, L) as uint8 0/1. One live window of ``live-v1`` (L = 50) is 95 kB.

Response (``kind: "outputs"``): ``rows`` R and ``cols`` C (R = B, or 4·B with ``variants``: the B rows, then
their 3·B masked rows in the order of ``realtime.pipeline.inference.masked_variants``), plus integer
statistics (``batch_windows``: windows the server scored in the same backend call, ``batch_rows``,
``model_us``, ``queue_us``, ``replica``). Data: (R, C) float32 raw
model outputs — exactly what a local backend's ``run`` returns, so the client decodes them with the same
``SentimentDecoder`` as local inference (any number of outputs: regression values, class logits).

Decoding validates everything a peer controls (magic, header size and types, ranges, exact byte count) and
raises :class:`WireFormatError`; nothing is unpickled and no array is larger than its header declares.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.backends.base import ModelInputs
from model.errors import MmclError
from model.featureset import MODALITIES

MAGIC = b"MMW1"
CONTENT_TYPE = "application/x-mmcl-frame"
MAX_HEADER = 16 * 1024
MAX_BATCH = 64  # windows in one request
MAX_STEPS = 4096
MAX_DIM = 8192
MAX_COLS = 1024
_PREFIX = struct.Struct("<4sI")


class WireFormatError(MmclError):
    """A body is not a well-formed mmcl frame (wrong magic, bad header, wrong size). HTTP 400."""


class FeatureSetMismatch(MmclError):
    """The server's model was trained on another feature set than the client computes. HTTP 409."""


@dataclass
class WindowRequest:
    """What a client sends: a batch of windows (usually one) and the feature set it computed them with."""

    feature_set: str
    inputs: ModelInputs
    variants: bool = True
    client: str = ""

    @property
    def dims(self) -> dict[str, int]:
        return {m: int(getattr(self.inputs, m).shape[2]) for m in MODALITIES}


@dataclass
class OutputsResponse:
    """What the server answers: raw outputs (R, C) float32 and integer statistics about the batch."""

    outputs: np.ndarray
    stats: dict[str, int | str] = field(default_factory=dict)


def _frame(header: dict[str, Any], *arrays: np.ndarray) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    parts = [_PREFIX.pack(MAGIC, len(head)), head]
    parts += [np.ascontiguousarray(a).tobytes() for a in arrays]
    return b"".join(parts)


def _unframe(body: bytes) -> tuple[dict[str, Any], memoryview]:
    if len(body) < _PREFIX.size:
        raise WireFormatError(f"body of {len(body)} bytes is too short for an mmcl frame")
    magic, hlen = _PREFIX.unpack_from(body)
    if magic != MAGIC:
        raise WireFormatError(f"not an mmcl frame (magic {magic!r}, expected {MAGIC!r}); is this an mmcl server?")
    if hlen > MAX_HEADER or _PREFIX.size + hlen > len(body):
        raise WireFormatError(f"frame header of {hlen} bytes does not fit (limit {MAX_HEADER}, body {len(body)})")
    try:
        header = json.loads(bytes(body[_PREFIX.size : _PREFIX.size + hlen]).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireFormatError(f"frame header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise WireFormatError("frame header is not a JSON object")
    return header, memoryview(body)[_PREFIX.size + hlen :]


def _int(header: dict[str, Any], key: str, lo: int, hi: int) -> int:
    v = header.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise WireFormatError(f"frame header field {key!r} must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def encode_request(req: WindowRequest) -> bytes:
    x = req.inputs
    header = {
        "kind": "windows", "feature_set": req.feature_set, "dims": req.dims, "batch": x.batch,
        "steps": x.steps, "variants": bool(req.variants), "client": req.client,
    }  # fmt: skip
    feats = [np.asarray(getattr(x, m), dtype="<f4") for m in MODALITIES]
    masks = [np.asarray(getattr(x, f"{m}_mask"), dtype=np.uint8) for m in MODALITIES]
    return _frame(header, *feats, *masks)


def decode_request(body: bytes) -> WindowRequest:
    header, data = _unframe(body)
    if header.get("kind") != "windows":
        raise WireFormatError(f"expected a 'windows' frame, got kind {header.get('kind')!r}")
    fs = header.get("feature_set")
    if not isinstance(fs, str) or not fs:
        raise WireFormatError("frame header has no feature_set; the client must say which features it computed")
    b, steps = _int(header, "batch", 1, MAX_BATCH), _int(header, "steps", 1, MAX_STEPS)
    dims_raw = header.get("dims")
    if not isinstance(dims_raw, dict):
        raise WireFormatError("frame header field 'dims' must be an object {vision, audio, text}")
    dims = {m: _int(dims_raw, m, 1, MAX_DIM) for m in MODALITIES}
    sizes = [b * steps * dims[m] * 4 for m in MODALITIES] + [b * steps] * 3
    if sum(sizes) != len(data):
        raise WireFormatError(f"frame data is {len(data)} bytes, the header declares {sum(sizes)}")
    arrays: list[np.ndarray] = []
    off = 0
    for k, n in enumerate(sizes):
        if k < 3:
            a = np.frombuffer(data, dtype="<f4", count=n // 4, offset=off).reshape(b, steps, dims[MODALITIES[k]])
            arrays.append(a.astype(np.float32))  # a writable native copy
        else:
            m = np.frombuffer(data, dtype=np.uint8, count=n, offset=off).reshape(b, steps)
            if m.max(initial=0) > 1:
                raise WireFormatError("mask bytes must be 0 or 1")
            arrays.append(m.astype(bool))
        off += n
    return WindowRequest(
        feature_set=fs, inputs=ModelInputs(*arrays), variants=bool(header.get("variants", False)),
        client=str(header.get("client", ""))[:128],
    )  # fmt: skip


def encode_response(resp: OutputsResponse) -> bytes:
    out = np.asarray(resp.outputs, dtype="<f4")
    if out.ndim != 2:
        raise WireFormatError(f"outputs must be 2-D (rows, cols), got shape {out.shape}")
    header = {"kind": "outputs", "rows": int(out.shape[0]), "cols": int(out.shape[1]), **resp.stats}
    return _frame(header, out)


def decode_response(body: bytes) -> OutputsResponse:
    header, data = _unframe(body)
    if header.get("kind") != "outputs":
        raise WireFormatError(f"expected an 'outputs' frame, got kind {header.get('kind')!r}")
    rows, cols = _int(header, "rows", 1, 4 * MAX_BATCH), _int(header, "cols", 1, MAX_COLS)
    if len(data) != rows * cols * 4:
        raise WireFormatError(f"outputs frame holds {len(data)} bytes, the header declares {rows * cols * 4}")
    out = np.frombuffer(data, dtype="<f4").reshape(rows, cols).astype(np.float32)
    stats = {k: v for k, v in header.items() if k not in ("kind", "rows", "cols") and isinstance(v, (int, str))}
    return OutputsResponse(out, stats)
