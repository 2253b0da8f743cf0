"""Where the words lose accuracy once spoken: the ASR, or the voice that comes with them (a study: it prints numbers).

    .venv/bin/python benchmarks/diag_spoken_words.py [--config RECIPE.yaml] [--features live-v3] [--skip-head]
        [--gate model/pretrained/mmcl_live_default.pt]

On the recipe's spoken rated sentences of the *development* documents (eSpeak NG → the live faster-whisper,
from the recipe's item cache; |rating| ≥ 0.5), nothing from the final-test groups:

* the transcripts' word error rate against the sentence (lower-cased, punctuation dropped);
* the packaged e5 sentiment head alone (positive − negative) on the clean sentence and on the transcript
  (the last ≤ 32 words), overall and by WER — how much the ASR itself costs;
* on CV fold 0 of the recipe (its folds, windows and composition): the linear probe of the recipe on the
  spoken windows as composed (voice + words) and with their voice dropped, and the packaged head's output on
  each window's last text step — how much the eSpeak voice in the window costs a model that reads both;
* ``--gate``: a ``csd: step`` checkpoint's gate (common share) of the words and the voice in spoken and RAVDESS
  windows (300 development items of each).

Needs ../shared/data and a warm recipe cache (`mmcl train-default` builds it); the e5 part takes ≈ 6 CPU-minutes.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _norm(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def wer(ref: str, hyp: str) -> float:
    r, h = _norm(ref), _norm(hyp)
    d = np.arange(len(h) + 1)
    for i, rw in enumerate(r, 1):
        prev, d[0] = d.copy(), i
        for j, hw in enumerate(h, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (rw != hw))
    return float(d[len(h)]) / max(len(r), 1)


def sign_report(name: str, pred: np.ndarray, rating: np.ndarray) -> None:
    m = np.abs(rating) >= 0.5
    acc = (np.sign(pred[m]) == np.sign(rating[m])).mean()
    pos, neg = (pred[m & (rating > 0)] > 0).mean(), (pred[m & (rating < 0)] < 0).mean()
    print(f"  {name:44s} sign acc {acc:.3f}   positives {pos:.3f}  negatives {neg:.3f}   n={m.sum()}")


def head_study(items) -> None:
    from realtime.features.text import E5SentimentEmbedder

    w = np.array([wer(it.meta["text"], it.meta["transcript"]) for it in items])
    print(f"transcripts: n={len(items)}  WER mean {w.mean():.3f}  median {np.median(w):.3f}  "
          f"share > 0.3 {(w > 0.3).mean():.3f}")  # fmt: skip
    y = np.array([it.meta["rating"] for it in items])
    emb = E5SentimentEmbedder(threads=1)
    print("packaged head alone (last <= 32 words):")
    for name, texts in (("clean sentence", [it.meta["text"] for it in items]),
                        ("ASR transcript", [it.meta["transcript"] or "." for it in items])):  # fmt: skip
        p = emb.embed([" ".join(t.split()[-32:]) for t in texts])[:, -3:]
        score = p[:, 2] - p[:, 0]
        sign_report(name, score, y)
        for lo, hi in ((0.0, 0.1), (0.3, 9.0)):
            sel = (w >= lo) & (w <= hi)
            sign_report(f"   {name}, WER in [{lo}, {hi}]", score[sel], y[sel])


def probe_study(cfg, items) -> None:
    from mmcl.recipes import cv
    from mmcl.recipes.compose import Sample, drop
    from model.featureset import LIVE_FEATURE_SET
    from realtime.features.speaker import load_prior

    prior = load_prior(dim=LIVE_FEATURE_SET.dims["audio"])
    folds = cv.fold_of_items(items, cfg.protocol.folds, cfg.seed)
    train, valid = cv.fold_samples(cfg, items, folds, 0, prior, cfg.seed)
    spoken = [s for s in valid if s.kind == "T"]
    silent = [Sample("T", s.id, drop(s.win, ["audio"]), s.label, s.source, s.group, s.meta) for s in spoken]
    y = np.array([s.meta["rating"] for s in spoken])
    print(f"CV fold 0: {len(train)} training windows, {len(spoken)} spoken validation windows")
    probe = cv.linear_probe(train)
    sign_report("linear probe, voice + words", np.asarray(probe(spoken)).reshape(len(y), -1)[:, 0], y)
    sign_report("linear probe, voice dropped", np.asarray(probe(silent)).reshape(len(y), -1)[:, 0], y)
    last = np.array([s.win.text[np.nonzero(s.win.text_mask)[0][-1], -3:] for s in spoken])
    sign_report("packaged head, the window's last text step", last[:, 2] - last[:, 0], y)


def gate_study(cfg, dev, checkpoint: Path) -> None:
    """The ``csd: step`` gate of a checkpoint's words and voice in spoken (T) and RAVDESS (V) windows."""
    import torch

    from mmcl.recipes.compose import Composer, to_split
    from model.checkpoint import load_checkpoint
    from model.csd import step_gate
    from model.featureset import LIVE_FEATURE_SET
    from realtime.features.speaker import load_prior

    torch.set_num_threads(1)
    model = load_checkpoint(checkpoint).model.float().eval()
    items = [i for i in dev if i.source == "text"][:300] + [i for i in dev if i.source == "voice"][:300]
    samples = Composer(cfg.compose, load_prior(dim=LIVE_FEATURE_SET.dims["audio"]), [cfg.seed, 5], train=False).compose(
        items
    )
    print(f"step gate of {checkpoint.name} (csd {model.cfg.csd}; mean cosine to the partner's steps in [0, 1]):")
    for kind, mod, partner in (("T", "text", "audio"), ("T", "audio", "text"), ("V", "text", "audio")):
        split = to_split([s for s in samples if s.kind == kind])
        mask = {m: torch.as_tensor(getattr(split, f"{m}_mask")) for m in (mod, partner)}
        with torch.no_grad():
            z = {m: model.latent_steps(m, torch.as_tensor(getattr(split, m)), mask[m]) for m in mask}
            gate = step_gate(z[mod], [z[partner]], [mask[partner]])
        g = gate[mask[mod]].numpy()
        print(f"  {kind} windows, {mod:5s} vs {partner:5s}: mean {g.mean():.3f}  median {np.median(g):.3f}  "
              f"p90 {np.quantile(g, 0.9):.3f}  share exactly 0 {(g == 0).mean():.3f}  ({len(g)} steps)")  # fmt: skip


def main() -> None:
    from mmcl.recipes.build import build_items
    from mmcl.recipes.config import load_recipe_config
    from mmcl.recipes.default_model import _training_items

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--features", default=None, help="the recipe's feature set (default: LIVE_FEATURE_SET)")
    ap.add_argument("--skip-head", action="store_true", help="only the CV-fold probe part")
    ap.add_argument("--gate", type=Path, default=None, help="also the step gate of this checkpoint's windows")
    args = ap.parse_args()
    if args.features:  # the item cache and the recipe read the module-level default feature set
        import mmcl.recipes.items as items_mod
        import model.featureset as fs

        items_mod.LIVE_FEATURE_SET = fs.LIVE_FEATURE_SET = fs.live_feature_set(args.features)
    cfg = load_recipe_config(args.config, {})
    dev = [i for i in _training_items(build_items(cfg, None, with_eval=False)) if i.split == "dev"]
    spoken = [i for i in dev if i.source == "text" and abs(i.meta["rating"]) >= 0.5]
    if not args.skip_head:
        head_study(spoken)
    probe_study(cfg, dev)
    if args.gate:
        gate_study(cfg, dev, args.gate)


if __name__ == "__main__":
    main()
