"""Calibration shards: round trip, feature-set version checks, corrupt files (hypothesis), the live recorder."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers_calibration import OLD_FEATURE_SET, live_windows, planted_live_pickle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibration.config import CalibrationConfig
from calibration.recorder import ShardRecorder, record_dataset_windows
from calibration.shards import MANIFEST, ShardWriter, read_calibration, read_shard, write_shard
from model.errors import DataFormatError
from model.featureset import LIVE_FEATURE_SET

FP16_TOL = 2e-3  # relative: float16 keeps ~11 bits of mantissa


def _close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=FP16_TOL, atol=1e-4)


def test_round_trip_keeps_windows_masks_and_feature_set(tmp_path: Path) -> None:
    x = live_windows(10, seed=1)
    w = ShardWriter(tmp_path / "c", LIVE_FEATURE_SET, source="test", shard_windows=4)
    w.add_inputs(x)
    w.close()
    manifest = json.loads((tmp_path / "c" / MANIFEST).read_text())
    assert [s["windows"] for s in manifest["shards"]] == [4, 4, 2]
    assert manifest["feature_set"]["version"] == LIVE_FEATURE_SET.version and manifest["windows"] == 10
    got = read_calibration(tmp_path / "c", LIVE_FEATURE_SET)
    assert got.total == 10 and got.shards == 3 and got.sources == {"test": 10}
    for a, b in zip(got.inputs.as_tuple(), x.as_tuple(), strict=True):
        if a.dtype == bool:
            np.testing.assert_array_equal(a, b)
        else:
            _close(a, b)
    sub = read_calibration(tmp_path / "c", LIVE_FEATURE_SET, max_windows=4)
    assert sub.inputs.batch == 4 and sub.total == 10
    _close(sub.inputs.audio[-1], x.audio[-1])  # evenly spaced: first and last kept
    # an existing folder is continued, not overwritten
    w2 = ShardWriter(tmp_path / "c", LIVE_FEATURE_SET, source="more", shard_windows=4)
    w2.add_inputs(live_windows(3, seed=2))
    assert read_calibration(tmp_path / "c", LIVE_FEATURE_SET).sources == {"test": 10, "more": 3}


def test_large_values_are_stored_in_float32(tmp_path: Path) -> None:
    x = live_windows(2)
    x.audio[0, 0, 0] = 1e6  # beyond float16
    write_shard(tmp_path / "shard-00000.npz", x, LIVE_FEATURE_SET, "test")
    got, meta = read_shard(tmp_path / "shard-00000.npz", LIVE_FEATURE_SET)
    assert got.audio[0, 0, 0] == 1e6 and meta["windows"] == 2


def test_windows_of_another_feature_set_version_are_refused(tmp_path: Path) -> None:
    w = ShardWriter(tmp_path / "old", OLD_FEATURE_SET, source="monitor", shard_windows=8)
    w.add_inputs(live_windows(3))
    with pytest.raises(DataFormatError, match=rf"mmcl-live@live-v0.*{LIVE_FEATURE_SET.ident}.*record-calib"):
        read_calibration(tmp_path / "old", LIVE_FEATURE_SET)
    with pytest.raises(DataFormatError, match="live-v0"):
        read_shard(tmp_path / "old" / "shard-00000.npz", LIVE_FEATURE_SET)
    # a manifest edited to claim the current version does not get an old shard through
    m = json.loads((tmp_path / "old" / MANIFEST).read_text())
    m["feature_set"]["version"] = LIVE_FEATURE_SET.version
    (tmp_path / "old" / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(DataFormatError, match="live-v0"):
        read_calibration(tmp_path / "old", LIVE_FEATURE_SET)
    # recording into a folder of another feature set is refused up front
    ShardWriter(tmp_path / "old2", OLD_FEATURE_SET, source="x").add_inputs(live_windows(1))
    with pytest.raises(DataFormatError, match="live-v0"):
        ShardWriter(tmp_path / "old2", LIVE_FEATURE_SET, source="monitor")


def test_damaged_or_missing_shards_and_folders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"does not exist.*record-calib"):
        read_calibration(tmp_path / "nothing", LIVE_FEATURE_SET)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match=r"no manifest\.json"):
        read_calibration(tmp_path / "empty", LIVE_FEATURE_SET)
    w = ShardWriter(tmp_path / "c", LIVE_FEATURE_SET, source="test", shard_windows=2)
    w.add_inputs(live_windows(4))
    shard = tmp_path / "c" / "shard-00001.npz"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="checksum"):
        read_calibration(tmp_path / "c", LIVE_FEATURE_SET)
    shard.unlink()
    with pytest.raises(DataFormatError, match="missing"):
        read_calibration(tmp_path / "c", LIVE_FEATURE_SET)
    m = json.loads((tmp_path / "c" / MANIFEST).read_text())
    m["shards"][0]["file"] = "../../etc/passwd"
    (tmp_path / "c" / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(DataFormatError, match="malformed shard entry"):
        read_calibration(tmp_path / "c", LIVE_FEATURE_SET)


# ---- fuzzing the shard reader ------------------------------------------------------------------------------
_VALID = io.BytesIO()


def _valid_shard_bytes() -> bytes:
    if not _VALID.getvalue():
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "shard-00000.npz"
            write_shard(p, live_windows(3, steps=5, seed=4), LIVE_FEATURE_SET, "fuzz")
            _VALID.write(p.read_bytes())
    return _VALID.getvalue()


def _members(raw: bytes) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return {n[:-4]: np.load(io.BytesIO(zf.read(n)), allow_pickle=False) for n in zf.namelist()}


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _check_reader(tmp_path: Path, payload: bytes) -> None:
    p = tmp_path / "shard-00000.npz"
    p.write_bytes(payload)
    t0 = time.monotonic()
    try:
        got, _meta = read_shard(p, LIVE_FEATURE_SET)
    except DataFormatError as exc:
        assert str(p) in str(exc)  # the message names the file
    else:  # a mutation that left the shard valid must still give well-formed windows
        assert got.vision.shape[1:] == (5, LIVE_FEATURE_SET.dims["vision"]) and got.vision_mask.dtype == bool
        assert np.isfinite(got.text).all()
    assert time.monotonic() - t0 < 5.0


FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_arbitrary_bytes(tmp_path: Path, payload: bytes) -> None:
    _check_reader(tmp_path, payload)


@FUZZ
@given(st.data())
def test_fuzz_truncated_and_bit_flipped_shards(tmp_path: Path, data: st.DataObject) -> None:
    raw = bytearray(_valid_shard_bytes())
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="cut")]
    for _ in range(data.draw(st.integers(0, 8), label="flips")):
        if raw:
            i = data.draw(st.integers(0, len(raw) - 1), label="at")
            raw[i] ^= data.draw(st.integers(1, 255), label="mask")
    _check_reader(tmp_path, bytes(raw))


_CORRUPTIONS = [
    "drop",
    "float64",
    "int32",
    "object",
    "shape",
    "nan",
    "mask2",
    "meta_text",
    "meta_json",
    "meta_count",
    "extra_member",
    "fortran",
]


@FUZZ
@given(st.sampled_from(["vision", "audio", "text", "vision_mask", "text_mask", "meta"]), st.sampled_from(_CORRUPTIONS))
def test_fuzz_structurally_malformed_shards(tmp_path: Path, member: str, how: str) -> None:
    arrays = _members(_valid_shard_bytes())
    a = arrays[member]
    if how == "drop":
        del arrays[member]
    elif how == "float64":
        arrays[member] = a.astype(np.float64)
    elif how == "int32":
        arrays[member] = a.astype(np.int32)
    elif how == "object":
        arrays[member] = np.array([{"x": 1}, None], dtype=object)
    elif how == "shape":
        arrays[member] = a.reshape(-1)[:-1]
    elif how == "nan" and a.dtype.kind == "f":
        b = a.copy()
        b.reshape(-1)[0] = np.nan
        arrays[member] = b
    elif how == "mask2" and member.endswith("mask"):
        arrays[member] = a + 2
    elif how == "meta_text":
        arrays["meta"] = np.frombuffer(b"\xff\xfe not json", dtype=np.uint8)
    elif how == "meta_json":
        arrays["meta"] = np.frombuffer(json.dumps([1, 2, 3]).encode(), dtype=np.uint8)
    elif how == "meta_count":
        meta = json.loads(arrays["meta"].tobytes())
        meta["windows"] = 7
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    elif how == "extra_member":
        arrays["payload"] = np.zeros(3)
    elif how == "fortran" and a.ndim >= 2:
        arrays[member] = np.asfortranarray(a)
    else:
        return  # this corruption does not apply to this member
    if how == "object":  # savez pickles object arrays; the reader must refuse without unpickling
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        payload = buf.getvalue()
    else:
        payload = _npz(arrays)
    p = tmp_path / "shard-00000.npz"
    p.write_bytes(payload)
    with pytest.raises(DataFormatError):
        read_shard(p, LIVE_FEATURE_SET)


# ---- the live recorder -------------------------------------------------------------------------------------
def _offer(rec: ShardRecorder, x, rows) -> None:
    for i in rows:
        rec(
            {m: getattr(x, m)[i] for m in ("vision", "audio", "text")},
            {m: getattr(x, f"{m}_mask")[i] for m in ("vision", "audio", "text")},
        )


def test_recorder_keeps_every_kth_window_up_to_the_cap(tmp_path: Path) -> None:
    cfg = CalibrationConfig(record_stride=2, record_max_windows=10, shard_windows=4)
    x = live_windows(25, seed=5)
    rec = ShardRecorder(tmp_path / "rec", LIVE_FEATURE_SET, cfg)
    _offer(rec, x, range(25))
    stats = rec.close()
    assert (stats.seen, stats.kept, stats.written, stats.dropped, stats.shards) == (25, 10, 10, 0, 3)
    assert not any(t.name == "calib-writer" and t.is_alive() for t in threading.enumerate())
    got = read_calibration(tmp_path / "rec", LIVE_FEATURE_SET)
    _close(got.inputs.audio, x.audio[0:20:2])
    np.testing.assert_array_equal(got.inputs.text_mask, x.text_mask[0:20:2])


def test_recorder_drops_newest_when_the_writer_is_behind(tmp_path: Path, monkeypatch) -> None:
    gate = threading.Event()
    real = ShardWriter.write_batch

    def slow_write(self, inputs):  # the disk stalls until the gate opens
        gate.wait(10)
        return real(self, inputs)

    monkeypatch.setattr(ShardWriter, "write_batch", slow_write)
    cfg = CalibrationConfig(record_stride=1, record_max_windows=100, shard_windows=2, writer_queue=1)
    rec = ShardRecorder(tmp_path / "rec", LIVE_FEATURE_SET, cfg)
    x = live_windows(12, seed=6)
    _offer(rec, x, range(2))  # shard 1: taken by the writer, which blocks
    time.sleep(0.3)
    _offer(rec, x, range(2, 12))  # shard 2 waits in the queue; shards 3-6 are dropped (drop-newest)
    assert rec.stats().dropped == 8
    gate.set()
    stats = rec.close()
    assert stats.written == 4 and stats.dropped == 8 and stats.kept == 12
    got = read_calibration(tmp_path / "rec", LIVE_FEATURE_SET)
    _close(got.inputs.vision, x.vision[:4])


def test_dataset_windows_become_shards_without_the_test_split(tmp_path: Path) -> None:
    data = planted_live_pickle(tmp_path / "d.pkl", n=(20, 7, 9))
    n = record_dataset_windows(data, tmp_path / "c", shard_windows=8)
    assert n == 27
    got = read_calibration(tmp_path / "c", LIVE_FEATURE_SET)
    assert got.total == 27 and got.sources == {"extract": 27} and got.inputs.steps == 10


@pytest.mark.slow
def test_mmcl_extract_records_calibration_shards(shared_data: Path, tmp_path: Path) -> None:
    """`mmcl extract … --record-calib DIR` on real clips: the train+valid windows become shards that the
    quantiser reads; the test split stays out."""
    import csv
    import pickle

    from typer.testing import CliRunner

    from mmcl.cli import app

    media = shared_data / "media" / "crema_d"
    labels = tmp_path / "labels.csv"
    rows = [("1001_DFA_HAP_XX.flv", "2", "train"), ("1001_DFA_NEU_XX.flv", "0", "valid"),
            ("1001_DFA_SAD_XX.flv", "-2", "test")]  # fmt: skip
    with labels.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "start", "end", "label", "split"])
        w.writerows((str(media / p), "", "", y, s) for p, y, s in rows)
    out = tmp_path / "data.pkl"
    args = ["extract", *(str(media / p) for p, _, _ in rows), "--labels", str(labels), "--out", str(out),
            "--record-calib", str(tmp_path / "calib"), "--set", "features.whisper_beam_size=1"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "calibration windows: 2 (train + valid" in res.output
    got = read_calibration(tmp_path / "calib", LIVE_FEATURE_SET)
    assert got.total == 2 and got.sources == {"extract": 2} and got.inputs.steps == 50
    with out.open("rb") as f:
        raw = pickle.load(f)
    _close(got.inputs.vision[0], raw["train"]["vision"][0])
    assert got.inputs.vision_mask.any() and got.inputs.audio_mask.any()
