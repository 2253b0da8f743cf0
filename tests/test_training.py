"""Training end to end: the planted signal is learned; checkpoints round-trip; the CLI works on all formats."""

import json
import pickle

import numpy as np
import pytest
import torch

from model.config import DataConfig, ModelConfig, TrainConfig
from model.data.loading import load_dataset
from model.data.planted import make_planted_mmsa

SMALL = {"d_model": 32, "n_heads": 4, "head_hidden": 32}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    path = tmp_path_factory.mktemp("planted") / "planted.pkl"
    with path.open("wb") as f:
        pickle.dump(make_planted_mmsa(n_train=600, n_valid=200, n_test=300, seq_len=30, seed=1), f)
    return path


def test_planted_signal_is_learned_well_above_chance(planted):
    from model.train import fit

    data = load_dataset(DataConfig(path=str(planted)))
    y = data.splits["test"].labels
    majority = max(np.mean(y >= 0), np.mean(y < 0))  # best constant guess for has-0 Acc2
    res = fit(ModelConfig(**SMALL), TrainConfig(epochs=10, patience=10, seed=0), data)
    assert res.test["acc2_has0"] >= majority + 0.12, (res.test, majority)
    assert res.test["corr"] >= 0.35
    assert res.best_epoch >= 1 and len(res.history) == res.epochs_run


def test_training_is_deterministic_for_a_seed(planted):
    from model.train import fit

    data = load_dataset(DataConfig(path=str(planted)))
    small = data  # same object, two runs
    a = fit(ModelConfig(**SMALL), TrainConfig(epochs=2, patience=2, seed=3), small)
    b = fit(ModelConfig(**SMALL), TrainConfig(epochs=2, patience=2, seed=3), small)
    assert a.test == b.test


def test_checkpoint_round_trip_and_errors(planted, tmp_path):
    from model.checkpoint import load_checkpoint, save_checkpoint
    from model.errors import CheckpointError
    from model.evaluate import predict
    from model.featureset import LIVE_FEATURE_SET
    from model.train import fit

    data = load_dataset(DataConfig(path=str(planted)))
    res = fit(ModelConfig(**SMALL), TrainConfig(epochs=1, patience=1), data, out_dir=tmp_path / "run")
    ck = load_checkpoint(tmp_path / "run" / "best.pt")
    assert ck.model_cfg == res.model.cfg and ck.task.task == "regression"
    assert np.allclose(predict(ck.model, data.splits["test"]), predict(res.model, data.splits["test"]), atol=1e-6)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["mae"] == pytest.approx(res.test["mae"])
    raw = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert raw["feature_set"]["name"] == "mmsa-features" and raw["config"]["train"]["epochs"] == 1
    # FP16 storage halves the file and restores FP32 weights close to the originals
    save_checkpoint(tmp_path / "half.pt", res.model, task=ck.task, feature_set=ck.feature_set, half=True)
    half = load_checkpoint(tmp_path / "half.pt")
    assert next(half.model.parameters()).dtype == torch.float32
    assert (tmp_path / "half.pt").stat().st_size < 0.6 * (tmp_path / "run" / "best.pt").stat().st_size
    with pytest.raises(CheckpointError, match="trained on feature set mmsa-features"):
        load_checkpoint(tmp_path / "run" / "best.pt", expected_features=LIVE_FEATURE_SET)
    bad = tmp_path / "bad.pt"
    bad.write_bytes((tmp_path / "run" / "best.pt").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable mmcl checkpoint"):
        load_checkpoint(bad)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an mmcl checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_averaging_keeps_the_k_best_epochs_and_averages_their_weights():
    from model.train import _Keeper

    lin = torch.nn.Linear(2, 1)
    keeper = _Keeper(k=2, keep_last=False, higher=False)  # MAE: lower is better
    for epoch, (value, w) in enumerate([(0.9, 1.0), (0.5, 2.0), (float("nan"), 9.0), (0.7, 4.0), (0.8, 8.0)], 1):
        with torch.no_grad():
            lin.weight.fill_(w)
        keeper.offer(value, epoch, lin)
    assert keeper.epochs() == [2, 4]  # 0.5 and 0.7; NaN never kept
    np.testing.assert_allclose(keeper.state()["weight"].numpy(), 3.0)  # mean of 2 and 4
    last = _Keeper(k=2, keep_last=True, higher=False)
    for epoch, w in enumerate([1.0, 2.0, 6.0], 1):
        with torch.no_grad():
            lin.weight.fill_(w)
        last.offer(0.0, epoch, lin)
    assert last.epochs() == [2, 3]
    np.testing.assert_allclose(last.state()["weight"].numpy(), 4.0)


def test_fit_with_averaging_runs_and_is_deterministic(planted):
    from model.train import fit

    data = load_dataset(DataConfig(path=str(planted)))
    cfg = TrainConfig(epochs=3, patience=3, seed=1, average_best=2)
    a, b = fit(ModelConfig(**SMALL), cfg, data), fit(ModelConfig(**SMALL), cfg, data)
    single = fit(ModelConfig(**SMALL), TrainConfig(epochs=3, patience=3, seed=1), data)
    assert a.test == b.test and np.isfinite(a.test["mae"])
    assert a.test != single.test  # the averaged weights are not the single best epoch's
