"""Prediction over a split and the metrics that fit the dataset's task (MSA / MER / MDA / generic)."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.data.types import MultimodalData, Split
from model.errors import CheckpointError
from model.metrics import (
    binary_metrics,
    classification_metrics,
    mda_metrics,
    mer_metrics,
    msa_regression_metrics,
)


@dataclass
class TaskInfo:
    """What a model predicts and how it is scored; stored in every checkpoint."""

    task: str  # regression | classification
    label_kind: str  # msa | mer | mda | generic
    num_labels: int = 1
    num_classes: int = 1
    label_names: list[str] | None = None
    threshold: float | None = None
    arousal: bool = False  # regression: output 1 is arousal (output 0 stays the task's value)

    @classmethod
    def from_data(cls, data: MultimodalData) -> TaskInfo:
        return cls(
            task=data.task,
            label_kind=data.label_kind,
            num_labels=data.num_labels,
            num_classes=data.num_classes,
            label_names=data.label_names,
            threshold=data.threshold,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskInfo:
        try:
            return cls(**d)
        except TypeError as exc:
            raise CheckpointError(f"checkpoint task record is malformed ({exc})") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def default_select_metric(self) -> str:
        if self.task == "regression":
            return "mae"
        return "f1"


def split_tensors(split: Split, index: np.ndarray | slice, device: str = "cpu") -> list[torch.Tensor]:
    """The six model inputs for the samples ``index`` of ``split``."""
    return [
        torch.from_numpy(np.ascontiguousarray(split.vision[index])).to(device),
        torch.from_numpy(np.ascontiguousarray(split.audio[index])).to(device),
        torch.from_numpy(np.ascontiguousarray(split.text[index])).to(device),
        torch.from_numpy(np.ascontiguousarray(split.vision_mask[index])).to(device),
        torch.from_numpy(np.ascontiguousarray(split.audio_mask[index])).to(device),
        torch.from_numpy(np.ascontiguousarray(split.text_mask[index])).to(device),
    ]


@torch.no_grad()
def predict(model: torch.nn.Module, split: Split, batch_size: int = 256, device: str = "cpu") -> np.ndarray:
    """Raw model outputs (N, num_labels·num_classes), in eval mode."""
    was_training = model.training
    model.eval()
    outs = []
    for start in range(0, len(split), batch_size):
        idx = slice(start, start + batch_size)
        outs.append(model(*split_tensors(split, idx, device)).float().cpu().numpy())
    model.train(was_training)
    if not outs:
        return np.zeros((0, 1), np.float32)
    return np.concatenate(outs, axis=0)


def decode(raw: np.ndarray, info: TaskInfo) -> np.ndarray:
    """Raw outputs → a value per sample (regression) or class index per sample and label group."""
    if info.task == "regression":
        return raw[:, 0] if raw.ndim == 2 else raw.reshape(-1)
    logits = raw.reshape(len(raw), info.num_labels, info.num_classes)
    classes = logits.argmax(axis=2)
    return classes[:, 0] if info.num_labels == 1 else classes


def compute_metrics(raw: np.ndarray, split: Split, info: TaskInfo) -> dict[str, float]:
    y = split.labels
    if info.label_kind == "mer":
        logits = raw.reshape(len(raw), info.num_labels, info.num_classes)
        names = info.label_names or [f"label{i}" for i in range(info.num_labels)]
        return mer_metrics(logits, y, names)
    if info.task == "regression" and info.arousal:
        return {**compute_metrics(raw[:, :1], split, _valence_only(info)), **arousal_metrics(raw[:, 1], split)}
    pred = decode(raw, info)
    if info.task == "regression":
        if info.label_kind == "msa":
            return msa_regression_metrics(pred, y)
        if info.label_kind == "mda":
            return mda_metrics(pred, y, info.threshold if info.threshold is not None else 9.0)
        m = msa_regression_metrics(pred, y)
        return {"mae": m["mae"], "corr": m["corr"]}
    if info.label_kind == "mda":
        out = binary_metrics(pred == 1, y == 1)
        return out
    return classification_metrics(pred, y)


def _valence_only(info: TaskInfo) -> TaskInfo:
    return TaskInfo(**{**info.to_dict(), "arousal": False})


def arousal_metrics(pred: np.ndarray, split: Split) -> dict[str, float]:
    """``arousal_mae`` / ``arousal_corr`` (Pearson) over the samples with an arousal rating (none: {})."""
    if not split.has_arousal:
        return {}
    y = np.asarray(split.arousal, np.float64)
    rated = np.isfinite(y)
    p, y = np.asarray(pred, np.float64)[rated], y[rated]
    corr = float(np.corrcoef(p, y)[0, 1]) if len(y) > 1 and p.std() > 0 and y.std() > 0 else float("nan")
    return {"arousal_mae": float(np.abs(p - y).mean()), "arousal_corr": corr}


def save_predictions(path: str | Path, raw: np.ndarray, split: Split, info: TaskInfo) -> None:
    """CSV ``id,y_true,y_pred``: the regression value, or the class index (label groups joined by ';');
    a model with an arousal head on data with arousal ratings adds ``a_true,a_pred`` (a_true empty where
    the sample has no rating). ``y_pred`` stays the valence."""
    pred = decode(raw, info)
    with_arousal = info.arousal and split.has_arousal

    def fmt(v: Any) -> str:
        if np.ndim(v) == 0:
            return f"{float(v):.6g}" if info.task == "regression" else str(int(v))
        return ";".join(str(int(x)) for x in np.asarray(v).reshape(-1))

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "y_true", "y_pred"] + (["a_true", "a_pred"] if with_arousal else []))
        for i, sid in enumerate(split.ids):
            row = [sid, fmt(split.labels[i]), fmt(pred[i])]
            if with_arousal:
                a = float(split.arousal[i])
                row += [f"{a:.6g}" if np.isfinite(a) else "", f"{float(raw[i, 1]):.6g}"]
            w.writerow(row)
