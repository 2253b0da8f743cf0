"""Building an MMSA-format dataset from labelled media files (the engine of ``mmcl extract``).

Labels CSV: header with at least ``path,start,end,label`` (extra columns are ignored except the optional
``id`` and ``split`` ∈ train/valid/test, which override the automatic id and split). ``path`` is relative to
the CSV's folder or absolute; empty ``start``/``end`` mean the start/end of the file; ``label`` is a number
(sentiment score, e.g. −3…+3) or one of ``negative``/``neutral``/``positive`` (→ −1/0/+1).

Output pickle (MMSA layout, DESIGN.md §4, plus masks): a dict with ``train``, ``valid``, ``test``, each::

    vision (N, L, 56), audio (N, L, 34), text (N, L, 384)        float32
    vision_lengths, audio_lengths, text_lengths (N,)              int64: real steps (first), then zeros
    vision_mask, audio_mask, text_mask (N, L)                     uint8: 1 = observed step
    regression_labels (N,) float32, classification_labels (N,) int64 (0 neg / 1 neutral / 2 pos, by sign)
    id, raw_text                                                  lists of str

and at top level ``feature_set`` (``config.live_set.to_dict()``) and ``extract`` (settings and a per-file
report). Splits are by file (no file in two splits) unless ``split_by="segment"``.

Resume: every file's windows are written to ``<out>.parts/<hash>.pkl`` as soon as the file is done; a
re-run with the same settings reuses them, so nothing finished is lost when a run stops or a file fails.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from model.data.safe_pickle import safe_load_cache
from model.errors import DataFormatError
from realtime.features.config import FeatureConfig
from realtime.features.extract import OfflineExtractor, WindowArrays, segment_windows

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
_WORD_LABELS = {"negative": -1.0, "neg": -1.0, "neutral": 0.0, "positive": 1.0, "pos": 1.0}
CACHE_VERSION = 1


@dataclass(frozen=True)
class LabelRow:
    path: Path
    start: float | None
    end: float | None
    label: float
    id: str | None = None
    split: str | None = None


def _num(value: str, what: str, where: str) -> float | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        out = float(value)
    except ValueError:
        raise DataFormatError(f"{where}: {what} {value!r} is not a number of seconds") from None
    if not math.isfinite(out) or out < 0:
        raise DataFormatError(f"{where}: {what} must be a finite time >= 0, got {value!r}")
    return out


def read_labels(csv_path: str | Path) -> list[LabelRow]:
    """Parse a labels CSV (see module docstring); errors name the file and line."""
    p = Path(csv_path)
    if not p.is_file():
        raise DataFormatError(
            f"labels file {p} does not exist; pass --labels with a CSV of path,start,end,label"
        )
    rows: list[LabelRow] = []
    with p.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"path", "start", "end", "label"} - set(reader.fieldnames or [])
        if missing:
            raise DataFormatError(
                f"{p}: the header lacks {', '.join(sorted(missing))}; needs path,start,end,label"
            )
        for line, rec in enumerate(reader, start=2):
            where = f"{p}:{line}"
            raw_path = (rec.get("path") or "").strip()
            if not raw_path:
                raise DataFormatError(f"{where}: empty path")
            path = Path(raw_path)
            path = (path if path.is_absolute() else p.parent / path).resolve()
            start, end = _num(rec["start"], "start", where), _num(rec["end"], "end", where)
            if start is not None and end is not None and end <= start:
                raise DataFormatError(f"{where}: end ({end}) must be after start ({start})")
            raw_label = (rec.get("label") or "").strip()
            if raw_label.lower() in _WORD_LABELS:
                label = _WORD_LABELS[raw_label.lower()]
            else:
                try:
                    label = float(raw_label)
                except ValueError:
                    raise DataFormatError(
                        f"{where}: label {raw_label!r} is neither a number nor negative/neutral/positive"
                    ) from None
                if not math.isfinite(label):
                    raise DataFormatError(f"{where}: label must be finite, got {raw_label!r}")
            split = (rec.get("split") or "").strip().lower() or None
            if split is not None and split not in SPLITS:
                raise DataFormatError(f"{where}: split {split!r} is not one of train/valid/test")
            rows.append(LabelRow(path, start, end, label, (rec.get("id") or "").strip() or None, split))
    if not rows:
        raise DataFormatError(f"{p} has a header but no label rows")
    return rows


def sign_class(y: float) -> int:
    """0 negative, 1 neutral (exactly 0), 2 positive."""
    return 0 if y < 0 else (1 if y == 0 else 2)


def assign_splits(keys: list[str], valid_frac: float, test_frac: float, seed: int) -> dict[str, str]:
    """Shuffle ``keys`` with ``seed`` and cut test, valid, train. With ≥ 3 keys, a non-zero fraction gets
    at least one key, and train keeps at least one."""
    if not (0 <= valid_frac < 1 and 0 <= test_frac < 1 and valid_frac + test_frac < 1):
        raise DataFormatError("--valid-frac and --test-frac must be in [0, 1) and sum to less than 1")
    order = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys))]
    n = len(order)
    n_test, n_valid = round(test_frac * n), round(valid_frac * n)
    if n >= 3:
        n_test = max(n_test, 1 if test_frac > 0 else 0)
        n_valid = max(n_valid, 1 if valid_frac > 0 else 0)
    while n_test + n_valid >= n and (n_test or n_valid):
        if n_valid >= n_test and n_valid:
            n_valid -= 1
        else:
            n_test -= 1
    out = {k: "test" for k in order[:n_test]}
    out.update({k: "valid" for k in order[n_test : n_test + n_valid]})
    out.update({k: "train" for k in order[n_test + n_valid :]})
    return out


@dataclass
class Sample:
    id: str
    file: str
    label: float
    win: WindowArrays
    split: str | None = None


@dataclass
class ExtractReport:
    done: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unlabelled: list[str] = field(default_factory=list)
    rows_without_input: int = 0
    samples: int = 0
    split_sizes: dict[str, int] = field(default_factory=dict)
    face_rate: dict[str, float] = field(default_factory=dict)


def _cache_key(
    path: Path,
    rows: list[LabelRow],
    config: FeatureConfig,
    window_s: float,
    hop_s: float,
    allow_missing: bool,
) -> str:
    st = path.stat()
    parts = [
        CACHE_VERSION, config.live_set.ident, str(path), st.st_size, st.st_mtime_ns, window_s, hop_s,
        allow_missing,
        sorted((r.start or 0.0, r.end or -1.0, r.label, r.id or "", r.split or "") for r in rows),
        sorted((k, v) for k, v in vars(config).items() if k not in ("window_s",)),
    ]  # fmt: skip
    return hashlib.sha1(repr(parts).encode()).hexdigest()


def build_dataset(
    inputs: list[Path],
    rows: list[LabelRow],
    out: str | Path,
    config: FeatureConfig | None = None,
    *,
    window_s: float | None = None,
    hop_s: float = 0.0,
    split_by: Literal["file", "segment"] = "file",
    valid_frac: float = 0.15,
    test_frac: float = 0.15,
    seed: int = 0,
    allow_missing: bool = False,
    extractor: OfflineExtractor | None = None,
    on_file: Callable[[Path, str], None] | None = None,
) -> ExtractReport:
    """Extract every labelled input file and write the MMSA pickle to ``out`` (atomically).

    ``on_file(path, status)`` is called before each file (status "start") and after it ("done",
    "cached" or "failed: <reason>").
    """
    cfg = config or FeatureConfig()
    w = window_s if window_s is not None else cfg.window_s
    n_steps = round(w * cfg.grid_hz)
    if n_steps < 1 or abs(w * cfg.grid_hz - n_steps) > 1e-6:
        raise DataFormatError(f"--window {w} s must be a whole number of {1 / cfg.grid_hz:g} s steps")
    out = Path(out)
    parts = out.with_name(out.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    notify = on_file or (lambda _p, _s: None)
    report = ExtractReport()

    by_file: dict[Path, list[LabelRow]] = {}
    wanted = set(inputs)
    for r in rows:
        if r.path in wanted:
            by_file.setdefault(r.path, []).append(r)
        else:
            report.rows_without_input += 1
    report.unlabelled = [str(p) for p in inputs if p not in by_file]
    for p in report.unlabelled:
        log.warning("%s has no row in the labels CSV; skipped", p)

    ex = extractor or OfflineExtractor(cfg)
    samples: list[Sample] = []
    for path, file_rows in sorted(by_file.items()):
        notify(path, "start")
        part = parts / (hashlib.sha1(str(path).encode()).hexdigest()[:16] + ".pkl")
        try:
            key = _cache_key(path, file_rows, cfg, w, hop_s, allow_missing)
            got = _read_part(part, key)
            if got is not None:
                report.cached.append(str(path))
                notify(path, "cached")
            else:
                got = _extract_file(ex, path, file_rows, cfg, w, hop_s, allow_missing)
                _write_atomic(part, {"key": key, "samples": got})
                report.done.append(str(path))
                notify(path, "done")
        except Exception as exc:  # one bad file must not stop the others
            reason = str(exc) if hasattr(exc, "args") and str(exc) else type(exc).__name__
            if not isinstance(exc, (DataFormatError, OSError)):
                log.debug("extraction of %s failed", path, exc_info=True)
                reason = f"{type(exc).__name__}: {reason}"
            report.failed[str(path)] = reason
            notify(path, f"failed: {reason}")
            continue
        samples.extend(got)
        if got:
            report.face_rate[str(path)] = float(
                np.mean([s.win.vision_mask[: s.win.n_real].mean() for s in got])
            )

    _unique_ids(samples)
    if split_by == "file":
        split_of = assign_splits(sorted({s.file for s in samples}), valid_frac, test_frac, seed)
        for s in samples:
            s.split = s.split or split_of[s.file]
    elif split_by == "segment":
        split_of = assign_splits([s.id for s in samples], valid_frac, test_frac, seed)
        for s in samples:
            s.split = s.split or split_of[s.id]
    else:
        raise DataFormatError(f"--split-by must be file or segment, got {split_by!r}")
    if split_by == "file":
        _check_no_file_leak(samples)

    data: dict[str, Any] = {name: _pack([s for s in samples if s.split == name], n_steps) for name in SPLITS}
    data["feature_set"] = cfg.live_set.to_dict()
    report.samples = len(samples)
    report.split_sizes = {name: len(data[name]["id"]) for name in SPLITS}
    data["extract"] = {
        "window_s": w, "hop_s": hop_s, "step_hz": cfg.grid_hz, "split_by": split_by, "seed": seed,
        "valid_frac": valid_frac, "test_frac": test_frac, "failed": dict(report.failed),
        "files": sorted({s.file for s in samples}),
    }  # fmt: skip
    _write_atomic(out, data)
    return report


def _extract_file(
    ex: OfflineExtractor, path: Path, rows: list[LabelRow], cfg: FeatureConfig, w: float, hop_s: float,
    allow_missing: bool,
) -> list[Sample]:  # fmt: skip
    until = None if any(r.end is None for r in rows) else max(r.end for r in rows if r.end is not None) + 0.5
    ff = ex.file_features(path, allow_missing=allow_missing, until=until)
    out: list[Sample] = []
    for i, r in enumerate(sorted(rows, key=lambda r: (r.start or 0.0, r.end or math.inf))):
        base = r.id or f"{path.stem}_{i:03d}"
        wins = segment_windows(ff, r.start, r.end, cfg, w, hop_s)
        for j, win in enumerate(wins):
            sid = base if len(wins) == 1 else f"{base}#{j}"
            out.append(Sample(id=sid, file=str(path), label=r.label, win=win, split=r.split))
    return out


def _unique_ids(samples: list[Sample]) -> None:
    """Make ids unique across files (two files named the same in different folders)."""
    files_of: dict[str, set[str]] = {}
    for s in samples:
        files_of.setdefault(s.id, set()).add(s.file)
    for s in samples:
        if len(files_of[s.id]) > 1:
            s.id = f"{s.id}@{hashlib.sha1(s.file.encode()).hexdigest()[:6]}"


def _check_no_file_leak(samples: list[Sample]) -> None:
    seen: dict[str, str] = {}
    for s in samples:
        if seen.setdefault(s.file, s.split or "") != (s.split or ""):
            raise DataFormatError(
                f"{s.file} has rows in two splits ({seen[s.file]} and {s.split}) via the CSV's split column; "
                "with --split-by file every file must stay in one split"
            )


def _pack(samples: list[Sample], n_steps: int) -> dict[str, Any]:
    from model.featureset import AUDIO_COLUMNS, TEXT_COLUMNS, VISION_COLUMNS

    dims = {"vision": len(VISION_COLUMNS), "audio": len(AUDIO_COLUMNS), "text": len(TEXT_COLUMNS)}
    out: dict[str, Any] = {}
    for m, d in dims.items():
        out[m] = (
            np.stack([getattr(s.win, m) for s in samples]).astype(np.float32)
            if samples
            else np.zeros((0, n_steps, d), np.float32)
        )
        out[f"{m}_lengths"] = np.array([s.win.n_real for s in samples], dtype=np.int64)
        out[f"{m}_mask"] = (
            np.stack([getattr(s.win, f"{m}_mask") for s in samples]).astype(np.uint8)
            if samples
            else np.zeros((0, n_steps), np.uint8)
        )
    labels = np.array([s.label for s in samples], dtype=np.float32)
    out["regression_labels"] = labels
    out["classification_labels"] = np.array([sign_class(float(y)) for y in labels], dtype=np.int64)
    out["id"] = [s.id for s in samples]
    out["raw_text"] = [s.win.raw_text for s in samples]
    return out


def _read_part(part: Path, key: str) -> list[Sample] | None:
    if not part.is_file():
        return None
    try:
        blob = safe_load_cache(part)
    except DataFormatError:  # a torn, foreign or tampered file: recompute
        log.warning("ignoring unreadable cache file %s", part)
        return None
    if not isinstance(blob, dict) or blob.get("key") != key:
        return None
    return blob["samples"]


def _write_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with tmp.open("wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
