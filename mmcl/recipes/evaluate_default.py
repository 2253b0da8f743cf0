"""Held-out evaluation of the default model, per modality and combined, each next to a simple baseline.

Every number here comes from items the model never trained on (the test split of each source, or the
evaluation-only CREMA-D / MOUD clips). The windows are the live ones: 5 s ending where the speech ends.

* text: held-out rated sentences (documents never trained on), spoken by eSpeak NG and transcribed by
  faster-whisper; the model sees words + synthetic voice (vision masked) and words only. Baseline: VADER
  (lexicon + rules, ``vaderSentiment``) on the same ASR transcript, and on the clean sentence for reference.
  VADER's authors validated it on these very sentences, so it is a strong, home-field baseline.
* voice: held-out RAVDESS actors, non-neutral clips, polarity (calm/happy vs sad/angry/fearful/disgust);
  the model sees voice + the neutral transcript and voice only. Baseline: logistic regression on the mean
  and std of the 34 voice features over voiced steps, trained on the training actors (C picked on the
  validation actors). Balanced accuracy is given because negatives outnumber positives 2:1.
* face: held-out London subjects, smiling vs neutral, face only. Threshold: half the smile label (fixed in
  advance). Baseline: logistic regression on the mean 56 face features (C picked on validation subjects).
* combined: the held-out cross-source pairs (TF, VF) with and without their face; CREMA-D's 6 real clips
  (one actor, face + voice + words in step); MOUD's 5 Spanish utterances (all labelled positive).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from mmcl.recipes.build import BuiltItems
from mmcl.recipes.compose import HZ, drop, face_window, kind_of, speech_window, windows_to_split
from mmcl.recipes.config import RecipeConfig
from mmcl.recipes.items import Item
from model.data.types import MultimodalData, Split
from model.evaluate import predict
from realtime.features.extract import WindowArrays, window_of

log = logging.getLogger(__name__)

Predictor = Callable[[Split], np.ndarray]


def model_predictor(model: torch.nn.Module) -> Predictor:
    return lambda split: predict(model, split).reshape(-1)


def _pred(predictor: Predictor, wins: Sequence[WindowArrays], ids: list[str] | None = None) -> np.ndarray:
    if not wins:
        return np.zeros(0)
    return predictor(windows_to_split(wins, [0.0] * len(wins), ids or [str(i) for i in range(len(wins))]))


def polarity(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy and weighted F1 of sign(pred) (> 0 positive) against sign(y) (y ≠ 0)."""
    from sklearn.metrics import balanced_accuracy_score, f1_score

    keep = y != 0
    p, t = pred[keep] > 0, y[keep] > 0
    if not keep.any():
        return {"n": 0}
    return {
        "n": int(keep.sum()),
        "acc": float(np.mean(p == t)),
        "bal_acc": float(balanced_accuracy_score(t, p)) if len(set(t)) > 1 else float("nan"),
        "f1": float(f1_score(t, p, average="weighted")),
    }


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if len(a) > 1 and np.std(a) > 0 and np.std(b) > 0 else float("nan")


def _pooled(wins: Sequence[WindowArrays], m: str, with_std: bool) -> np.ndarray:
    rows = []
    for w in wins:
        x, mask = getattr(w, m), getattr(w, f"{m}_mask")
        real = x[mask] if mask.any() else np.zeros((1, x.shape[1]), np.float32)
        rows.append(np.concatenate([real.mean(0), real.std(0)]) if with_std else real.mean(0))
    return np.stack(rows)


