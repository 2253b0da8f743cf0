"""Linear probes per modality, feature set live-v1 vs live-v2, on the recipe's final-test groups.

    .venv/bin/python benchmarks/probe_v1_v2.py [--json out.json]

Reads the recipe's cached items (run `mmcl train-default` first, or the items get extracted). Each probe is
fitted on the development groups and scored on the held-out groups (other actors, subjects, documents) —
groups no choice of the feature set was made on:

* voice: logistic regression on clip means of the voiced steps; balanced valence polarity (calm/happy/
  surprised vs sad/angry/fearful/disgust). v1 = the 34 descriptors as live-v1 computes them (raw); v2 = all
  418 columns after the speaker normaliser (a session of the actor's other clips, as the recipe does);
* face: logistic regression on the window mean; smiling vs neutral AUC. v1 = the 56 blendshape/pose
  columns; v2 = the 63 (+ expression probabilities);
* words: logistic regression on the embedding of the whole sentence (the phrase of its last word); sign
  accuracy on |rating| ≥ 0.5. Clean text and eSpeak NG + ASR transcripts; v1 = MiniLM computed here, v2 =
  the cached e5 + sentiment-head columns.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
POS, NEG = ("calm", "happy", "surprised"), ("sad", "angry", "fearful", "disgust")


def _fit_predict(xtr, ytr, xte):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(xtr, ytr)
    return clf.decision_function(xte)


def _balanced(score, y) -> float:
    return float(0.5 * ((score[y] > 0).mean() + (score[~y] <= 0).mean()))


def voice_probe(items, prior) -> dict[str, float]:
    from mmcl.recipes.compose import normalise_voice, speaker_of

    polar = [it for it in items if it.meta.get("emotion") in POS + NEG]
    by_spk: dict[str, list] = {}
    for it in polar:
        by_spk.setdefault(speaker_of(it), []).append(it)
    rows = {}
    for clips in by_spk.values():
        for i, it in enumerate(clips):
            norm = normalise_voice(it, (clips[:i] + clips[i + 1 :])[:12], prior)
            v = norm.ff.audio_valid
            if v.any():
                rows[it.id] = (it.ff.audio_raw[v][:, :34].mean(0), norm.ff.audio_x[v].mean(0))
    out = {}
    for k, name in ((0, "v1"), (1, "v2")):
        tr = [it for it in polar if it.split == "dev" and it.id in rows]
        te = [it for it in polar if it.split == "test" and it.id in rows]
        y = lambda its: np.array([it.meta["emotion"] in POS for it in its])  # noqa: E731
        s = _fit_predict(np.stack([rows[it.id][k] for it in tr]), y(tr), np.stack([rows[it.id][k] for it in te]))
        out[name] = _balanced(s, y(te))
    out["n_test"] = len([it for it in polar if it.split == "test"])
    return out


def face_probe(items) -> dict[str, float]:
    from mmcl.recipes.cv import _auc

    def feats(it, d):
        return it.ff.vision_x[it.ff.vision_valid][:, :d].mean(0)

    out = {}
    tr = [it for it in items if it.split == "dev" and it.ff.vision_valid.any()]
    te = [it for it in items if it.split == "test" and it.ff.vision_valid.any()]
    for name, d in (("v1", 56), ("v2", 63)):
        y = lambda its: np.array([it.meta["expression"] == "smiling" for it in its])  # noqa: E731
        s = _fit_predict(np.stack([feats(it, d) for it in tr]), y(tr), np.stack([feats(it, d) for it in te]))
        out[name] = _auc(s[y(te)], s[~y(te)])
    out["n_test"] = len(te)
    return out


def text_probe(items, minilm) -> dict[str, float]:
    from realtime.features.text import phrase_of

    ok = [it for it in items if len(it.ff.text_x) and abs(it.meta["rating"]) >= 0.5 and it.ff.words]
    v2 = np.stack([it.ff.text_x[-1] for it in ok])
    v1 = minilm.embed([phrase_of(it.ff.words[:-1], it.ff.words[-1]) for it in ok])
    y = np.array([it.meta["rating"] > 0 for it in ok])
    dev = np.array([it.split == "dev" for it in ok])
    out = {}
    for name, x in (("v1", v1), ("v2", v2)):
        s = _fit_predict(x[dev], y[dev], x[~dev])
        out[name] = float(((s > 0) == y[~dev]).mean())
    out["n_test"] = int((~dev).sum())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    from mmcl.recipes.build import build_items
    from mmcl.recipes.config import load_recipe_config
    from realtime.features.speaker import load_prior
    from realtime.features.text import TextEmbedder

    cfg = load_recipe_config()
    built = build_items(cfg, None, with_eval=False)
    minilm = TextEmbedder(cache_size=0)
    res = {
        "voice balanced polarity (4 unseen RAVDESS actors)": voice_probe(built.of("voice"), load_prior()),
        "face smiling vs neutral AUC (unseen London subjects)": face_probe(built.of("face")),
        "words sign acc., clean text (unseen documents)": text_probe(built.of("clean_text"), minilm),
        "words sign acc., eSpeak NG + ASR (unseen documents)": text_probe(built.of("text"), minilm),
    }
    print(f"{'probe (final-test groups)':<56} {'live-v1':>8} {'live-v2':>8} {'n':>5}")
    for name, r in res.items():
        print(f"{name:<56} {r['v1']:>8.3f} {r['v2']:>8.3f} {r['n_test']:>5}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
