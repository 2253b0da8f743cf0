"""The two baselines beside MMCL in every table: a linear probe on pooled features, and late fusion.

A reader of an ablation table should see at once whether the model earns its complexity, so ``mmcl ablate``
(and the default-model recipe, ``mmcl/recipes/cv.py``) report, on the same splits:

* **linear probe** — one linear model on the pooled features of all modalities: per modality the mean of
  its observed steps, its last observed step, and its presence (``pool_steps``). Ridge regression for a
  regression task, logistic regression for a classification task (one per label group for IEMOCAP).
* **late fusion** — one such linear model per modality on that modality's pooled features alone; the
  prediction is the average over the modalities present in the sample (values for regression, class
  probabilities for classification).

The regularisation strength is chosen on the validation split (``ALPHAS`` / ``CS``), never on test — the same
rule MMCL's early stopping follows. Both return raw outputs in the layout ``model.evaluate.compute_metrics``
reads (regression (N, 1); classification (N, num_labels · num_classes) log-probabilities).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model.data.types import MultimodalData, Split
from model.evaluate import TaskInfo, compute_metrics
from model.featureset import MODALITIES
from model.metrics import higher_is_better

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)  # ridge strengths tried on the validation split
CS = (0.01, 0.1, 1.0, 10.0)  # inverse logistic strengths tried on the validation split
BASELINES = ("linear_probe", "late_fusion")


def pool_steps(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, L, D) steps + (N, L) mask → (N, 2·D + 1): mean of the observed steps, the last observed step
    (zeros when none) and presence."""
    x = np.asarray(x, np.float64)
    mask = np.asarray(mask, bool)
    n = mask.sum(axis=1, keepdims=True).astype(np.float64)
    mean = (x * mask[..., None]).sum(axis=1) / np.maximum(n, 1.0)
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    return np.concatenate([mean, x[np.arange(len(x)), last] * (n > 0), (n > 0).astype(np.float64)], axis=1)


def pooled(split: Split, modalities: Sequence[str] = MODALITIES) -> np.ndarray:
    return np.concatenate([pool_steps(split.features(m), split.mask(m)) for m in modalities], axis=1)


def _fit_one(x: np.ndarray, y: np.ndarray, info: TaskInfo, strength: float):
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    head = Ridge(alpha=strength) if info.task == "regression" else LogisticRegression(C=strength, max_iter=2000)
    return make_pipeline(StandardScaler(), head).fit(x, y)


class _Linear:
    """One linear model per label group on fixed features; ``raw(x)`` in compute_metrics' layout."""

    def __init__(self, x: np.ndarray, labels: np.ndarray, info: TaskInfo, strength: float) -> None:
        self.info = info
        y = labels.reshape(len(labels), -1) if info.task == "classification" else labels.reshape(-1, 1)
        self.fits = [_fit_one(x, y[:, g], info, strength) for g in range(y.shape[1])]

    def raw(self, x: np.ndarray) -> np.ndarray:
        if self.info.task == "regression":
            return self.fits[0].predict(x).reshape(-1, 1)
        k = self.info.num_classes
        out = np.full((len(x), len(self.fits), k), -1e9)
        for g, fit in enumerate(self.fits):
            classes = fit[-1].classes_.astype(int)
            out[:, g, classes] = np.log(np.clip(fit.predict_proba(x), 1e-12, None))
        return out.reshape(len(x), -1)


def _strengths(info: TaskInfo) -> tuple[float, ...]:
    return ALPHAS if info.task == "regression" else CS


def _select(valid_raw: list[np.ndarray], valid: Split, info: TaskInfo) -> int:
    """Index of the best of ``valid_raw`` by the task's selection metric (MAE, or F1) on the valid split."""
    metric = info.default_select_metric()
    scores = [compute_metrics(r, valid, info).get(metric, float("nan")) for r in valid_raw]
    sign = 1.0 if higher_is_better(metric) else -1.0
    return int(np.nanargmax([sign * s if np.isfinite(s) else -np.inf for s in scores]))


def linear_probe(data: MultimodalData) -> dict[str, np.ndarray]:
    """split → raw outputs of the probe (strength chosen on the validation split)."""
    info = TaskInfo.from_data(data)
    train, valid = data.splits["train"], data.splits["valid"]
    x_train, x_valid = pooled(train), pooled(valid)
    models = [_Linear(x_train, train.labels, info, s) for s in _strengths(info)]
    best = models[_select([m.raw(x_valid) for m in models], valid, info)]
    return {name: best.raw(pooled(split)) for name, split in data.splits.items()}


def _fuse(raws: list[np.ndarray], present: list[np.ndarray], info: TaskInfo) -> np.ndarray:
    n = len(raws[0])
    count = np.maximum(np.sum(present, axis=0), 1).reshape(n, 1)
    if info.task == "regression":
        return sum(r * p.reshape(n, 1) for r, p in zip(raws, present, strict=True)) / count
    probs = sum(np.exp(r) * p.reshape(n, 1) for r, p in zip(raws, present, strict=True)) / count
    return np.log(np.clip(probs, 1e-12, None))


def late_fusion(data: MultimodalData) -> dict[str, np.ndarray]:
    """split → raw outputs of late fusion (each modality's strength chosen on the validation split)."""
    info = TaskInfo.from_data(data)
    train, valid = data.splits["train"], data.splits["valid"]
    per_modality = []
    for m in MODALITIES:
        seen = train.mask(m).any(axis=1)
        if seen.sum() < 2:
            continue
        x_train = pool_steps(train.features(m), train.mask(m))[seen]
        x_valid = pool_steps(valid.features(m), valid.mask(m))
        models = [_Linear(x_train, train.labels[seen], info, s) for s in _strengths(info)]
        best = models[_select([mod.raw(x_valid) for mod in models], valid, info)]
        per_modality.append((m, best))
    out = {}
    for name, split in data.splits.items():
        raws = [mod.raw(pool_steps(split.features(m), split.mask(m))) for m, mod in per_modality]
        present = [split.mask(m).any(axis=1).astype(np.float64) for m, _ in per_modality]
        out[name] = _fuse(raws, present, info)
    return out


def baseline_metrics(data: MultimodalData, which: Sequence[str] = BASELINES) -> dict[str, dict[str, float]]:
    """baseline name → its test metrics (compute_metrics, as for MMCL)."""
    info = TaskInfo.from_data(data)
    makers = {"linear_probe": linear_probe, "late_fusion": late_fusion}
    return {name: compute_metrics(makers[name](data)["test"], data.splits["test"], info) for name in which}
