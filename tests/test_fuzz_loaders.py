"""Fuzzing the dataset loaders (MMSA and MulT pickles, CMDC folders) with hypothesis.

Property: ``load_dataset`` returns a consistent ``MultimodalData`` or raises DataFormatError with a message —
never another exception, never a hang, never code run from the file. Inputs:

* pickles of fuzzed nested dicts holding numpy arrays of fuzzed shapes and dtypes (float with NaN/inf,
  ints, bools, strings, objects), lists, strings, numbers and None, under the real MMSA/MulT keys and
  made-up ones (``format`` auto, mmsa or mult-iemocap);
* valid pickles with random bytes flipped, inserted or cut off;
* pickles that reference a global outside the numpy allow-list (``os.system``, ``builtins.eval``, …):
  always refused, and the call never happens;
* CMDC folders with a fuzzed ``labels.csv`` (random text, or rows of fuzzed ids / scores / folds) and
  ``.npz`` features of fuzzed shapes and dtypes (or random bytes).
"""

from __future__ import annotations

import csv
import io
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from model.config import DataConfig
from model.data.loading import load_dataset
from model.data.types import MultimodalData
from model.errors import DataFormatError

COUNTS: dict[str, int] = {}
FUZZ = settings(max_examples=120, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
MMSA_KEYS = ["text", "audio", "vision", "audio_lengths", "vision_lengths", "text_lengths",
             "regression_labels", "classification_labels", "id", "raw_text", "text_bert", "labels",
             "audio_mask", "vision_mask", "text_mask"]  # fmt: skip


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1



dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.bool_, np.uint8, np.complex64, "<U3", "S2"])
small_shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    kind = draw(st.integers(0, 5))
    if kind == 0:  # a plausible (N, L, D) feature array, maybe with NaN/inf
        shape = (draw(st.integers(0, 3)), draw(st.integers(0, 5)), draw(st.integers(1, 4)))
        return draw(hnp.arrays(np.float32, shape, elements=st.floats(width=32, allow_nan=True)))
    if kind == 1:  # labels-like
        return draw(hnp.arrays(np.float32, (draw(st.integers(0, 3)),), elements=st.floats(width=32)))
    if kind == 2:
        return np.array(draw(st.lists(st.text(max_size=5), max_size=3)), dtype=object)
    if kind == 3:  # (N, 4, 2) one-hot-like labels
        return draw(hnp.arrays(np.float32, (draw(st.integers(0, 3)), 4, draw(st.integers(1, 3))),
                               elements=st.floats(0, 1, width=32)))  # fmt: skip
    return draw(hnp.arrays(draw(dtypes), draw(small_shapes)))


leaves = st.one_of(arrays(), st.none(), st.integers(), st.floats(), st.text(max_size=8),
                   st.lists(st.floats(), max_size=4), st.lists(st.lists(st.integers(), max_size=3), max_size=3))
keyed = st.dictionaries(st.one_of(st.sampled_from(MMSA_KEYS), st.text(max_size=6)), leaves, max_size=8)


@st.composite
def dataset_objects(draw: st.DrawFn) -> object:
    splits = {}
    for name in draw(st.lists(st.sampled_from(["train", "valid", "test", "dev", "feature_set"]), max_size=5)):
        splits[name] = draw(st.one_of(keyed, leaves))
    if draw(st.integers(0, 9)) == 0:
        return draw(leaves)
    return splits


def _good_mmsa(n: int = 3, seq: int = 4) -> dict:
    rng = np.random.default_rng(0)
    split = {
        "text": rng.standard_normal((n, seq, 5)).astype(np.float32),
        "audio": rng.standard_normal((n, seq, 3)).astype(np.float32),
        "vision": rng.standard_normal((n, seq, 4)).astype(np.float32),
        "audio_lengths": np.full(n, seq), "vision_lengths": np.full(n, seq),
        "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
        "classification_labels": rng.integers(0, 3, n), "id": np.array([f"v{i}" for i in range(n)], dtype=object),
        "raw_text": np.array(["words"] * n, dtype=object),
    }  # fmt: skip
    return {s: dict(split) for s in ("train", "valid", "test")}


