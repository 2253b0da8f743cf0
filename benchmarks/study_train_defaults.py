"""MMCL's training defaults vs a linear probe and late fusion on a small real benchmark-style set.

The set: the default-model recipe's live windows (RAVDESS voice + its ASR words, pyAudioAnalysis clips, London
faces; ``mmcl/recipes/``, feature set live-v2, L = 50) in an MMSA-like regression task (valence −3…+3; Acc2,
MAE, Corr as for MOSI), person-grouped: the development actors / subjects / clips are dealt into 4 folds (fold
seed 7, not the recipe's), each fold gives ≤ 750 training windows (composed with the recipe's augmentation)
and ≤ 600 evaluation windows. CV fold f: test = fold f, early-stopping validation = fold f+1, training = the
other two (≈ 1,500 windows: "small", like MOSI's 1,284). Final: training = folds 1–3, validation = fold 0,
test = the recipe's final-test groups (used once, after the choice).

    .venv/bin/python benchmarks/study_train_defaults.py build          # needs the recipe cache (train-default)
    .venv/bin/python benchmarks/study_train_defaults.py run d64 0      # variant, fold (0..3 | final)
    .venv/bin/python benchmarks/study_train_defaults.py table

Results append to ``runs/study_train_defaults/results.jsonl``; the 2026-12-04 run is in
``benchmarks/results/study_train_defaults.md``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import logging
import pickle
import time
from pathlib import Path

import numpy as np

OUT = Path("runs/study_train_defaults")
K = 4
FOLD_SEED = 7
MAX_TRAIN, MAX_EVAL = 1500, 600
SOURCES = ("voice", "pyaa", "face")
WIDTH64 = {"d_model": 64, "head_hidden": 64}
VARIANTS: dict[str, tuple[dict, dict]] = {  # name → (model overrides, train overrides) of the defaults
    "defaults": ({}, {}),  # d_model 256: 129 s/epoch on the loaded 2-core machine, not run to the end
    "d64": (WIDTH64, {}),
    "d64reg_avg": ({**WIDTH64, "dropout": 0.3}, {"weight_decay": 1e-3, "average_best": 5}),
}


def _subsample(samples: list, n: int, seed: int) -> list:
    if len(samples) <= n:
        return samples
    idx = np.sort(np.random.default_rng(seed).choice(len(samples), n, replace=False))
    return [samples[i] for i in idx]


def build() -> None:
    from mmcl.recipes import cv
    from mmcl.recipes.build import build_items
    from mmcl.recipes.compose import Composer, to_split
    from mmcl.recipes.config import load_recipe_config
    from model.featureset import LIVE_FEATURE_SET
    from realtime.features.speaker import load_prior

    cfg = load_recipe_config()
    built = build_items(cfg, None, with_eval=False, only=list(SOURCES))
    items = [it for s in SOURCES for it in built.of(s)]
    prior = load_prior(dim=LIVE_FEATURE_SET.dims["audio"])
    folds = cv.fold_of_items(items, K, FOLD_SEED)
    parts = {}
    for f in range(K):
        mine = [it for it in items if folds.get(it.id) == f]
        train = Composer(cfg.compose, prior, [FOLD_SEED, f], train=True).compose(mine)
        evaluation = Composer(cfg.compose, prior, [FOLD_SEED, f], train=False).compose(mine)
        parts[f"fold{f}_train"] = _subsample(train, MAX_TRAIN // 2, f)
        parts[f"fold{f}_eval"] = _subsample(evaluation, MAX_EVAL, f)
    test = [it for it in items if it.split == "test"]
    parts["test"] = Composer(cfg.compose, prior, [FOLD_SEED, 99], train=False).compose(test)
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "parts.pkl").open("wb") as fh:
        pickle.dump({k: to_split(v) for k, v in parts.items()}, fh, protocol=4)
    print({k: len(v) for k, v in parts.items()})


def _concat(splits: list):
    from model.data.types import Split

    kw = {}
    for fld in dataclasses.fields(Split):
        vals = [getattr(s, fld.name) for s in splits]
        if vals[0] is None:
            kw[fld.name] = None
        elif isinstance(vals[0], list):
            kw[fld.name] = [v for part in vals for v in part]
        else:
            kw[fld.name] = np.concatenate(vals)
    return Split(**kw)


def data_for(fold: str):
    from model.data.types import MultimodalData
    from model.featureset import LIVE_FEATURE_SET

    with (OUT / "parts.pkl").open("rb") as fh:
        parts = pickle.load(fh)
    if fold == "final":
        train = _concat([parts[f"fold{g}_train"] for g in (1, 2, 3)])
        valid, test = parts["fold0_eval"], parts["test"]
    else:
        f = int(fold)
        v = (f + 1) % K
        train = _concat([parts[f"fold{g}_train"] for g in range(K) if g not in (f, v)])
        valid, test = parts[f"fold{v}_eval"], parts[f"fold{f}_eval"]
    return MultimodalData(name="study", format="mmsa", splits={"train": train, "valid": valid, "test": test},
                          task="regression", label_kind="msa", feature_set=LIVE_FEATURE_SET)  # fmt: skip


def run(variant: str, fold: str, seed: int = 0) -> None:
    import torch

    torch.set_num_threads(1)
    data = data_for(fold)
    t0 = time.time()
    if variant in ("probe", "late"):
        from model.baselines import baseline_metrics

        name = {"probe": "linear_probe", "late": "late_fusion"}[variant]
        rec = {"variant": variant, "fold": fold, "test": baseline_metrics(data, [name])[name]}
    else:
        from model.config import ModelConfig, TrainConfig
        from model.train import fit

        model_over, train_over = VARIANTS[variant]
        mcfg = dataclasses.replace(ModelConfig(task="regression"), **model_over)
        tcfg = dataclasses.replace(TrainConfig(), seed=seed, num_threads=1, **train_over)

        def on_epoch(epoch: int, _n: int, r: dict) -> None:
            print(epoch, round(time.time() - t0), round(r["valid_mae"], 4), flush=True)

        res = fit(mcfg, tcfg, data, on_epoch=on_epoch)
        rec = {"variant": variant, "fold": fold, "seed": seed, "test": res.test, "valid": res.valid,
               "best_epoch": res.best_epoch, "epochs": res.epochs_run, "s_epoch": res.seconds_per_epoch}  # fmt: skip
    rec["s"] = time.time() - t0
    with (OUT / "results.jsonl").open("a") as fh:
        fh.write(json.dumps(rec) + "\n")
    print(json.dumps(rec))


def table() -> None:
    rows = [json.loads(line) for line in (OUT / "results.jsonl").open()]
    by = collections.defaultdict(list)
    for r in rows:
        by[(r["variant"], r["fold"] == "final")].append(r)
    print("| model | folds | Acc2 (non-0) | F1 (non-0) | MAE | Corr | Acc7 |")
    print("|---|---|---|---|---|---|---|")
    for (variant, final), rs in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        cells = []
        for key in ("acc2_non0", "f1_non0", "mae", "corr", "acc7"):
            x = np.array([r["test"][key] for r in rs])
            scale, digits = (100, 1) if key.startswith(("acc", "f1")) else (1, 3)
            cells.append(f"{x.mean() * scale:.{digits}f}" + (f" ± {x.std() * scale:.{digits}f}" if len(x) > 1 else ""))
        folds = "final test" if final else ",".join(sorted(r["fold"] for r in rs))
        print(f"| {variant} | {folds} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["build", "run", "table"])
    ap.add_argument("variant", nargs="?")
    ap.add_argument("fold", nargs="?")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.what == "build":
        build()
    elif args.what == "run":
        run(args.variant, args.fold, args.seed)
    else:
        table()


if __name__ == "__main__":
    main()