def linear_probe(train_x, train_y, valid_x, valid_y):  # -> fitted sklearn pipeline
    """Standardise + logistic regression; C picked by validation balanced accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best, best_score = None, -1.0
    for c in (0.001, 0.01, 0.1, 1.0, 10.0):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, class_weight="balanced"))
        clf.fit(train_x, train_y)
        score = balanced_accuracy_score(valid_y, clf.predict(valid_x)) if len(set(valid_y)) > 1 else 0.0
        if score > best_score:
            best, best_score = clf, score
    return best


def vader_scores(texts: Sequence[str]) -> np.ndarray | None:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        log.warning(
            "vaderSentiment is not installed: the lexicon baseline is skipped (pip install vaderSentiment)"
        )
        return None
    sia = SentimentIntensityAnalyzer()
    compound = np.array([sia.polarity_scores(t)["compound"] for t in texts])
    return np.where(compound == 0, 1e-3, compound)  # no sentiment word: counted as positive (has-0 rule)


def eval_text(built: BuiltItems, predictor: Predictor, cfg: RecipeConfig) -> dict[str, Any]:
    items = built.of("text", "test")
    if not items:
        return {}
    y = np.array([it.label for it in items])
    wins = [speech_window(it, cfg.compose.window_s) for it in items]
    full = _pred(predictor, wins)
    words = _pred(predictor, [drop(w, ["audio"]) for w in wins])
    rows = {"model: words + TTS voice": full, "model: words only": words}
    vader_asr = vader_scores([it.meta["transcript"] for it in items])
    if vader_asr is not None:
        rows["VADER on the ASR transcript"] = vader_asr
        rows["VADER on the clean sentence (reference)"] = vader_scores([it.meta["text"] for it in items])
    out = {name: {**polarity(p, y), "corr": _corr(p, y)} for name, p in rows.items()}
    strong = np.abs(y) >= 1.5
    for name, p in rows.items():
        out[name]["acc_strong"] = polarity(p[strong], y[strong]).get("acc", float("nan"))
    out["_n_strong"] = int(strong.sum())
    return out


def _voice_probe_data(items: list[Item], window_s: float) -> tuple[np.ndarray, np.ndarray]:
    items = [it for it in items if it.label != 0]
    wins = [speech_window(it, window_s) for it in items]
    return _pooled(wins, "audio", True), np.array([it.label > 0 for it in items])


def voice_probe(built: BuiltItems, window_s: float):
    train = [it for it in built.of("voice", "train") if it.label != 0]
    valid = [it for it in built.of("voice", "valid") if it.label != 0]
    if len({it.label > 0 for it in train}) < 2 or not valid:
        return None  # (smoke runs) not enough labelled clips to fit a probe
    tx, ty = _voice_probe_data(train, window_s)
    vx, vy = _voice_probe_data(valid, window_s)
    return linear_probe(tx, ty, vx, vy)


def eval_voice(built: BuiltItems, predictor: Predictor, cfg: RecipeConfig, probe) -> dict[str, Any]:
    items = [it for it in built.of("voice", "test") if it.label != 0]
    if not items:
        return {}
    y = np.array([it.label for it in items])
    wins = [speech_window(it, cfg.compose.window_s) for it in items]
    rows = {
        "model: voice + transcript": _pred(predictor, wins),
        "model: voice only": _pred(predictor, [drop(w, ["text"]) for w in wins]),
    }
    if probe is not None:
        rows["linear probe on voice features"] = probe.predict_proba(_pooled(wins, "audio", True))[:, 1] - 0.5
    rows["majority class (always negative)"] = -np.ones(len(y))
    out: dict[str, Any] = {name: polarity(p, y) for name, p in rows.items()}
    emo = np.array([it.meta["emotion"] for it in items])
    hs = np.isin(emo, ["happy", "sad", "angry"])
    for name, p in rows.items():
        out[name]["acc_happy_vs_sad_angry"] = polarity(p[hs], y[hs]).get("acc", float("nan"))
        out[name]["mean_by_emotion"] = {e: float(np.mean(p[emo == e])) for e in sorted(set(emo))}
    return out


def face_probe(built: BuiltItems, window_s: float):
    def data(split: str):
        items = built.of("face", split)
        return _pooled([face_window(f, window_s) for f in items], "vision", False), np.array(
            [f.meta["expression"] == "smiling" for f in items]
        )

    tx, ty = data("train")
    vx, vy = data("valid")
    return linear_probe(tx, ty, vx, vy) if len(set(ty)) > 1 and len(vy) else None


def eval_face(built: BuiltItems, predictor: Predictor, cfg: RecipeConfig, probe) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    items = built.of("face", "test")
    if not items:
        return {}
    smile = np.array([f.meta["expression"] == "smiling" for f in items])
    wins = [face_window(f, cfg.compose.window_s) for f in items]
    thr = cfg.face.smiling_valence / 2
    rows = {"model: face only": (_pred(predictor, wins), thr)}
    if probe is not None:
        rows["linear probe on face features"] = (
            probe.predict_proba(_pooled(wins, "vision", False))[:, 1],
            0.5,
        )
    out = {}
    for name, (p, t) in rows.items():
        out[name] = {
            "n": len(items),
            "acc": float(np.mean((p > t) == smile)),
            "auc": float(roc_auc_score(smile, p)) if len(set(smile)) > 1 else float("nan"),
            "mean_smiling": float(np.mean(p[smile])) if smile.any() else float("nan"),
            "mean_neutral": float(np.mean(p[~smile])) if (~smile).any() else float("nan"),
            "threshold": t,
        }
    return out


def eval_pairs(data: MultimodalData, predictor: Predictor) -> dict[str, Any]:
    """Held-out cross-source pairs: with their face, and the same windows with vision masked."""
    test = data.splits["test"]
    out = {}
    for kind in ("TF", "VF"):
        idx = np.array([i for i, sid in enumerate(test.ids) if kind_of(sid) == kind])
        if len(idx) == 0:
            continue
        part = test.subset(idx)
        y = part.labels
        with_face = predictor(part)
        no_face = predictor(
            dataclasses.replace(
                part, vision=np.zeros_like(part.vision), vision_mask=np.zeros_like(part.vision_mask)
            )
        )
        out[kind] = {
            "with face": {**polarity(with_face, y), "mae": float(np.mean(np.abs(with_face - y)))},
            "face masked": {**polarity(no_face, y), "mae": float(np.mean(np.abs(no_face - y)))},
        }
    return out


def eval_media(built: BuiltItems, predictor: Predictor, cfg: RecipeConfig, vprobe) -> dict[str, Any]:
    """CREMA-D clips and MOUD utterances: the live window (5 s) ending where the clip/utterance ends."""
    out: dict[str, Any] = {}
    n = round(cfg.compose.window_s * HZ)

    def ending_at(it: Item, end: float) -> WindowArrays:
        return window_of(it.ff, end - cfg.compose.window_s, n, n, HZ)

    crema = built.of("crema_d")
    if crema:
        wins = [ending_at(it, it.ff.duration) for it in crema]
        rows = {
            "all": _pred(predictor, wins),
            "voice + words": _pred(predictor, [drop(w, ["vision"]) for w in wins]),
            "face only": _pred(predictor, [drop(w, ["audio", "text"]) for w in wins]),
        }
        if vprobe is not None:
            rows["voice probe"] = vprobe.predict_proba(_pooled(wins, "audio", True))[:, 1] - 0.5
        clips = []
        for i, it in enumerate(crema):
            meta = {k: it.meta[k] for k in ("emotion", "av_vote", "transcript", "face_rate")}
            clips.append({"clip": it.id.split("/")[-1], "label": it.label, **meta,
                          **{k: float(v[i]) for k, v in rows.items()}})  # fmt: skip
        y = np.array([it.label for it in crema])
        out["crema_d"] = {"clips": clips, "polarity": {k: polarity(v, y) for k, v in rows.items()}}
    moud = built.of("moud")
    if moud:
        wins = [ending_at(it, min(it.meta["end"], it.ff.duration)) for it in moud]
        rows = {
            "all": _pred(predictor, wins),
            "voice + words": _pred(predictor, [drop(w, ["vision"]) for w in wins]),
            "face only": _pred(predictor, [drop(w, ["audio", "text"]) for w in wins]),
        }
        out["moud"] = {
            "n": len(moud),
            "face_rate": float(moud[0].meta["face_rate"]),
            "predictions": {k: [round(float(x), 3) for x in v] for k, v in rows.items()},
            "share_positive": {k: float(np.mean(v > 0)) for k, v in rows.items()},
            "transcripts": [w.raw_text for w in wins],
        }
    return out


def evaluate_default(
    built: BuiltItems, data: MultimodalData, model: torch.nn.Module, cfg: RecipeConfig
) -> dict[str, Any]:
    predictor = model_predictor(model)
    vprobe = voice_probe(built, cfg.compose.window_s)
    fprobe = face_probe(built, cfg.compose.window_s)
    return {
        "text": eval_text(built, predictor, cfg),
        "voice": eval_voice(built, predictor, cfg, vprobe),
        "face": eval_face(built, predictor, cfg, fprobe),
        "pairs": eval_pairs(data, predictor),
        "media": eval_media(built, predictor, cfg, vprobe),
    }