def _good_mult(n: int = 3, seq: int = 4) -> dict:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (n, 4))
    split = {m: rng.standard_normal((n, seq, d)).astype(np.float32) for m, d in (("text", 5), ("audio", 3),
                                                                                ("vision", 4))}  # fmt: skip
    split["labels"] = np.stack([1 - y, y], axis=2).astype(np.float32)
    return {s: dict(split) for s in ("train", "valid", "test")}


@st.composite
def near_valid(draw: st.DrawFn) -> dict:
    """A valid MMSA or MulT dataset with 1–3 fields of random splits replaced or deleted."""
    data = draw(st.sampled_from([_good_mmsa, _good_mult]))(draw(st.integers(1, 3)), draw(st.integers(1, 4)))
    for _ in range(draw(st.integers(1, 3))):
        split = data[draw(st.sampled_from(["train", "valid", "test"]))]
        key = draw(st.sampled_from(sorted(split) + MMSA_KEYS))
        if draw(st.integers(0, 3)) == 0:
            split.pop(key, None)
        else:
            split[key] = draw(leaves)
    return data


def _load(path: Path, fmt: str, task: str | None = None) -> None:
    try:
        data = load_dataset(DataConfig(path=str(path), format=fmt), task=task)  # type: ignore[arg-type]
    except DataFormatError as exc:
        assert str(exc).strip()
        return
    assert isinstance(data, MultimodalData)
    for split in data.splits.values():
        for m in ("vision", "audio", "text"):
            assert np.isfinite(split.features(m)).all(), f"non-finite {m} features got through"


@FUZZ
@given(obj=dataset_objects(), fmt=st.sampled_from(["auto", "mmsa", "mult-iemocap"]),
       task=st.sampled_from([None, "classification"]), protocol=st.integers(2, 5))  # fmt: skip
def test_pickles_of_fuzzed_structures(obj: object, fmt: str, task: str | None, protocol: int) -> None:
    _count("pickled structures")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=protocol))
        _load(path, fmt, task)


@FUZZ
@given(obj=near_valid(), fmt=st.sampled_from(["auto", "mmsa", "mult-iemocap"]),
       task=st.sampled_from([None, "classification"]))  # fmt: skip
def test_pickles_of_nearly_valid_datasets(obj: object, fmt: str, task: str | None) -> None:
    _count("nearly valid pickles")
    protocol = 4
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=protocol))
        _load(path, fmt, task)


@FUZZ
@given(
    obj=st.builds(_good_mmsa, st.integers(1, 3), st.integers(1, 4)),
    edits=st.lists(st.tuples(st.sampled_from(["flip", "insert", "cut"]), st.integers(0, 10**6),
                             st.integers(0, 255)), min_size=1, max_size=4),
    fmt=st.sampled_from(["auto", "mmsa", "mult-iemocap"]),
)
def test_mutated_pickle_bytes(obj: dict, edits: list[tuple[str, int, int]], fmt: str) -> None:
    _count("mutated pickle bytes")
    raw = bytearray(pickle.dumps(obj, protocol=4))
    for op, pos, byte in edits:
        pos %= max(1, len(raw))
        if op == "flip" and raw:
            raw[pos] = byte
        elif op == "insert":
            raw.insert(pos, byte)
        else:
            del raw[pos:]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data.pkl"
        path.write_bytes(bytes(raw))
        _load(path, fmt)


CALLED: list[str] = []


def _canary(*args: object) -> None:  # referenced by name from the pickles below; must never run
    CALLED.append(repr(args))


FORBIDDEN = [("os", "system"), ("builtins", "eval"), ("builtins", "exec"), ("builtins", "getattr"),
             ("subprocess", "Popen"), ("numpy", "load"), ("numpy.testing", "assert_"), ("pickle", "loads"),
             ("torch", "load"), (__name__, "_canary"), ("collections", "defaultdict"), ("io", "open")]  # fmt: skip


