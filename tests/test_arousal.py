"""The arousal head: learned from partly rated data, scored, saved, calibrated and shown by the engine."""

import csv

import numpy as np
import pytest
import torch

from model.config import ModelConfig, TrainConfig
from model.data.types import MultimodalData, Split
from model.errors import ConfigError
from model.featureset import LIVE_FEATURE_SET, MODALITIES

DIMS = {"vision": 6, "audio": 8, "text": 5}
SMALL = {"d_model": 32, "n_heads": 4, "head_hidden": 32}


def _split(rng: np.random.Generator, n: int, steps: int, prefix: str, rated: float = 0.6) -> Split:
    """Valence planted in the text, arousal in the voice; ``1 - rated`` of the samples have no arousal."""
    valence = rng.uniform(-3, 3, n).astype(np.float32)
    arousal = rng.uniform(-1, 1, n).astype(np.float32)
    x = {m: rng.normal(0, 0.3, (n, steps, d)).astype(np.float32) for m, d in DIMS.items()}
    x["text"][:, :, 0] += valence[:, None] / 3
    x["audio"][:, :, 0] += arousal[:, None]
    masks = {f"{m}_mask": np.ones((n, steps), bool) for m in MODALITIES}
    a = np.where(rng.random(n) < rated, arousal, np.nan).astype(np.float32)
    return Split(**x, **masks, labels=valence, ids=[f"{prefix}{i}" for i in range(n)], arousal=a)


def _data(seed: int = 0, rated: float = 0.6) -> MultimodalData:
    rng = np.random.default_rng(seed)
    splits = {s: _split(rng, n, 12, s, rated) for s, n in (("train", 500), ("valid", 100), ("test", 200))}
    return MultimodalData(name="arousal-planted", format="test", splits=splits, task="regression", label_kind="msa")


@pytest.fixture(scope="module")
def trained():
    from model.train import fit

    return fit(ModelConfig(**SMALL, arousal_head=True), TrainConfig(epochs=12, patience=12, lr=2e-3), _data())


def test_the_head_learns_arousal_from_the_rated_samples_and_keeps_valence(trained):
    assert trained.model.cfg.out_dim == 2
    assert trained.test["arousal_corr"] >= 0.7, trained.test
    assert trained.test["corr"] >= 0.7, trained.test  # valence (output 0) is still learned


def test_unrated_samples_add_nothing_to_the_loss():
    from model.losses import task_loss

    mcfg, tcfg = ModelConfig(**SMALL, arousal_head=True), TrainConfig()
    pred = torch.tensor([[0.5, 0.9], [1.0, -0.2]])
    target = torch.tensor([0.0, 1.0])
    none = task_loss(pred, target, mcfg, tcfg, torch.tensor([float("nan"), float("nan")]))
    assert none.item() == pytest.approx(0.25)  # valence L1 only
    one = task_loss(pred, target, mcfg, tcfg, torch.tensor([float("nan"), 0.3]))
    assert one.item() == pytest.approx(0.25 + 0.5)  # + |−0.2 − 0.3| on the one rated sample


def test_an_arousal_head_without_ratings_is_refused():
    from model.train import fit

    with pytest.raises(ConfigError, match="arousal"):
        fit(ModelConfig(**SMALL, arousal_head=True), TrainConfig(epochs=1), _data(rated=0.0))
    with pytest.raises(ConfigError, match="regression"):
        ModelConfig(task="classification", num_classes=2, arousal_head=True)


def test_predictions_csv_gets_arousal_columns_and_y_pred_stays_valence(trained, tmp_path):
    from model.evaluate import TaskInfo, predict, save_predictions

    data = _data()
    test = data.splits["test"]
    raw = predict(trained.model, test)
    info = TaskInfo(task="regression", label_kind="msa", arousal=True)
    save_predictions(tmp_path / "p.csv", raw, test, info)
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert list(rows[0]) == ["id", "y_true", "y_pred", "a_true", "a_pred"]
    assert float(rows[3]["y_pred"]) == pytest.approx(raw[3, 0], rel=1e-4)
    assert float(rows[3]["a_pred"]) == pytest.approx(raw[3, 1], rel=1e-4)
    unrated = [r for r, a in zip(rows, test.arousal, strict=True) if not np.isfinite(a)]
    assert unrated and all(r["a_true"] == "" for r in unrated)


def test_the_engine_reads_arousal_and_its_interval(trained):
    from model.backends import create_backend
    from model.checkpoint import LoadedCheckpoint
    from model.evaluate import TaskInfo
    from realtime.pipeline.inference import InferenceEngine
    from realtime.pipeline.windows import Window

    model = trained.model.eval()
    task = TaskInfo(task="regression", label_kind="msa", arousal=True)
    loaded = LoadedCheckpoint(model=model, model_cfg=model.cfg, task=task, feature_set=LIVE_FEATURE_SET, config={},
                              metrics={}, extra={}, path=None)  # fmt: skip
    engine = InferenceEngine(create_backend("eager", loaded), task, interval=(0.8, 0.9), arousal_interval=0.3)
    test = _data().splits["test"]
    i = int(np.argmax(np.nan_to_num(test.arousal, nan=-9.0)))
    feats = {m: test.features(m)[i] for m in MODALITIES}
    masks = {m: test.mask(m)[i] for m in MODALITIES}
    window = Window(index=0, t_start=0.0, t_end=1.0, features=feats, masks=masks, newest_input={}, samples={})
    pred = engine.predict(window)
    raw = model(*[torch.from_numpy(v[None]) for v in (*feats.values(), *masks.values())]).detach().numpy()[0]
    assert pred.arousal == pytest.approx(float(raw[1]), abs=1e-4)
    assert pred.value == pytest.approx(float(raw[0]), abs=1e-4)
    assert pred.arousal > 0.3  # the most aroused test sample
    d = pred.to_dict()
    assert d["arousal"] == pred.arousal and d["arousal_interval"] == {"half_width": 0.3, "level": 0.9}
    valence_only = InferenceEngine(create_backend("eager", loaded), TaskInfo(task="regression", label_kind="msa"))
    assert valence_only.predict(window).arousal is None and "arousal" not in valence_only.predict(window).to_dict()
