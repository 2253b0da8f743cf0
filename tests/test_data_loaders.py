"""Loaders for the three formats on small files written here, plus corrupt and wrong-layout files."""

import csv
import os
import pickle

import numpy as np
import pytest

from model.config import DataConfig
from model.data.loading import load_dataset
from model.errors import DataFormatError

RNG = np.random.default_rng(0)


def _mmsa_split(n, seq=6, dims=(8, 3, 4), lengths=None):
    dt, da, dv = dims
    lengths = np.array(lengths if lengths is not None else [seq] * n)
    split = {
        "text": RNG.standard_normal((n, seq, dt)).astype(np.float32),
        "audio": RNG.standard_normal((n, seq, da)).astype(np.float32),
        "vision": RNG.standard_normal((n, seq, dv)).astype(np.float32),
        "audio_lengths": lengths.copy(),
        "vision_lengths": lengths.copy(),
        "regression_labels": RNG.uniform(-3, 3, n).astype(np.float32),
        "classification_labels": RNG.integers(0, 3, n),
        "id": np.array([f"vid_{i}" for i in range(n)], dtype=object),
        "raw_text": np.array(["some words"] * n, dtype=object),
    }
    for m in ("audio", "vision"):
        for i, length in enumerate(lengths):
            split[m][i, length:] = 0
    return split


def _write(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)
    return path


def test_mmsa_roundtrip_lengths_and_nonfinite(tmp_path, caplog):
    data = {s: _mmsa_split(5, lengths=[6, 4, 2, 6, 1]) for s in ("train", "valid", "test")}
    data["train"]["audio"][0, 0, 0] = -np.inf
    data["train"]["vision"][1, 1, 1] = np.nan
    ds = load_dataset(DataConfig(path=str(_write(tmp_path / "m.pkl", data))))
    tr = ds.splits["train"]
    assert ds.format == "mmsa" and ds.task == "regression" and ds.dims == {"vision": 4, "audio": 3, "text": 8}
    assert tr.audio_mask.sum(1).tolist() == [6, 4, 2, 6, 1]
    assert np.isfinite(tr.audio).all() and tr.audio[0, 0, 0] == 0 and tr.vision[1, 1, 1] == 0
    assert ds.meta["nonfinite_replaced"]["audio"] == 1 and "replaced 2 NaN/inf" in caplog.text
    assert tr.ids[0] == "vid_0" and tr.raw_text[0] == "some words"


def test_mmsa_classification_labels(tmp_path):
    data = {s: _mmsa_split(4) for s in ("train", "valid", "test")}
    ds = load_dataset(DataConfig(path=str(_write(tmp_path / "m.pkl", data))), task="classification")
    assert ds.task == "classification" and ds.num_classes == 3
    assert ds.splits["train"].labels.dtype == np.int64


def test_mmsa_unaligned_is_resampled_to_text_length(tmp_path):
    data = {}
    for s in ("train", "valid", "test"):
        sp = _mmsa_split(3, seq=5)
        sp["audio"] = RNG.standard_normal((3, 20, 3)).astype(np.float32)
        sp["audio_lengths"] = np.array([20, 10, 3])
        sp["audio"][1, 10:] = 0
        sp["audio"][2, 3:] = 0
        data[s] = sp
    ds = load_dataset(DataConfig(path=str(_write(tmp_path / "u.pkl", data))))
    tr = ds.splits["train"]
    assert tr.audio.shape == (3, 5, 3)
    assert tr.audio_mask.sum(1).tolist() == [5, 5, 3]
    # 20 real steps onto 5 bins: each bin is the mean of 4 consecutive steps
    raw = data["train"]["audio"][0]
    assert np.allclose(tr.audio[0, 0], raw[:4].mean(0), atol=1e-6)


def test_mmsa_text_bert_only_gets_clear_error(tmp_path):
    data = {s: _mmsa_split(2) for s in ("train", "valid", "test")}
    for s in data.values():
        s.pop("text")
        s["text_bert"] = np.zeros((2, 3, 6))
    with pytest.raises(DataFormatError, match=r"only 'text_bert' token ids.*'text'"):
        load_dataset(DataConfig(path=str(_write(tmp_path / "b.pkl", data))))


def test_mmsa_missing_key_and_bad_shapes_name_the_key(tmp_path):
    data = {s: _mmsa_split(2) for s in ("train", "valid", "test")}
    del data["valid"]["regression_labels"]
    with pytest.raises(DataFormatError, match=r"'valid' has no 'regression_labels'"):
        load_dataset(DataConfig(path=str(_write(tmp_path / "k.pkl", data))))
    data = {s: _mmsa_split(2) for s in ("train", "valid", "test")}
    data["test"]["vision"] = np.zeros((3, 6, 4), np.float32)
    with pytest.raises(DataFormatError, match=r"'test' has different sample counts.*'vision': 3"):
        load_dataset(DataConfig(path=str(_write(tmp_path / "s.pkl", data))))
    with pytest.raises(DataFormatError, match=r"expected a dict with 'train'"):
        load_dataset(DataConfig(path=str(_write(tmp_path / "l.pkl", [1, 2, 3]))))


