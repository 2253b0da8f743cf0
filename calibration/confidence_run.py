"""``mmcl calibrate confidence``: fit on validation, report on test, plot, store in the checkpoint.

The fitted values go to ``checkpoint.extra["calibration"]`` (other keys there are kept):

* classification: ``temperature`` (read by the monitor's decoder: softmax(logits / T)), plus the test
  ECE/Brier/NLL/accuracy before and after;
* regression: ``interval`` = ``{"half_width": q, "level": 0.9, ...}`` (the monitor shows ``ŷ ± q (90%)``),
  plus its empirical coverage on test.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calibration.confidence import (
    accuracy,
    brier,
    conformal_half_width,
    conformal_rank,
    coverage,
    ece,
    fit_temperature,
    nll,
    reliability_bins,
    softmax,
)
from calibration.config import CalibrationConfig
from calibration.plots import interval_diagram, reliability_diagram
from model.checkpoint import LoadedCheckpoint, load_checkpoint, update_checkpoint_extra
from model.config import DataConfig
from model.configlib import from_dict
from model.data.loading import load_dataset
from model.data.types import MultimodalData
from model.errors import ConfigError, DataFormatError
from model.evaluate import predict
from model.featureset import check_compatible

log = logging.getLogger(__name__)

COVERAGE_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)


@dataclass
class ConfidenceReport:
    task: str
    n_valid: int
    n_test: int
    plot: Path
    temperature: float | None = None
    before: dict[str, float] = field(default_factory=dict)  # test metrics at T = 1 (classification)
    after: dict[str, float] = field(default_factory=dict)  # test metrics at the fitted T
    interval: dict[str, Any] | None = None  # regression
    stored: dict[str, Any] = field(default_factory=dict)  # what went into checkpoint.extra["calibration"]


def load_matching_data(loaded: LoadedCheckpoint, data_path: str | Path) -> MultimodalData:
    """The dataset at ``data_path``, read with the checkpoint's own data settings (format, max_len, fold)
    and the checkpoint's task; refuses data of another feature set."""
    stored = loaded.config.get("data") if isinstance(loaded.config.get("data"), dict) else {}
    try:
        dcfg = from_dict(DataConfig, {**stored, "path": str(data_path)}, "data")
    except ConfigError:
        dcfg = DataConfig(path=str(data_path))
    data = load_dataset(dcfg, task=loaded.task.task)
    assert data.feature_set is not None
    check_compatible(loaded.feature_set, data.feature_set, what=f"data {data_path}")
    if data.task != loaded.task.task:
        raise DataFormatError(f"{data_path} has {data.task} labels but the checkpoint is a {loaded.task.task} model")
    return data


def calibrate_confidence(
    checkpoint: str | Path,
    data_path: str | Path,
    plot_path: str | Path,
    cfg: CalibrationConfig | None = None,
    *,
    store: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> ConfidenceReport:
    cfg = cfg or CalibrationConfig()
    step = on_step or (lambda _s: None)
    step("loading the checkpoint and the data")
    loaded = load_checkpoint(checkpoint)
    data = load_matching_data(loaded, data_path)
    valid, test = data.splits["valid"], data.splits["test"]
    if len(valid) == 0 or len(test) == 0:
        raise DataFormatError(f"{data_path} needs non-empty valid and test splits to fit and check calibration")
    step(f"predicting {len(valid)} validation and {len(test)} test samples")
    raw_valid = predict(loaded.model, valid)
    raw_test = predict(loaded.model, test)
    info = loaded.task
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    if info.task == "classification":
        step("fitting the temperature on the validation split")
        shape = (-1, info.num_labels, info.num_classes)
        lv, lt = raw_valid.reshape(shape), raw_test.reshape(shape)
        temp = fit_temperature(lv, valid.labels)
        before, after = (
            _class_metrics(lt, test.labels, 1.0, cfg.ece_bins),
            _class_metrics(lt, test.labels, temp, cfg.ece_bins),
        )
        before["valid_nll"], after["valid_nll"] = nll(lv, valid.labels, 1.0), nll(lv, valid.labels, temp)
        plot = reliability_diagram(
            [
                ("test, before (T = 1)", reliability_bins(softmax(lt), test.labels, cfg.ece_bins), before["ece"]),
                (
                    f"test, after (T = {temp:.2f})",
                    reliability_bins(softmax(lt, temp), test.labels, cfg.ece_bins),
                    after["ece"],
                ),
            ],
            plot_path,
            title=f"{Path(checkpoint).name} on {Path(data_path).name}: temperature fitted on valid",
        )
        record = {
            "temperature": temp,
            "method": "temperature scaling (NLL on the validation split)",
            "data": str(data_path),
            "created": created,
            "ece_bins": cfg.ece_bins,
            "test_before": before,
            "test_after": after,
        }
        report = ConfidenceReport(info.task, len(valid), len(test), plot, temp, before, after, stored=record)
    else:
        step("fitting the split-conformal interval on the validation split")
        rv = np.abs(raw_valid[:, 0] - valid.labels.reshape(-1))
        rt = np.abs(raw_test[:, 0] - test.labels.reshape(-1))
        q = conformal_half_width(rv, cfg.interval_level)
        cov = coverage(rt, q)
        levels = [lv for lv in COVERAGE_LEVELS if conformal_rank(len(rv), lv) <= len(rv)]
        curve = [coverage(rt, conformal_half_width(rv, lv)) for lv in levels]
        plot = interval_diagram(
            levels,
            curve,
            (cfg.interval_level, cov, q),
            plot_path,
            title=f"{Path(checkpoint).name}: split-conformal intervals",
        )
        interval = {
            "half_width": q,
            "level": cfg.interval_level,
            "method": "split conformal on |y - prediction| of the validation split",
            "n_valid": len(rv),
            "test_coverage": cov,
            "test_mae": float(rt.mean()),
            "data": str(data_path),
            "created": created,
        }
        record = {"interval": interval}
        if info.arousal and valid.has_arousal and test.has_arousal:
            step("fitting the split-conformal interval of the arousal output")
            record["arousal_interval"] = arousal_interval(raw_valid, valid, raw_test, test, cfg.interval_level)
        report = ConfidenceReport(info.task, len(valid), len(test), plot, interval=interval, stored=record)
    if store:
        existing = loaded.extra.get("calibration")
        merged = {**(existing if isinstance(existing, dict) else {}), **record}
        update_checkpoint_extra(checkpoint, "calibration", merged)
        log.info("stored calibration in %s", checkpoint)
    return report


def arousal_interval(raw_valid: np.ndarray, valid, raw_test: np.ndarray, test, level: float) -> dict[str, Any]:
    """Split-conformal half-width of the arousal output (column 1) over the rated samples."""
    rated_v, rated_t = np.isfinite(valid.arousal), np.isfinite(test.arousal)
    rv = np.abs(raw_valid[rated_v, 1] - valid.arousal[rated_v])
    rt = np.abs(raw_test[rated_t, 1] - test.arousal[rated_t])
    q = conformal_half_width(rv, level)
    return {"half_width": q, "level": level, "method": "split conformal on |arousal - prediction| (valid)",
            "n_valid": len(rv), "test_coverage": coverage(rt, q), "test_mae": float(rt.mean())}  # fmt: skip


def _class_metrics(logits: np.ndarray, labels: np.ndarray, temp: float, n_bins: int) -> dict[str, float]:
    p = softmax(logits, temp)
    return {
        "ece": ece(p, labels, n_bins),
        "brier": brier(p, labels),
        "nll": nll(logits, labels, temp),
        "accuracy": accuracy(p, labels),
    }
