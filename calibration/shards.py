"""Calibration shards: recorded model-input windows on disk, compact and safe to read (never pickles).

A calibration folder holds ``manifest.json`` and ``shard-00000.npz``, ``shard-00001.npz``, … Each shard is
a compressed ``.npz`` (a zip of ``.npy`` arrays) with, for N windows of L steps:

==========================================  =================================================================
``vision`` ``audio`` ``text``               (N, L, D_m) float16 (float32 when a value exceeds ±65000);
                                            float16 keeps ~3 significant digits, plenty for the activation
                                            ranges a quantiser measures, at half the size
``vision_mask`` ``audio_mask`` ``text_mask``  (N, L) uint8, 1 = observed step
``meta``                                    UTF-8 JSON as uint8: format tag, feature set (name, version,
                                            dims, SHA-256 of the column names), N, L, source, creation time
==========================================  =================================================================

The manifest lists every shard with its window count and SHA-256 and repeats the feature set, so a folder
recorded with another feature-set version is refused before anything is read. The reader checks the zip
directory, every array header (dtype, shape, size) before it reads the data, mask values, finiteness and
the checksums: any malformed or corrupt file is a ``DataFormatError`` naming the file, never a traceback.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.backends.base import ModelInputs
from model.errors import DataFormatError
from model.featureset import MODALITIES, FeatureSet
from model.private_io import private_dir, private_open, write_private_text

log = logging.getLogger(__name__)

SHARD_FORMAT = "mmcl-calib-shard/1"
MANIFEST_FORMAT = "mmcl-calib/1"
MANIFEST = "manifest.json"
FEATURES = MODALITIES
MASKS = tuple(f"{m}_mask" for m in MODALITIES)
MEMBERS = (*FEATURES, *MASKS, "meta")
FP16_LIMIT = 65000.0
MAX_ARRAY_BYTES = 1 << 30  # one array of a shard, uncompressed
MAX_MANIFEST_BYTES = 16 << 20
_SHARD_NAME = re.compile(r"^shard-\d{5,9}\.npz$")
RECORD_HINT = "record new windows with `mmcl monitor --record-calib DIR` or `mmcl extract … --record-calib DIR`"


def feature_record(fs: FeatureSet) -> dict[str, Any]:
    """What a shard stores about its feature set (enough to refuse another one)."""
    cols = json.dumps([list(fs.vision), list(fs.audio), list(fs.text)]).encode()
    return {"name": fs.name, "version": fs.version, "dims": fs.dims, "columns_sha256": _sha(cols)}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_feature_record(found: Any, expected: FeatureSet, where: str) -> None:
    """DataFormatError unless ``found`` (a stored record) is ``expected``'s record."""
    want = feature_record(expected)
    if not isinstance(found, dict):
        raise DataFormatError(f"{where}: no feature-set record; {RECORD_HINT}")
    ident = f"{found.get('name')}@{found.get('version')}"
    if ident != f"{want['name']}@{want['version']}" or found.get("dims") != want["dims"]:
        raise DataFormatError(
            f"{where} holds windows of feature set {ident} {found.get('dims')}, but the model uses "
            f"{expected.ident} {want['dims']}: windows of another feature-set version cannot calibrate this "
            f"model; {RECORD_HINT} (into a new folder)"
        )
    if found.get("columns_sha256") != want["columns_sha256"]:
        raise DataFormatError(
            f"{where}: feature set {ident} has the right name but different column names; {RECORD_HINT}"
        )


