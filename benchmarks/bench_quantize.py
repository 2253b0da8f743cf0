"""INT8 (ONNX Runtime static QDQ) against FP32 ONNX on a trained model: accuracy on held-out data and speed.

    .venv/bin/python benchmarks/bench_quantize.py [--d-model 256,64] [--epochs 6] [--out runs/bench_quantize]

For each model size: planted-signal data on the live feature dimensions (vision 56, audio 34, text 384,
L = 50; ``model.data.planted`` with the live feature-set record, so the checkpoint is a live one), an MMCL
regressor trained with ``model.train.fit``, its train-split windows written as calibration shards
(``calibration.recorder.record_dataset_windows``, the path ``mmcl extract --record-calib`` takes), then
``mmcl calibrate quantize --eval-data`` run as a user would (its JSON report parsed): Acc2/MAE of FP32
vs INT8 on the test split and the interleaved latency ratio at batch 64 and 1. With ``--attention`` it
also quantises the attention/CSD products. Trained checkpoints are reused on a re-run.

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d-model", default="256,64")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_quantize")
    ap.add_argument("--attention", action="store_true", help="also run with attention/CSD products quantised")
    ap.add_argument("--budget", type=float, default=4.0)
    args = ap.parse_args()
    from calibration.recorder import record_dataset_windows

    data = planted_live(args.out / "planted_live.pkl")
    calib = args.out / "calib"
    if not (calib / "manifest.json").is_file():
        n = record_dataset_windows(data, calib, splits=("train",))
        print(f"calibration shards: {n} train windows → {calib}")
    env = {**os.environ, "COLUMNS": "120"}
    for d in [int(x) for x in args.d_model.split(",")]:
        ckpt = train(data, args.out / f"d{d}", d, args.epochs)
        for attention in [False, True] if args.attention else [False]:
            tag = f"d{d}" + ("_attn" if attention else "")
            cmd = [sys.executable, "-m", "mmcl.cli", "calibrate", "quantize", "--checkpoint", str(ckpt),
                   "--calib", str(calib), "--out", str(args.out / f"{tag}_int8.onnx"), "--eval-data", str(data),
                   "--budget", str(args.budget), "--json", "--no-record",
                   "--attention" if attention else "--no-attention"]  # fmt: skip
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
            if proc.returncode:
                print(proc.stderr[-2000:])
                raise SystemExit(proc.returncode)
            rep = json.loads(proc.stdout.strip().splitlines()[-1])
            acc, speed = rep["accuracy"], rep["speed"]
            print(f"\n{tag}: quantised in {time.perf_counter() - t0:.0f} s; {rep['quantization']['notes'][0]}")
            print(f"  parity max abs err {rep['quantization']['parity']['max_abs_err']:.4g}; on calibration windows "
                  f"{rep['quantization']['calib_max_abs_err']:.4g}")  # fmt: skip
            for k in ("acc2_has0", "acc2_non0", "mae", "corr", "acc7"):
                print(f"  {k:<10} FP32 {acc['fp32'][k]:.4f}  INT8 {acc['int8'][k]:.4f}  Δ {acc['delta'][k]:+.4f}")
            for r in speed["rows"]:
                print(f"  batch {r['batch']:>3}: FP32 {r['fp32_p50_ms']:.2f} ms, INT8 {r['int8_p50_ms']:.2f} ms (p50) "
                      f"→ {r['speedup']:.2f}× ({r['iterations']} runs each, interleaved)")  # fmt: skip
            lb, la = speed["loadavg_before"], speed["loadavg_after"]
            print(f"  load average before {lb[0]:.1f}, after {la[0]:.1f} (2 cores); threads {speed['threads']}")


if __name__ == "__main__":
    main()
