"""One recipe candidate on the recipe's own CV folds, one seed (a screen: it prints one JSON line per fold).

    .venv/bin/python benchmarks/screen_recipe_candidate.py '{"csd": "step", "specific_residual": true}' \
        [--config RECIPE.yaml] [--features live-v3] [--folds 0,1,2] [--seed 0]

The folds, the window composition and each run's seed (seed + 100·fold) are those of ``mmcl train-default``'s
CV jobs, so a line compares with the recipe's rows of the same fold and seed. A screen decides nothing: a
candidate that looks good here joins ``protocol.candidates`` and the full CV, with a ship rule written first.
Needs ../shared/data and a warm recipe cache (≈ 6 CPU-minutes per fold on one thread).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from mmcl.recipes import cv
    from mmcl.recipes.build import build_items
    from mmcl.recipes.config import load_recipe_config
    from mmcl.recipes.default_model import _training_items
    from model.featureset import LIVE_FEATURE_SET
    from realtime.features.speaker import load_prior

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidate", help="JSON object of model/train overrides, as in protocol.candidates")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--folds", default="0,1,2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--features", default=None, help="the recipe's feature set (default: LIVE_FEATURE_SET)")
    args = ap.parse_args()
    if args.features:  # the item cache and the recipe read the module-level default feature set
        import mmcl.recipes.cv as cv_mod
        import mmcl.recipes.items as items_mod
        import model.featureset as fs

        items_mod.LIVE_FEATURE_SET = cv_mod.LIVE_FEATURE_SET = fs.live_feature_set(args.features)
    cand = json.loads(args.candidate)
    torch.set_num_threads(1)
    cfg = load_recipe_config(args.config, {})
    items = _training_items(build_items(cfg, None, with_eval=False))
    prior = load_prior(dim=LIVE_FEATURE_SET.dims["audio"])
    folds = cv.fold_of_items(items, cfg.protocol.folds, cfg.seed)
    for f in (int(x) for x in args.folds.split(",")):
        train, valid = cv.fold_samples(cfg, items, folds, f, prior, cfg.seed)
        t0 = time.perf_counter()
        model, _ = cv.train_mmcl(cfg, train, valid, cand, args.seed + 100 * f)
        row = cv.window_metrics(cv.mmcl_predictor(model)(valid), valid)
        line = {"candidate": cand, "fold": f, "seed": args.seed, "seconds": round(time.perf_counter() - t0), **row}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
