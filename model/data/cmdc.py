"""CMDC-style depression data: one folder, one sample per subject, subject-wise k-fold CV.

Layout::

    DIR/labels.csv            subject_id,phq9[,fold]      (PHQ-9 score 0–27; optional fixed fold 0..k-1)
    DIR/<subject_id>.npz      arrays vision (T_v, D_v), audio (T_a, D_a), text (T_t, D_t)
      or DIR/<subject_id>/{vision,audio,text}.npy

Each modality's T steps are mapped proportionally onto ``data.max_len`` steps (default 50). The binary
label is PHQ-9 ≥ ``data.phq_threshold`` (9). Without a ``fold`` column, subjects are assigned to
``n_folds`` folds stratified by the binary label (deterministic). Split for ``data.fold = k``: test = fold k,
valid = fold k+1 (mod n), train = the rest — so no subject is ever in two splits. Arrays are read with
``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import hashlib
import math
import zipfile
from pathlib import Path

import numpy as np

from model.config import DataConfig
from model.data.types import MultimodalData, Split, malformed_as_data_error, resample_steps, sanitize
from model.errors import DataFormatError
from model.featureset import MODALITIES

DEFAULT_STEPS = 50


def _read_labels(root: Path) -> list[dict[str, str]]:
    path = root / "labels.csv"
    if not path.is_file():
        raise DataFormatError(f"{root}: no labels.csv (columns subject_id,phq9[,fold]); see README 'Datasets'")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataFormatError(f"{path} is not a readable CSV ({exc})") from None
    if not rows or not {"subject_id", "phq9"} <= set(rows[0]):
        raise DataFormatError(f"{path} needs the columns subject_id,phq9 (found: {list(rows[0]) if rows else 'none'})")
    return rows


def _parse_rows(rows: list[dict[str, str]], path: Path) -> tuple[list[str], list[float], list[int] | None]:
    """(subject ids, PHQ-9 scores, folds or None) with an error naming the line of any bad cell."""
    with_folds = rows[0].get("fold") not in (None, "")
    subjects, scores, folds = [], [], []
    for line, r in enumerate(rows, start=2):
        subject, raw_score, raw_fold = r.get("subject_id"), r.get("phq9"), r.get("fold")
        if not isinstance(subject, str) or not subject.strip() or not isinstance(raw_score, str):
            raise DataFormatError(f"{path}:{line}: every row needs a subject_id and a phq9 value")
        try:
            score = float(raw_score)
        except ValueError:
            score = float("nan")
        if not math.isfinite(score) or score < 0:
            raise DataFormatError(f"{path}:{line}: phq9 must be a score >= 0, got {raw_score!r}")
        subjects.append(subject.strip())
        scores.append(score)
        if with_folds:
            try:
                folds.append(int(str(raw_fold).strip()))
            except ValueError:
                raise DataFormatError(f"{path}:{line}: fold must be an integer, got {raw_fold!r}") from None
            if folds[-1] < 0:
                raise DataFormatError(f"{path}:{line}: fold must be >= 0, got {raw_fold!r}")
    return subjects, scores, folds if with_folds else None


def _read_subject(root: Path, subject: str) -> dict[str, np.ndarray]:
    npz, folder = root / f"{subject}.npz", root / subject
    arrays: dict[str, np.ndarray] = {}
    try:
        if npz.is_file():
            with np.load(npz, allow_pickle=False) as f:
                for m in MODALITIES:
                    if m not in f:
                        raise DataFormatError(f"{npz} has no '{m}' array (found: {', '.join(f.files)})")
                    arrays[m] = f[m]
        elif folder.is_dir():
            for m in MODALITIES:
                p = folder / f"{m}.npy"
                if not p.is_file():
                    raise DataFormatError(f"{folder} has no {m}.npy")
                arrays[m] = np.load(p, allow_pickle=False)
        else:
            raise DataFormatError(f"no features for subject {subject!r}: expected {npz} or {folder}/")
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataFormatError(f"features of subject {subject!r} in {root} are corrupt ({exc})") from None
    for m, x in arrays.items():
        if x.ndim != 2:
            raise DataFormatError(f"subject {subject!r}: {m} has shape {x.shape}, expected (T, D)")
    return arrays


def _assign_folds(subjects: list[str], positive: np.ndarray, n_folds: int) -> np.ndarray:
    """Stratified, deterministic: subjects of each class sorted by a hash, dealt round-robin."""
    folds = np.zeros(len(subjects), np.int64)
    for cls in (False, True):
        idx = [i for i in range(len(subjects)) if bool(positive[i]) == cls]
        idx.sort(key=lambda i: hashlib.sha1(subjects[i].encode()).hexdigest())
        for rank, i in enumerate(idx):
            folds[i] = rank % n_folds
    return folds


def load_cmdc(path: str | Path, cfg: DataConfig, task: str = "regression") -> MultimodalData:
    root = Path(path)
    if not root.is_dir():
        raise DataFormatError(f"CMDC data must be a folder with labels.csv and per-subject features, got {root}")
    rows = _read_labels(root)
    subjects, score_list, fold_list = _parse_rows(rows, root / "labels.csv")
    if len(set(subjects)) != len(subjects):
        raise DataFormatError(f"{root}/labels.csv lists a subject twice")
    scores = np.array(score_list, np.float32)
    positive = scores >= cfg.phq_threshold
    if fold_list is not None:
        folds = np.array(fold_list, np.int64) % cfg.n_folds
    else:
        folds = _assign_folds(subjects, positive, cfg.n_folds)
    if len(subjects) < cfg.n_folds:
        raise DataFormatError(f"{root}: {len(subjects)} subjects cannot fill {cfg.n_folds} folds")
    steps = cfg.max_len or DEFAULT_STEPS
    feats = {m: [] for m in MODALITIES}
    masks = {m: [] for m in MODALITIES}
    for s in subjects:
        arrays = _read_subject(root, s)
        for m in MODALITIES:
            with malformed_as_data_error(f"{root}: {m} features of subject {s!r}"):
                x, _ = sanitize(arrays[m])
            y, mask = resample_steps(x[None], np.ones((1, len(x)), bool), steps)
            feats[m].append(y[0])
            masks[m].append(mask[0])
    dims = {m: {f.shape[1] for f in feats[m]} for m in MODALITIES}
    for m, ds in dims.items():
        if len(ds) != 1:
            raise DataFormatError(f"{root}: subjects have different {m} feature sizes {sorted(ds)}")
    full = Split(
        vision=np.stack(feats["vision"]),
        audio=np.stack(feats["audio"]),
        text=np.stack(feats["text"]),
        vision_mask=np.stack(masks["vision"]),
        audio_mask=np.stack(masks["audio"]),
        text_mask=np.stack(masks["text"]),
        labels=positive.astype(np.int64) if task == "classification" else scores,
        ids=subjects,
        scores=scores,
    )
    test_fold, valid_fold = cfg.fold, (cfg.fold + 1) % cfg.n_folds
    splits = {
        "train": full.subset(np.flatnonzero((folds != test_fold) & (folds != valid_fold))),
        "valid": full.subset(np.flatnonzero(folds == valid_fold)),
        "test": full.subset(np.flatnonzero(folds == test_fold)),
    }
    return MultimodalData(
        name=f"{root.name}-fold{cfg.fold}",
        format="cmdc",
        splits=splits,
        task="classification" if task == "classification" else "regression",
        label_kind="mda",
        num_classes=2 if task == "classification" else 1,
        threshold=cfg.phq_threshold,
        meta={"folds": {s: int(f) for s, f in zip(subjects, folds, strict=True)}},
    )
