"""Confidence calibration: temperature scaling, ECE/Brier, conformal intervals, the command, the monitor."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_calibration import planted_live_pickle, snapshot_with
from rich.console import Console
from typer.testing import CliRunner

from calibration.confidence import (
    brier,
    conformal_half_width,
    coverage,
    ece,
    fit_temperature,
    reliability_bins,
    softmax,
)
from mmcl.cli import app
from model.checkpoint import load_checkpoint, save_checkpoint
from model.errors import DataFormatError
from model.evaluate import TaskInfo
from realtime.pipeline.inference import checkpoint_interval, checkpoint_temperature

SMALL_DIMS = {"vision": 6, "audio": 5, "text": 8}


def _miscalibrated(n: int, scale: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); the 'model' reports z · scale (overconfident for scale > 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.2, (n, 3))
    p = softmax(z)
    y = np.array([rng.choice(3, p=row) for row in p])
    return z * scale, y


def test_temperature_scaling_undoes_a_x4_overconfident_model() -> None:
    lv, yv = _miscalibrated(3000, 4.0, seed=0)
    lt, yt = _miscalibrated(3000, 4.0, seed=1)
    t = fit_temperature(lv, yv)
    assert t == pytest.approx(4.0, rel=0.12)
    before, after = ece(softmax(lt), yt), ece(softmax(lt, t), yt)
    assert before > 0.15 and after < 0.04 and after < before / 4
    assert brier(softmax(lt, t), yt) < brier(softmax(lt), yt)
    assert np.array_equal(softmax(lt, t).argmax(1), softmax(lt).argmax(1))  # accuracy unchanged


def test_ece_and_bins_follow_their_definition() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.35, 0.65], [0.5, 0.5]])
    labels = np.array([0, 1, 1, 1])
    bins = reliability_bins(probs, labels, n_bins=5)  # (0, .2], (.2, .4], (.4, .6], (.6, .8], (.8, 1]
    assert [b.count for b in bins] == [0, 0, 1, 2, 1]
    assert bins[3].confidence == pytest.approx(0.725) and bins[3].accuracy == pytest.approx(0.5)
    # |acc − conf| weighted: (0.5 ≥ 0.5 → class 0 wrong: acc 0 vs .5) + (|.5 − .725|·2) + (|1 − .9|)
    assert ece(probs, labels, 5) == pytest.approx((0.5 + 0.225 * 2 + 0.1) / 4)
    assert brier(np.array([[1.0, 0.0]]), np.array([1])) == pytest.approx(2.0)
    with pytest.raises(DataFormatError, match="class labels"):
        ece(probs, np.array([0, 1, 2, 1]))


def test_conformal_quantile_and_coverage() -> None:
    r = np.arange(1, 20, dtype=float)  # 19 residuals: ⌈20·0.9⌉ = 18th smallest
    assert conformal_half_width(r, 0.9) == 18.0
    assert coverage(r, 18.0) == pytest.approx(18 / 19)
    with pytest.raises(DataFormatError, match="at least 9"):
        conformal_half_width(np.ones(5), 0.9)
    rng = np.random.default_rng(0)  # exchangeable data: coverage of new residuals ≥ the level (on average)
    q = conformal_half_width(np.abs(rng.normal(size=500)), 0.9)
    assert 0.87 <= coverage(np.abs(rng.normal(size=20000)), q) <= 0.93


def _train_small(data: Path, out: Path, task: str) -> Path:
    from model.config import DataConfig, ModelConfig, TrainConfig
    from model.data.loading import load_dataset
    from model.train import fit

    d = load_dataset(DataConfig(path=str(data)), task=task)
    res = fit(
        ModelConfig(d_model=16, n_heads=2, head_hidden=16),
        TrainConfig(epochs=3, patience=3, num_threads=1),
        d,
        out_dir=out,
    )
    assert res.checkpoint is not None
    return res.checkpoint


@pytest.fixture(scope="module")
def overconfident(tmp_path_factory):
    """A small MMCL classifier trained on planted data, its logits then scaled ×4 (last layer)."""
    tmp = tmp_path_factory.mktemp("conf")
    data = planted_live_pickle(tmp / "d.pkl", n=(240, 200, 200), steps=10, dims=SMALL_DIMS, seed=3)
    ckpt = _train_small(data, tmp / "run", "classification")
    loaded = load_checkpoint(ckpt)
    with torch.no_grad():
        last = loaded.model.head[-1]
        last.weight.mul_(4.0)
        last.bias.mul_(4.0)
    save_checkpoint(
        ckpt,
        loaded.model,
        task=loaded.task,
        feature_set=loaded.feature_set,
        config=loaded.config,
        extra={"calibration": {"note": "kept"}},
    )
    return ckpt, data


def test_calibrate_confidence_command_fits_stores_and_plots(overconfident, tmp_path: Path) -> None:
    ckpt, data = overconfident
    plot = tmp_path / "rel.png"
    res = CliRunner().invoke(
        app, ["calibrate", "confidence", "--checkpoint", str(ckpt), "--data", str(data), "--plot", str(plot)]
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "temperature T =" in res.output and "ece" in res.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    extra = load_checkpoint(ckpt).extra["calibration"]
    t = extra["temperature"]
    assert t > 1.5  # the ×4 logits are overconfident
    assert extra["test_after"]["ece"] < extra["test_before"]["ece"]
    assert extra["test_after"]["nll"] < extra["test_before"]["nll"]
    assert extra["test_after"]["accuracy"] == extra["test_before"]["accuracy"]
    assert extra["note"] == "kept"  # other calibration entries survive
    assert checkpoint_temperature(load_checkpoint(ckpt).extra) == pytest.approx(t)


def test_the_monitor_decodes_with_the_stored_temperature(overconfident) -> None:
    from realtime.pipeline.inference import SentimentDecoder

    ckpt, _ = overconfident
    loaded = load_checkpoint(ckpt)
    t = checkpoint_temperature(loaded.extra)
    logits = np.array([4.0, 0.0, -4.0])
    _, _, raw_probs, _ = SentimentDecoder(loaded.task).decode(logits)
    _, _, cal_probs, label = SentimentDecoder(loaded.task, t).decode(logits)
    assert label == "negative" and cal_probs["negative"] < raw_probs["negative"]
    assert cal_probs["negative"] == pytest.approx(softmax(logits, t)[0])


def test_regression_interval_is_stored_and_shown_on_the_dashboard(tmp_path: Path) -> None:
    from model.backends import create_backend
    from realtime.dashboard.panels import headless_line, sentiment_panel
    from realtime.pipeline.inference import InferenceEngine
    from realtime.pipeline.windows import Window

    data = planted_live_pickle(tmp_path / "d.pkl", n=(120, 60, 80), steps=10, dims=SMALL_DIMS, seed=4)
    ckpt = _train_small(data, tmp_path / "run", "regression")
    res = CliRunner().invoke(app, ["calibrate", "confidence", "--checkpoint", str(ckpt), "--data", str(data), "--json"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    loaded = load_checkpoint(ckpt)
    interval = checkpoint_interval(loaded.extra)
    assert interval is not None
    q, level = interval
    assert level == 0.9 and q > 0
    stored = loaded.extra["calibration"]["interval"]
    assert 0.7 <= stored["test_coverage"] <= 1.0 and stored["n_valid"] == 60
    assert (tmp_path / "run" / "best_calibration.png").is_file()

    engine = InferenceEngine(create_backend("eager", loaded), loaded.task, interval=interval)
    rng = np.random.default_rng(0)
    feats = {m: rng.normal(size=(10, d)).astype(np.float32) for m, d in SMALL_DIMS.items()}
    masks = {m: np.ones(10, bool) for m in SMALL_DIMS}
    pred = engine.predict(Window(0, 0.0, 1.0, feats, masks, dict.fromkeys(SMALL_DIMS), dict.fromkeys(SMALL_DIMS, 10)))
    assert pred.interval == q and pred.to_dict()["interval"] == {"half_width": q, "level": 0.9}

    snap = snapshot_with(pred)
    console = Console(width=100, record=True, color_system=None)
    console.print(sentiment_panel(snap))
    assert f"{pred.score:+.2f} ± {q:.2f} (90%)" in console.export_text()
    assert f"± {q:.2f} (90%)" in headless_line(snap)


def test_confidence_refuses_data_of_another_feature_set(overconfident, tmp_path: Path) -> None:
    ckpt, _ = overconfident
    other = planted_live_pickle(tmp_path / "o.pkl", n=(20, 10, 10), steps=10, dims={"vision": 3, "audio": 5, "text": 8})
    res = CliRunner().invoke(app, ["calibrate", "confidence", "--checkpoint", str(ckpt), "--data", str(other)])
    assert res.exit_code != 0 and "feature set" in str(res.exception)
    assert not math.isnan(load_checkpoint(ckpt).extra["calibration"]["temperature"])


def test_info_has_the_fields_the_decoder_needs() -> None:
    info = TaskInfo(task="classification", label_kind="msa", num_classes=3)
    assert info.to_dict()["num_classes"] == 3