# ---- one shard -------------------------------------------------------------------------------------------
def write_shard(path: Path, inputs: ModelInputs, feature_set: FeatureSet, source: str) -> str:
    """Write ``inputs`` (N windows) as one shard (atomically); return its SHA-256."""
    n, steps = inputs.batch, inputs.steps
    if n < 1:
        raise DataFormatError("a calibration shard needs at least one window")
    arrays: dict[str, np.ndarray] = {}
    for m in FEATURES:
        x = np.nan_to_num(np.asarray(getattr(inputs, m), dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        small = float(np.abs(x).max(initial=0.0)) <= FP16_LIMIT
        arrays[m] = x.astype(np.float16) if small else x
    for m in MASKS:
        arrays[m] = np.asarray(getattr(inputs, m), dtype=bool).astype(np.uint8)
    meta = {
        "format": SHARD_FORMAT,
        "feature_set": feature_record(feature_set),
        "windows": n,
        "steps": steps,
        "source": source,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    with private_open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    digest = file_sha256(tmp)
    os.replace(tmp, path)
    return digest


def _read_member(zf: zipfile.ZipFile, name: str, where: str) -> np.ndarray:
    info = zf.getinfo(f"{name}.npy")
    if info.file_size > MAX_ARRAY_BYTES:
        raise DataFormatError(f"{where}: array '{name}' is {info.file_size} bytes, more than a shard may hold")
    with zf.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise DataFormatError(f"{where}: array '{name}' has an unsupported .npy version {version}")
        if dtype.hasobject or fortran:
            raise DataFormatError(f"{where}: array '{name}' holds objects or is not C-ordered")
        need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize
        if need > info.file_size:
            raise DataFormatError(f"{where}: array '{name}' claims {need} bytes but the member holds fewer")
    with zf.open(info) as fp:
        return np.lib.format.read_array(fp, allow_pickle=False)


def _decode(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    where = f"calibration shard {path}"
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            want = {f"{m}.npy" for m in MEMBERS}
            if names != want:
                missing, extra = sorted(want - names), sorted(names - want)
                raise DataFormatError(
                    f"{where} is not a calibration shard (missing {missing or 'nothing'}, unexpected "
                    f"{extra[:5] or 'nothing'}); {RECORD_HINT}"
                )
            arrays = {m: _read_member(zf, m, where) for m in MEMBERS}
        meta_raw = arrays.pop("meta")
        if meta_raw.dtype != np.uint8 or meta_raw.ndim != 1:
            raise DataFormatError(f"{where}: 'meta' must be a 1-D uint8 array of JSON")
        meta = json.loads(meta_raw.tobytes().decode("utf-8"))
    except DataFormatError:
        raise
    except Exception as exc:  # zip/zlib/npy/JSON decoders raise many types on corrupt input
        raise DataFormatError(
            f"{where} is corrupt or truncated ({type(exc).__name__}: {str(exc)[:160]}); delete the folder's "
            f"damaged shard and its manifest entry, or {RECORD_HINT}"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != SHARD_FORMAT:
        raise DataFormatError(f"{where}: no '{SHARD_FORMAT}' format tag in its metadata")
    return arrays, meta


def read_shard(path: str | Path, expected: FeatureSet | None = None) -> tuple[ModelInputs, dict[str, Any]]:
    """One shard → (windows as ModelInputs with float32 features and bool masks, its metadata)."""
    p = Path(path)
    where = f"calibration shard {p}"
    if not p.is_file():
        raise DataFormatError(f"{where} does not exist; {RECORD_HINT}")
    arrays, meta = _decode(p)
    if expected is not None:
        check_feature_record(meta.get("feature_set"), expected, where)
    dims = (meta.get("feature_set") or {}).get("dims") if isinstance(meta.get("feature_set"), dict) else None
    n, steps = meta.get("windows"), meta.get("steps")
    if not isinstance(n, int) or not isinstance(steps, int) or n < 1 or steps < 1 or not isinstance(dims, dict):
        raise DataFormatError(f"{where}: metadata lacks a valid window count, step count or dims")
    out: dict[str, np.ndarray] = {}
    for m in FEATURES:
        x = arrays[m]
        if x.dtype not in (np.float16, np.float32) or x.shape != (n, steps, dims.get(m)):
            raise DataFormatError(
                f"{where}: '{m}' is {x.dtype} {x.shape}, expected float16/float32 {(n, steps, dims.get(m))}"
            )
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise DataFormatError(f"{where}: '{m}' holds NaN or infinite values")
        out[m] = x
    for m in MASKS:
        k = arrays[m]
        if k.dtype not in (np.uint8, np.bool_) or k.shape != (n, steps):
            raise DataFormatError(f"{where}: '{m}' is {k.dtype} {k.shape}, expected uint8 {(n, steps)}")
        if k.dtype == np.uint8 and k.size and int(k.max()) > 1:
            raise DataFormatError(f"{where}: '{m}' holds values other than 0 and 1")
        out[m] = k.astype(bool)
    return ModelInputs(**out), meta


# ---- a folder of shards ----------------------------------------------------------------------------------
@dataclass
class Manifest:
    feature_set: dict[str, Any]
    shards: list[dict[str, Any]] = field(default_factory=list)

    @property
    def windows(self) -> int:
        return sum(int(s["windows"]) for s in self.shards)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "feature_set": self.feature_set,
            "windows": self.windows,
            "shards": self.shards,
        }


def read_manifest(directory: str | Path) -> Manifest:
    d = Path(directory)
    p = d / MANIFEST
    if not d.is_dir():
        raise DataFormatError(f"calibration folder {d} does not exist; {RECORD_HINT}")
    if not p.is_file():
        raise DataFormatError(f"{d} has no {MANIFEST}: it is not a calibration folder; {RECORD_HINT}")
    try:
        if p.stat().st_size > MAX_MANIFEST_BYTES:
            raise ValueError("manifest too large")
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{p} is not readable JSON ({exc}); {RECORD_HINT}") from None
    if not isinstance(raw, dict) or raw.get("format") != MANIFEST_FORMAT or not isinstance(raw.get("shards"), list):
        raise DataFormatError(f"{p} is not an mmcl calibration manifest (no '{MANIFEST_FORMAT}' tag)")
    for s in raw["shards"]:
        ok = (
            isinstance(s, dict)
            and isinstance(s.get("file"), str)
            and _SHARD_NAME.match(s["file"])
            and isinstance(s.get("windows"), int)
            and s["windows"] >= 1
            and isinstance(s.get("sha256"), str)
        )
        if not ok:
            raise DataFormatError(f"{p}: malformed shard entry {str(s)[:120]}")
    return Manifest(feature_set=raw.get("feature_set"), shards=list(raw["shards"]))


def write_manifest(directory: Path, manifest: Manifest) -> None:
    tmp = directory / f".{MANIFEST}.tmp"
    write_private_text(tmp, json.dumps(manifest.to_dict(), indent=1) + "\n")
    os.replace(tmp, directory / MANIFEST)


@dataclass
class CalibrationSet:
    """Windows read from a calibration folder."""

    inputs: ModelInputs
    total: int  # windows in the folder
    shards: int
    sources: dict[str, int]  # windows per recording source (monitor / extract / ...)

    def batches(self, size: int) -> list[ModelInputs]:
        return [self.inputs.select(slice(i, i + size)) for i in range(0, self.inputs.batch, size)]


def read_calibration(directory: str | Path, expected: FeatureSet, max_windows: int | None = None) -> CalibrationSet:
    """Every shard of ``directory`` (checked against the manifest's checksums), then ``max_windows`` of
    them evenly spaced over the recording order (all when None)."""
    d = Path(directory)
    manifest = read_manifest(d)
    check_feature_record(manifest.feature_set, expected, f"calibration folder {d}")
    if not manifest.shards:
        raise DataFormatError(f"calibration folder {d} lists no shards; {RECORD_HINT}")
    parts: list[ModelInputs] = []
    sources: dict[str, int] = {}
    for entry in manifest.shards:
        path = d / entry["file"]
        if not path.is_file():
            raise DataFormatError(f"{path} is listed in {d / MANIFEST} but missing; {RECORD_HINT}")
        if file_sha256(path) != entry["sha256"]:
            raise DataFormatError(
                f"{path} does not match the checksum in {d / MANIFEST} (damaged or replaced); {RECORD_HINT}"
            )
        inputs, meta = read_shard(path, expected)
        if inputs.batch != entry["windows"]:
            raise DataFormatError(f"{path} holds {inputs.batch} windows, the manifest says {entry['windows']}")
        parts.append(inputs)
        src = str(meta.get("source", "unknown"))
        sources[src] = sources.get(src, 0) + inputs.batch
    steps = {p.steps for p in parts}
    if len(steps) != 1:
        raise DataFormatError(
            f"calibration folder {d} mixes windows of {sorted(steps)} steps; keep one window length per folder"
        )
    columns = zip(*(p.as_tuple() for p in parts), strict=True)
    joined = ModelInputs(*(np.concatenate(arrs, axis=0) for arrs in columns))
    total = joined.batch
    if max_windows is not None and max_windows < total:
        idx = np.unique(np.linspace(0, total - 1, max_windows).round().astype(np.int64))
        joined = joined.select(list(idx))
    return CalibrationSet(joined, total, len(parts), sources)


class ShardWriter:
    """Appends windows to a calibration folder, one shard per ``shard_windows``; one owner thread.

    An existing folder is continued (new shards after the old ones) when it holds the same feature set,
    and refused otherwise. The manifest is rewritten atomically after every shard, so a session that
    ends abruptly leaves a readable folder behind.
    """

    def __init__(self, directory: str | Path, feature_set: FeatureSet, *, source: str, shard_windows: int = 64) -> None:
        self.directory = Path(directory)
        self.feature_set = feature_set
        self.source = source
        self.shard_windows = shard_windows
        if (self.directory / MANIFEST).exists():
            self.manifest = read_manifest(self.directory)
            check_feature_record(self.manifest.feature_set, feature_set, f"calibration folder {self.directory}")
        else:
            if self.directory.exists() and not self.directory.is_dir():
                raise DataFormatError(f"{self.directory} exists and is not a folder; pick another --record-calib")
            private_dir(self.directory)
            self.manifest = Manifest(feature_record(feature_set))
            write_manifest(self.directory, self.manifest)
        self._pending: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []

    @property
    def windows(self) -> int:
        return self.manifest.windows + len(self._pending)

    def add(self, features: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> None:
        """One window: features[m] (L, D_m), masks[m] (L,). Copied; a shard is written when full."""
        self._pending.append(
            (
                {m: np.array(features[m], dtype=np.float32) for m in FEATURES},
                {m: np.array(masks[m], dtype=bool) for m in FEATURES},
            )
        )
        if len(self._pending) >= self.shard_windows:
            self.flush()

    def add_inputs(self, inputs: ModelInputs) -> None:
        """Many windows at once (after any pending ones), in shards of ``shard_windows``."""
        self.flush()
        for start in range(0, inputs.batch, self.shard_windows):
            self.write_batch(inputs.select(slice(start, start + self.shard_windows)))

    def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        inputs = ModelInputs(
            **{m: np.stack([f[m] for f, _ in batch]) for m in FEATURES},
            **{f"{m}_mask": np.stack([k[m] for _, k in batch]) for m in FEATURES},
        )
        self.write_batch(inputs)

    def write_batch(self, inputs: ModelInputs) -> Path:
        """Write ``inputs`` as the next shard and list it in the manifest."""
        k = len(self.manifest.shards)
        while (path := self.directory / f"shard-{k:05d}.npz").exists():
            k += 1
        digest = write_shard(path, inputs, self.feature_set, self.source)
        self.manifest.shards.append(
            {"file": path.name, "windows": inputs.batch, "sha256": digest, "source": self.source}
        )
        write_manifest(self.directory, self.manifest)
        log.debug("calibration: wrote %s (%d windows)", path, inputs.batch)
        return path

    def close(self) -> None:
        self.flush()
