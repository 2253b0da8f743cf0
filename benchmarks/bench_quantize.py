"""INT8 (ONNX Runtime static QDQ) against FP32 ONNX on a trained model: accuracy on held-out data and speed.

    .venv/bin/python benchmarks/bench_quantize.py [--d-model 256,64] [--epochs 6] [--attention] [--default]

For each model size: planted-signal data on the live feature dimensions (vision 56, audio 34, text 384,
L = 50; ``model.data.planted`` with the live feature-set record, so the checkpoint is a live one), an MMCL
regressor trained with ``model.train.fit``, its train-split windows written as calibration shards
(``calibration.recorder.record_dataset_windows``, the path ``mmcl extract --record-calib`` takes), then
``mmcl calibrate quantize --eval-data`` run as a user would (its JSON report parsed): Acc2/MAE of FP32
vs INT8 on the test split and the interleaved latency ratio at batch 64 and 1. With ``--attention`` it
also quantises the attention/CSD products. ``--default`` adds the shipped default checkpoint on its own
held-out data (composed by its recipe from the cached items of ``mmcl train-default``; train+valid
windows calibrate, test scores). Trained checkpoints and data are reused on a re-run.

A benchmark prints numbers; it asserts nothing. Only ratios measured in one run mean anything on a
shared machine (the load average is printed with them).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def planted_live(path: Path, seed: int = 0, n: tuple[int, int, int] = (1200, 300, 300)) -> Path:
    from model.data.planted import make_planted_mmsa
    from model.featureset import LIVE_FEATURE_SET

    if not path.is_file():
        raw = make_planted_mmsa(*n, seq_len=50, dims=LIVE_FEATURE_SET.dims, seed=seed)
        raw["feature_set"] = LIVE_FEATURE_SET.to_dict()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            pickle.dump(raw, f)
    return path


def train(data_path: Path, out: Path, d_model: int, epochs: int) -> Path:
    from model.config import DataConfig, ModelConfig, TrainConfig
    from model.data.loading import load_dataset
    from model.train import fit

    ckpt = out / "best.pt"
    if ckpt.is_file():
        return ckpt
    data = load_dataset(DataConfig(path=str(data_path)))
    t0 = time.perf_counter()
    res = fit(ModelConfig(d_model=d_model, n_heads=4), TrainConfig(epochs=epochs, patience=epochs, num_threads=2),
              data, out_dir=out)  # fmt: skip
    print(f"  trained d={d_model}: {res.epochs_run} epochs in {time.perf_counter() - t0:.0f} s; "
          f"test MAE {res.test['mae']:.4f}, Acc2 {res.test['acc2_has0']:.4f}")  # fmt: skip
    return ckpt


def write_mmsa(data, path: Path) -> Path:
    """A MultimodalData as an MMSA pickle with masks and the live feature-set record (the extract layout)."""
    import numpy as np

    raw = {"feature_set": data.feature_set.to_dict()}
    for name, s in data.splits.items():
        raw[name] = {
            "vision": s.vision,
            "audio": s.audio,
            "text": s.text,
            **{f"{m}_mask": s.mask(m).astype(np.uint8) for m in ("vision", "audio", "text")},
            "regression_labels": s.labels.astype(np.float32),
            "classification_labels": np.sign(s.labels).astype(np.int64) + 1,
            "id": list(s.ids),
            "raw_text": list(s.raw_text or [""] * len(s)),
        }
    with path.open("wb") as f:
        pickle.dump(raw, f)
    return path


def default_model_data(out: Path) -> tuple[Path, Path]:
    """The shipped default checkpoint and its held-out data, composed by its recipe from the cached items
    (``mmcl train-default`` must have run here, so that the items are cached)."""
    from mmcl.recipes.build import build_items
    from mmcl.recipes.compose import Composer
    from mmcl.recipes.config import load_recipe_config
    from mmcl.recipes.cv import as_data
    from mmcl.recipes.default_model import TRAIN_SOURCES
    from model.pretrained import default_checkpoint_path
    from realtime.features.speaker import load_prior

    path = out / "default_data.pkl"
    if not path.is_file():
        cfg = load_recipe_config()
        built = build_items(cfg, None, with_eval=False)
        items = [it for s in TRAIN_SOURCES for it in built.of(s)]
        prior = load_prior()
        dev = Composer(cfg.compose, prior, cfg.seed, train=True).compose([i for i in items if i.split == "dev"])
        test = Composer(cfg.compose, prior, cfg.seed, train=False).compose([i for i in items if i.split == "test"])
        data = as_data(dev, test)
        out.mkdir(parents=True, exist_ok=True)
        write_mmsa(data, path)
    return default_checkpoint_path(), path


def quantize_report(ckpt: Path, calib: Path, data: Path, out: Path, attention: bool, budget: float) -> dict:
    env = {**os.environ, "COLUMNS": "120"}
    cmd = [sys.executable, "-m", "mmcl.cli", "calibrate", "quantize", "--checkpoint", str(ckpt), "--calib",
           str(calib), "--out", str(out), "--eval-data", str(data), "--budget", str(budget), "--json",
           "--no-record", "--attention" if attention else "--no-attention"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if proc.returncode:
        print(proc.stderr[-2000:])
        raise SystemExit(proc.returncode)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_report(tag: str, rep: dict, seconds: float) -> None:
    acc, speed = rep["accuracy"], rep["speed"]
    print(f"\n{tag}: quantised in {seconds:.0f} s; {rep['quantization']['notes'][0]}")
    q = rep["quantization"]
    syn = q["synthetic"]
    print(f"  calibrated on {q['calib_windows']} windows; max |INT8 − FP32| on {q['check_windows']} held-out "
          f"recorded windows {q['parity']['max_abs_err']:.4g} (gate ok: {q['parity']['ok']}); synthetic cases "
          f"{syn['max_abs_err']:.4g} (within tolerance: {syn['ok']}); {acc['split']} split {acc['samples']} "
          f"samples, max |output diff| {acc['max_abs_output_diff']:.4g}")  # fmt: skip
    for k in ("acc2_has0", "acc2_non0", "mae", "corr", "acc7"):
        print(f"  {k:<10} FP32 {acc['fp32'][k]:.4f}  INT8 {acc['int8'][k]:.4f}  Δ {acc['delta'][k]:+.4f}")
    for r in speed["rows"]:
        print(f"  batch {r['batch']:>3}: FP32 {r['fp32_p50_ms']:.2f} ms, INT8 {r['int8_p50_ms']:.2f} ms (p50) "
              f"→ {r['speedup']:.2f}× ({r['iterations']} runs each, interleaved)")  # fmt: skip
    lb, la = speed["loadavg_before"], speed["loadavg_after"]
    print(f"  load average before {lb[0]:.1f}, after {la[0]:.1f} (2 cores); threads {speed['threads']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d-model", default="256,64", help="planted models to train ('' = none)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_quantize")
    ap.add_argument("--attention", action="store_true", help="also run with attention/CSD products quantised")
    ap.add_argument("--default", action="store_true", help="also the shipped default checkpoint on its test split")
    ap.add_argument("--budget", type=float, default=12.0, help="timing seconds per backend and batch")
    args = ap.parse_args()
    from calibration.recorder import record_dataset_windows

    variants = [False, True] if args.attention else [False]
    if args.default:
        ckpt, data = default_model_data(args.out)
        calib = args.out / "default_calib"
        if not (calib / "manifest.json").is_file():
            n = record_dataset_windows(data, calib)
            print(f"default model: {n} train+valid windows → {calib}")
        for attention in variants:
            tag = "default" + ("_attn" if attention else "")
            t0 = time.perf_counter()
            rep = quantize_report(ckpt, calib, data, args.out / f"{tag}_int8.onnx", attention, args.budget)
            print_report(f"{tag} ({ckpt.name})", rep, time.perf_counter() - t0)
    sizes = [int(x) for x in args.d_model.split(",") if x.strip()]
    if not sizes:
        return
    data = planted_live(args.out / "planted_live.pkl")
    calib = args.out / "calib"
    if not (calib / "manifest.json").is_file():
        n = record_dataset_windows(data, calib, splits=("train",))
        print(f"calibration shards: {n} train windows → {calib}")
    for d in sizes:
        ckpt = train(data, args.out / f"d{d}", d, args.epochs)
        for attention in variants:
            tag = f"d{d}" + ("_attn" if attention else "")
            t0 = time.perf_counter()
            rep = quantize_report(ckpt, calib, data, args.out / f"{tag}_int8.onnx", attention, args.budget)
            print_report(tag, rep, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