def _global_pickle(module: str, name: str, wrap: int) -> bytes:
    """A protocol-2 pickle calling ``module.name('x')``, optionally wrapped in dicts like a dataset."""
    body = b"c" + module.encode() + b"\n" + name.encode() + b"\nX\x01\x00\x00\x00x\x85R"
    for _ in range(wrap):
        body = b"}X\x05\x00\x00\x00train" + body + b"s"
    return b"\x80\x02" + body + b"."


@settings(max_examples=60, deadline=5000)
@given(target=st.sampled_from(FORBIDDEN), wrap=st.integers(0, 2), fmt=st.sampled_from(["auto", "mmsa"]))
def test_pickles_with_foreign_globals_are_refused(target: tuple[str, str], wrap: int, fmt: str) -> None:
    _count("foreign globals")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "evil.pkl"
        path.write_bytes(_global_pickle(*target, wrap))
        with pytest.raises(DataFormatError, match=r"refused.*dataset pickles may only hold numpy arrays"):
            load_dataset(DataConfig(path=str(path), format=fmt))  # type: ignore[arg-type]
    assert not CALLED


# ---- CMDC folders ----------------------------------------------------------------------------------------
ids = st.text(alphabet="abcxyz019_-", min_size=1, max_size=6)
cells = st.one_of(st.text(max_size=6), st.floats().map(repr), st.integers(-5, 40).map(str),
                  st.sampled_from(["nan", "inf", "-1", "27", "", " 5 "]))  # fmt: skip


@st.composite
def cmdc_folders(draw: st.DrawFn) -> tuple[str | bytes, dict[str, object]]:
    if draw(st.integers(0, 5)) == 0:  # labels.csv of random text or bytes
        return draw(st.one_of(st.text(max_size=80), st.binary(max_size=80))), {}
    header = draw(st.sampled_from([["subject_id", "phq9"], ["subject_id", "phq9", "fold"], ["id", "score"],
                                   ["subject_id", "phq9", "fold", "extra"]]))  # fmt: skip
    subjects = draw(st.lists(ids, min_size=0, max_size=7))
    rows = []
    for s in subjects:
        row = [s, draw(cells)] + [draw(cells) for _ in header[2:]]
        if draw(st.integers(0, 6)) == 0:
            row = row[: draw(st.integers(0, len(row)))]  # a short row
        rows.append(row)
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *rows])
    files: dict[str, object] = {}
    dims = {"vision": draw(st.integers(1, 3)), "audio": draw(st.integers(1, 3)), "text": draw(st.integers(1, 3))}
    for s in set(subjects):
        kind = draw(st.integers(0, 7))
        if kind == 0:
            files[s] = draw(st.binary(max_size=40))  # not an npz at all
        elif kind == 1:
            files[s] = {m: draw(hnp.arrays(draw(dtypes), draw(small_shapes))) for m in dims}
        else:  # plausible, sometimes with NaN, an empty T or a missing modality
            arrs = {m: draw(hnp.arrays(np.float32, (draw(st.integers(0, 6)), d), elements=st.floats(width=32)))
                    for m, d in dims.items()}  # fmt: skip
            if kind == 2:
                arrs.pop(draw(st.sampled_from(sorted(arrs))))
            files[s] = arrs
    return buf.getvalue(), files


@FUZZ
@given(folder=cmdc_folders(), task=st.sampled_from(["regression", "classification"]))
def test_cmdc_folders(folder: tuple[str | bytes, dict[str, object]], task: str) -> None:
    _count("cmdc folders")
    labels, files = folder
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "cmdc"
        root.mkdir()
        if isinstance(labels, bytes):
            (root / "labels.csv").write_bytes(labels)
        else:
            (root / "labels.csv").write_text(labels, encoding="utf-8", errors="surrogatepass")
        for s, content in files.items():
            if isinstance(content, bytes):
                (root / f"{s}.npz").write_bytes(content)
            else:
                np.savez(root / f"{s}.npz", **content)  # type: ignore[arg-type]
        _load(root, "cmdc", task)
