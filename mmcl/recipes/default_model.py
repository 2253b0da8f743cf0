"""The recipe of the shipped default checkpoint: real data → live features → grouped CV → MMCL → checkpoint.

    build_items   rated sentences (clean text; eSpeak + ASR), RAVDESS, pyAudioAnalysis, London faces
                  [+ CREMA-D, MOUD: evaluation only]; each source's person groups split dev / final test
    CV            person-grouped folds over the dev groups (cv.py): every candidate (MMCL with CSD paper /
                  reference / off) and the two baselines (linear probe, late fusion) on every fold
    choose        the candidate with the best mean CV score; CSD off only if it beats the best CSD variant
                  by more than the fold-to-fold spread of the difference
    final         the chosen candidate trained on all dev groups (the configured epochs, last epoch kept)
    final test    the held-out groups, scored once, after every choice (MMCL and both baselines)
    intervals     split conformal (90%) on the chosen candidate's out-of-fold CV residuals, valence and
                  arousal (intervals.py); their coverage on the final-test groups
    save          FP16 weights + config + CV table + final test + intervals → <out>/mmcl_live_default.pt

Deterministic: every random choice is seeded from the recipe seed, the fold and the candidate seed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmcl.recipes import cv, intervals
from mmcl.recipes.build import BuiltItems, build_items
from mmcl.recipes.compose import Composer, Sample
from mmcl.recipes.config import RecipeConfig
from mmcl.recipes.items import Item, Progress
from mmcl.recipes.report import render_report
from model.checkpoint import load_checkpoint, save_checkpoint, update_checkpoint_extra
from model.configlib import to_dict
from model.evaluate import TaskInfo
from model.featureset import LIVE_FEATURE_SET
from model.pretrained import DEFAULT_NAME
from realtime.features.speaker import load_prior

log = logging.getLogger(__name__)
TRAIN_SOURCES = ("clean_text", "text", "voice", "pyaa", "face")


@contextlib.contextmanager
def _no_progress(_title: str, _epochs: int) -> Iterator[tuple[None, None]]:
    yield None, None


@dataclass
class RecipeResult:
    checkpoint: Path
    parameters: int
    size_bytes: int
    chosen: dict[str, Any]
    cv: dict[str, Any]  # name → {"folds": [...], "summary": {metric: (mean, std)}}
    final_test: dict[str, dict[str, float]]
    media: dict[str, Any]
    sizes: dict[str, dict[str, int]]
    seconds: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, Any] = field(default_factory=dict)  # the checkpoint's calibration record
    installed: Path | None = None


def score(metrics: dict[str, float]) -> float:
    """The one number that ranks candidates: the mean of the product's per-modality questions."""
    parts = [metrics.get(k, float("nan")) for k in ("voice_bal", "face_auc", "text_clean", "text_tts")]
    parts = [p for p in parts if np.isfinite(p)]
    return float(np.mean(parts)) if parts else float("nan")


def _training_items(built: BuiltItems) -> list[Item]:
    return [it for s in TRAIN_SOURCES for it in built.of(s)]


_JOB: dict[str, Any] = {}  # what forked CV workers read (set before the pool starts; never pickled)
_FOLDS: dict[int, tuple[list[Sample], list[Sample]]] = {}  # a worker's composed folds (composition is seeded)


def _fold(f: int) -> tuple[list[Sample], list[Sample]]:
    cfg = _JOB["cfg"]
    if f not in _FOLDS:
        _FOLDS[f] = cv.fold_samples(cfg, _JOB["items"], _JOB["folds"], f, _JOB["prior"], cfg.seed)
    return _FOLDS[f]


