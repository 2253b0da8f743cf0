"""The recipe of the shipped default checkpoint: real data → live features → MMCL → checkpoint + evaluation.

    build_items      text (TTS + ASR), voice (RAVDESS), face (London) [+ CREMA-D, MOUD for evaluation]
    compose_dataset  5 s live windows; T, TF, V, VF, F samples; splits by document / actor / subject
    fit × candidates the project's trainer (early stopping on valid); the lowest valid MAE wins
    save             FP16 weights + full config + feature set live-v1 → <out>/mmcl_live_default.pt
    evaluate         held-out per-modality and combined numbers next to simple baselines (of the saved,
                     FP16-rounded weights, i.e. exactly what ships)

Deterministic: every random choice is seeded from ``RecipeConfig.seed`` and the trainer seeds torch with
``train.seed`` and a fixed thread count; re-running with the cache or without it gives the same weights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmcl.recipes.build import BuiltItems, build_items
from mmcl.recipes.compose import compose_dataset
from mmcl.recipes.config import RecipeConfig
from mmcl.recipes.evaluate_default import evaluate_default
from mmcl.recipes.items import Progress
from mmcl.recipes.report import render_report
from model.checkpoint import load_checkpoint, save_checkpoint
from model.config import ModelConfig
from model.configlib import from_dict, to_dict
from model.data.types import MultimodalData
from model.evaluate import TaskInfo
from model.featureset import LIVE_FEATURE_SET
from model.pretrained import DEFAULT_NAME
from model.train import BatchCallback, EpochCallback, TrainResult, fit

log = logging.getLogger(__name__)

TrainingProgress = Callable[
    [str, int], AbstractContextManager[tuple[EpochCallback | None, BatchCallback | None]]
]


@contextlib.contextmanager
def _no_progress(_title: str, _epochs: int) -> Iterator[tuple[None, None]]:
    yield None, None


@dataclass
class RecipeResult:
    checkpoint: Path
    parameters: int
    size_bytes: int
    selected: dict[str, Any]
    candidates: list[dict[str, Any]]
    sizes: dict[str, dict[str, int]]
    kinds: dict[str, dict[str, int]]
    evaluation: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    installed: Path | None = None


def candidate_config(cfg: RecipeConfig, overrides: dict[str, Any]) -> ModelConfig:
    return from_dict(ModelConfig, {**to_dict(cfg.model), **overrides}, "candidates[]")


def train_candidates(
    cfg: RecipeConfig, data: MultimodalData, training: TrainingProgress
) -> tuple[TrainResult, list[dict[str, Any]]]:
    """Train every candidate size with the same data and seed; keep the lowest validation MAE."""
    best: TrainResult | None = None
    rows = []
    for i, over in enumerate(cfg.candidates):
        mcfg = candidate_config(cfg, over)
        title = f"model {i + 1}/{len(cfg.candidates)} " + " ".join(f"{k}={v}" for k, v in over.items())
        t0 = time.perf_counter()
        with training(title, cfg.train.epochs) as (on_epoch, on_batch):
            res = fit(mcfg, cfg.train, data, on_epoch=on_epoch, on_batch=on_batch)
        rows.append({
            "overrides": dict(over), "parameters": res.parameters, "best_epoch": res.best_epoch,
            "epochs_run": res.epochs_run, "valid_mae": res.valid["mae"], "valid_corr": res.valid["corr"],
            "valid_acc2_non0": res.valid["acc2_non0"], "seconds": round(time.perf_counter() - t0, 1),
        })  # fmt: skip
        log.info("candidate %s: valid MAE %.4f (%d parameters)", over, res.valid["mae"], res.parameters)
        if best is None or res.valid["mae"] < best.valid["mae"]:
            best = res
    assert best is not None
    for row in rows:
        row["selected"] = row["parameters"] == best.parameters and row["valid_mae"] == best.valid["mae"]
    return best, rows


def run_recipe(
    cfg: RecipeConfig,
    out_dir: str | Path,
    *,
    progress: Progress | None = None,
    training: TrainingProgress | None = None,
    media_eval: bool = True,
    install: bool = False,
) -> RecipeResult:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    built: BuiltItems = build_items(cfg, progress, with_eval=media_eval)
    seconds["build"] = time.perf_counter() - t0
    data = compose_dataset(built, cfg.compose, cfg.seed)
    t1 = time.perf_counter()
    best, rows = train_candidates(cfg, data, training or _no_progress)
    seconds["train"] = time.perf_counter() - t1
    assert best.model is not None

    sizes = built.sizes()
    kinds = data.meta["kinds"]
    path = out / DEFAULT_NAME
    save_checkpoint(
        path, best.model.cpu(), task=TaskInfo.from_data(data), feature_set=LIVE_FEATURE_SET, half=True,
        config={"model": to_dict(best.model.cfg), "train": to_dict(cfg.train), "recipe": to_dict(cfg)},
        metrics={"select_metric": "mae", "best_epoch": best.best_epoch, "epochs_run": best.epochs_run,
                 "parameters": best.parameters, "valid": best.valid, "test": best.test, "candidates": rows},
        extra={"recipe": {"command": "mmcl train-default", "items": sizes, "samples": kinds,
                          "build_seconds": {k: round(v, 1) for k, v in built.seconds.items()}}},
    )  # fmt: skip
    # Evaluate what ships: the FP16 weights as the monitor loads them.
    shipped = load_checkpoint(path, expected_features=LIVE_FEATURE_SET)
    t2 = time.perf_counter()
    evaluation = evaluate_default(built, data, shipped.model, cfg)
    seconds["evaluate"] = time.perf_counter() - t2
    result = RecipeResult(
        checkpoint=path, parameters=best.parameters, size_bytes=path.stat().st_size,
        selected={"model": to_dict(best.model.cfg), "valid": best.valid, "test": best.test,
                  "best_epoch": best.best_epoch},
        candidates=rows, sizes=sizes, kinds=kinds, evaluation=evaluation,
        seconds={**{k: round(v, 1) for k, v in seconds.items()},
                 **{f"build_{k}": round(v, 1) for k, v in built.seconds.items()}},
    )  # fmt: skip
    summary = {k: v for k, v in result.__dict__.items() if k not in ("checkpoint", "installed")}
    (out / "recipe_result.json").write_text(json.dumps(to_dict(summary), indent=2, default=str) + "\n")
    (out / "report.md").write_text(render_report(result, cfg))
    if install:
        from model.pretrained import __file__ as pretrained_init

        target = Path(pretrained_init).resolve().parent / DEFAULT_NAME
        shutil.copyfile(path, target)
        result.installed = target
    return result