def test_corrupt_and_malicious_pickles_are_refused(tmp_path):
    data = {s: _mmsa_split(2) for s in ("train", "valid", "test")}
    good = _write(tmp_path / "g.pkl", data)
    truncated = tmp_path / "t.pkl"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataFormatError, match=r"t.pkl"):
        load_dataset(DataConfig(path=str(truncated)))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /dev/null",))

    evil = _write(tmp_path / "e.pkl", {"train": Evil()})
    with pytest.raises(DataFormatError, match=r"refused.*(posix|os)\.system"):
        load_dataset(DataConfig(path=str(evil)))
    with pytest.raises(DataFormatError, match=r"does not exist"):
        load_dataset(DataConfig(path=str(tmp_path / "nope.pkl")))


def _mult_split(n, onehot=True):
    labels = RNG.integers(0, 2, (n, 4))
    return {
        "text": RNG.standard_normal((n, 20, 300)).astype(np.float32),
        "audio": RNG.standard_normal((n, 20, 74)).astype(np.float32),
        "vision": RNG.standard_normal((n, 20, 35)).astype(np.float32),
        "labels": np.stack([1 - labels, labels], axis=2).astype(np.float32) if onehot else labels,
    }


@pytest.mark.parametrize("onehot", [True, False])
def test_mult_iemocap(tmp_path, onehot):
    data = {s: _mult_split(4, onehot) for s in ("train", "valid", "test")}
    data["train"]["audio"][0, :5] = 0  # leading padding steps
    data["train"]["text"][0, :5] = 0
    data["train"]["vision"][0, :5] = 0
    ds = load_dataset(DataConfig(path=str(_write(tmp_path / "iemocap_data.pkl", data))))
    assert ds.format == "mult-iemocap" and ds.num_labels == 4 and ds.num_classes == 2
    assert ds.label_names == ["Neutral", "Happy", "Sad", "Angry"]
    expect = data["train"]["labels"].argmax(2) if onehot else data["train"]["labels"]
    assert (ds.splits["train"].labels == expect).all()
    assert ds.splits["train"].audio_mask[0].sum() == 15
    bad = {s: _mult_split(2) for s in ("train", "valid", "test")}
    bad["valid"]["labels"] = np.zeros((2, 3))
    with pytest.raises(DataFormatError, match=r"labels' has shape"):
        load_dataset(DataConfig(path=str(_write(tmp_path / "bad.pkl", bad)), format="mult-iemocap"))


def _cmdc(tmp_path, n=15, layout="npz"):
    root = tmp_path / "cmdc"
    root.mkdir()
    with (root / "labels.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["subject_id", "phq9"])
        for i in range(n):
            w.writerow([f"s{i:02d}", (i * 7) % 27])
    for i in range(n):
        arrays = {"vision": RNG.standard_normal((30 + i, 6)), "audio": RNG.standard_normal((80, 4)),
                  "text": RNG.standard_normal((12, 9))}
        if layout == "npz":
            np.savez(root / f"s{i:02d}.npz", **arrays)
        else:
            (root / f"s{i:02d}").mkdir()
            for m, a in arrays.items():
                np.save(root / f"s{i:02d}" / f"{m}.npy", a)
    return root


@pytest.mark.parametrize("layout", ["npz", "npy"])
def test_cmdc_subject_folds_without_leakage(tmp_path, layout):
    root = _cmdc(tmp_path, layout=layout)
    seen = {}
    for fold in range(5):
        ds = load_dataset(DataConfig(path=str(root), fold=fold, max_len=10), task="regression")
        ids = {s: set(ds.splits[s].ids) for s in ("train", "valid", "test")}
        assert not (ids["train"] & ids["valid"]) and not (ids["train"] & ids["test"])
        assert not (ids["valid"] & ids["test"])
        assert sum(len(v) for v in ids.values()) == 15
        for sid in ids["test"]:
            seen[sid] = seen.get(sid, 0) + 1
        assert ds.splits["train"].vision.shape[1:] == (10, 6)
    assert sorted(seen) == [f"s{i:02d}" for i in range(15)] and set(seen.values()) == {1}
    cls = load_dataset(DataConfig(path=str(root)), task="classification")
    tr = cls.splits["train"]
    assert set(np.unique(tr.labels)) <= {0, 1}
    assert ((tr.scores >= 9) == (tr.labels == 1)).all()


def test_cmdc_errors(tmp_path):
    root = _cmdc(tmp_path)
    (root / "s03.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFormatError, match=r"s03.*corrupt"):
        load_dataset(DataConfig(path=str(root)))
    (root / "s03.npz").unlink()
    with pytest.raises(DataFormatError, match=r"no features for subject 's03'"):
        load_dataset(DataConfig(path=str(root)))
    (root / "labels.csv").write_text("subject,score\na,1\n")
    with pytest.raises(DataFormatError, match=r"subject_id,phq9"):
        load_dataset(DataConfig(path=str(root)))