def _cv_job(job: tuple[int, int, int]) -> tuple[dict[str, dict[str, float]], intervals.Residuals]:
    """One fold × candidate × seed (and the baselines with the fold's first job): (name → metrics, the
    candidate's out-of-fold residuals for the intervals)."""
    f, c, seed = job
    cfg = _JOB["cfg"]
    train, valid = _fold(f)
    cand = cfg.protocol.candidates[c]
    out = {}
    if c == 0 and seed == cfg.protocol.seeds[0]:
        for name, make in (("linear probe", cv.linear_probe), ("late fusion", cv.late_fusion)):
            out[name] = {**cv.window_metrics(make(train)(valid), valid), "fold": f}
    t0 = time.perf_counter()
    model, _res = cv.train_mmcl(cfg, train, valid, cand, seed + 100 * f)
    pred = cv.mmcl_predictor(model)(valid)
    row = cv.window_metrics(pred, valid)
    out[candidate_name(cand)] = {**row, "fold": f, "seed": seed, "windows": len(train),
                                 "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    log.info("fold %d %s seed %d: %s", f, candidate_name(cand), seed, out[candidate_name(cand)])
    return out, intervals.residuals(pred, valid)


def run_cv(
    cfg: RecipeConfig, items: list[Item], prior: np.ndarray, jobs: int = 1
) -> tuple[dict[str, Any], dict[str, list[intervals.Residuals]]]:
    """Every candidate and baseline on every fold: (name → per-fold metrics and their mean ± std, candidate
    name → its out-of-fold residuals, one record per fold and seed).

    ``jobs`` > 1 runs that many trainings at once in forked workers (one torch thread each)."""
    import concurrent.futures
    import multiprocessing

    _JOB.update(cfg=cfg, items=items, prior=prior, folds=cv.fold_of_items(items, cfg.protocol.folds, cfg.seed))
    _FOLDS.clear()
    # seed-major: the first seed's table over every fold and candidate is complete first (logged per job)
    work = [(f, c, s) for s in cfg.protocol.seeds for f in range(cfg.protocol.folds)
            for c in range(len(cfg.protocol.candidates))]  # fmt: skip
    if jobs > 1:
        ctx = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
            results = list(pool.map(_cv_job, work))
    else:
        results = [_cv_job(w) for w in work]
    _FOLDS.clear()
    table: dict[str, list[dict[str, float]]] = {}
    oof: dict[str, list[intervals.Residuals]] = {}
    for (_f, c, _s), (res, resid) in zip(work, results, strict=True):
        for name, row in res.items():
            table.setdefault(name, []).append(row)
        oof.setdefault(candidate_name(cfg.protocol.candidates[c]), []).append(resid)
    return {name: {"folds": rows, "summary": cv.summarise(rows),
                   "score": [score(r) for r in rows]} for name, rows in table.items()}, oof  # fmt: skip


def candidate_name(cand: dict[str, Any]) -> str:
    """"MMCL CSD paper" / "… reference" / "… off", then any other setting the candidate changes."""
    base = "MMCL CSD off" if is_csd_off(cand) else f"MMCL CSD {cand.get('csd', 'paper')}"
    rest = [f"{k} {v}" for k, v in cand.items() if k not in ("csd", "ablation")]
    return ", ".join([base, *rest])


def is_csd_off(cand: dict[str, Any]) -> bool:
    return cand.get("ablation", "none") == "no_csd"


def choose(table: dict[str, Any], candidates: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The candidate to ship and why: the best mean CV score among those with CSD; a CSD-off candidate
    only if it beats that one by more than the fold-to-fold spread of the difference."""
    names = [candidate_name(c) for c in candidates]
    mean = {n: float(np.nanmean(table[n]["score"])) for n in names}
    with_csd = [n for n, c in zip(names, candidates, strict=True) if not is_csd_off(c)]
    off = [n for n, c in zip(names, candidates, strict=True) if is_csd_off(c)]
    best = max(with_csd or names, key=lambda n: mean[n])
    reason = f"{best}: the best CV score of the CSD candidates ({mean[best]:.3f})"
    if off and with_csd:
        best_off = max(off, key=lambda n: mean[n])
        diff = np.asarray(table[best_off]["score"]) - np.asarray(table[best]["score"])
        if diff.mean() > diff.std():
            reason = f"{best_off} beats {best} by {diff.mean():.3f} > the fold spread {diff.std():.3f}"
            best = best_off
        else:
            reason += f"; {best_off} differs by {diff.mean():+.3f} (fold spread {diff.std():.3f}), not beyond it"
    return candidates[names.index(best)], reason


def final_test(
    cfg: RecipeConfig, pred: np.ndarray, dev: list[Sample], test: list[Sample]
) -> dict[str, dict[str, float]]:  # fmt: skip
    """``pred``: the shipped model's predictions on ``test``; the baselines are fitted on ``dev`` here."""
    out = {"MMCL (shipped)": cv.window_metrics(pred, test)}
    out["linear probe"] = cv.window_metrics(cv.linear_probe(dev)(test), test)
    out["late fusion"] = cv.window_metrics(cv.late_fusion(dev)(test), test)
    for row in out.values():
        row["score"] = score(row)
    return out


def media_checks(model, built: BuiltItems, cfg: RecipeConfig, prior: np.ndarray) -> dict[str, Any]:
    """CREMA-D (one actor, six emotions): mean prediction per intended emotion, all modalities and face alone."""
    from mmcl.recipes.compose import drop

    items = built.of("crema_d")
    if not items:
        return {}
    samples = Composer(cfg.compose, prior, cfg.seed, train=False).compose(
        [Item(**{**it.__dict__, "source": "voice"}) for it in items]
    )  # the clips as one speaker's session
    samples = [s for s in samples if s.kind == "V"]
    face_only = [Sample("F", s.id, drop(s.win, ["audio", "text"]), s.label, s.source, s.group, s.meta) for s in samples]
    out: dict[str, Any] = {}
    for name, ss in (("all", samples), ("face", face_only)):
        pred = np.asarray(cv.mmcl_predictor(model)(ss)).reshape(len(ss), -1)[:, 0]
        out[name] = {str(s.meta.get("emotion")): round(float(p), 3) for s, p in zip(ss, pred, strict=True)}
    return out


def run_recipe(
    cfg: RecipeConfig, out_dir: str | Path, *, progress: Progress | None = None, training=None,
    media_eval: bool = True, install: bool = False, jobs: int = 1,
) -> RecipeResult:  # fmt: skip
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    built = build_items(cfg, progress, with_eval=media_eval)
    seconds["build"] = time.perf_counter() - t0
    prior = load_prior(dim=LIVE_FEATURE_SET.dims["audio"])
    items = _training_items(built)
    t1 = time.perf_counter()
    table, oof = run_cv(cfg, items, prior, jobs)
    chosen, reason = choose(table, cfg.protocol.candidates)
    seconds["cv"] = time.perf_counter() - t1
    log.info("chosen: %s", reason)
    return finish_recipe(cfg, out, built, table, oof, (chosen, reason), seconds=seconds, training=training,
                         media_eval=media_eval, install=install)  # fmt: skip


def finish_recipe(
    cfg: RecipeConfig, out: Path, built: BuiltItems, table: dict[str, Any],
    oof: dict[str, list[intervals.Residuals]], choice: tuple[dict[str, Any], str], *,
    seconds: dict[str, float] | None = None, training=None, media_eval: bool = True, install: bool = False,
) -> RecipeResult:  # fmt: skip
    """After the CV and the choice: the final model on every development group, the final test (once), the
    intervals from the chosen candidate's out-of-fold residuals, the checkpoint and the report."""
    chosen, reason = choice
    seconds = dict(seconds or {})
    training = training or _no_progress
    prior = load_prior(dim=LIVE_FEATURE_SET.dims["audio"])
    items = _training_items(built)
    # the final model: every development group; then the final test, once
    dev = Composer(cfg.compose, prior, [cfg.seed, 99], train=True).compose([i for i in items if i.split == "dev"])
    test = Composer(cfg.compose, prior, [cfg.seed, 99], train=False).compose([i for i in items if i.split == "test"])
    t2 = time.perf_counter()
    with training(f"final {candidate_name(chosen)} on all development groups", cfg.train.epochs) as (on_epoch, _):
        model, res = cv.train_mmcl(cfg, dev, dev[:: max(1, len(dev) // 500)], chosen, cfg.train.seed, on_epoch)
    seconds["final"] = time.perf_counter() - t2
    path = out / DEFAULT_NAME
    data = cv.as_data(dev[:4], dev[:4])
    task = TaskInfo(**{**TaskInfo.from_data(data).to_dict(), "arousal": model.cfg.arousal_head})
    save_checkpoint(
        path, model.cpu(), task=task, feature_set=LIVE_FEATURE_SET, half=True,
        config={"model": to_dict(model.cfg), "train": to_dict(cfg.train), "recipe": to_dict(cfg)},
        metrics={"chosen": reason, "epochs": res.epochs_run, "parameters": res.parameters,
                 "cv": {n: v["summary"] for n, v in table.items()}},
        extra={"recipe": {"command": "mmcl train-default", "items": built.sizes()}},
    )  # fmt: skip
    shipped = load_checkpoint(path, expected_features=LIVE_FEATURE_SET)  # what ships: FP16-rounded weights
    test_pred = cv.mmcl_predictor(shipped.model)(test)  # once: the final-test table and the intervals' coverage
    tested = final_test(cfg, test_pred, dev, test)
    calib = intervals.fit_intervals(oof[candidate_name(chosen)], intervals.residuals(test_pred, test))
    if calib:
        update_checkpoint_extra(path, "calibration", calib)  # ŷ ± q on the dashboard
    for key, rec in calib.items():
        tested["MMCL (shipped)"][f"{key}_coverage"] = rec["test_coverage"]
    media = media_checks(shipped.model, built, cfg, prior) if media_eval else {}
    result = RecipeResult(
        checkpoint=path, parameters=res.parameters, size_bytes=path.stat().st_size,
        chosen={"candidate": chosen, "reason": reason}, cv=table, final_test=tested, media=media,
        sizes=built.sizes(), seconds={k: round(v, 1) for k, v in seconds.items()}, intervals=calib,
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
