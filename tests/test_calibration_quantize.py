"""INT8 quantisation from recorded windows: the command, closeness to FP32, the onnx-int8 backend, GPU path.

Tolerance of "close to FP32" (stated, the project's INT8 parity tolerance): on every window,
``max |INT8 − eager FP32| <= 0.02 + 0.1 · max |eager FP32|`` over the batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_calibration import live_windows
from typer.testing import CliRunner

from calibration.quantize import QuantizeSettings, quantize_onnx_int8, quantize_tensorrt
from calibration.shards import ShardWriter, read_calibration
from mmcl.cli import app
from model.backends import create_backend
from model.backends.inputs import parity_cases
from model.backends.parity import eager_reference
from model.backends.precision import TOLERANCES
from model.backends.probe import modelopt_status, tensorrt_status
from model.checkpoint import load_checkpoint, save_checkpoint
from model.config import ModelConfig
from model.errors import BackendUnavailable, CheckpointError, ConfigError, ExportError
from model.evaluate import TaskInfo
from model.featureset import LIVE_V1
from model.mmcl import MMCL

# INT8 accuracy is checked on live-v1-shaped models: on live-v2's wider inputs (418 voice, 387 text columns)
# the same random-weight model and generated windows gave a max error of 0.094 against the 0.071 bound —
# an open issue (README, calibration).
LIVE_FEATURE_SET = LIVE_V1
TOL = TOLERANCES["int8"]
GPU_READY = tensorrt_status().ok and modelopt_status().ok
GPU_REASON = (
    f"needs torch-tensorrt + nvidia-modelopt + a CUDA GPU: {tensorrt_status().reason}; {modelopt_status().reason}"
)


def _checkpoint(path: Path, seed: int) -> Path:
    """A live-feature-set MMCL (d=32) whose input statistics are those of the generated live windows."""
    torch.manual_seed(seed)
    dims = LIVE_FEATURE_SET.dims
    model = MMCL(
        ModelConfig(
            dim_vision=dims["vision"],
            dim_audio=dims["audio"],
            dim_text=dims["text"],
            d_model=32,
            n_heads=4,
            head_hidden=32,
        )
    ).eval()
    x = live_windows(64, seed=99, dims=LIVE_FEATURE_SET.dims)
    stats = {}
    for m in ("vision", "audio", "text"):
        rows = getattr(x, m)[getattr(x, f"{m}_mask")]
        stats[m] = (torch.from_numpy(rows.mean(0)), torch.from_numpy(rows.std(0)))
    model.set_input_stats(stats)
    return save_checkpoint(
        path, model, task=TaskInfo(task="regression", label_kind="msa"), feature_set=LIVE_FEATURE_SET
    )


@pytest.fixture(scope="module")
def quantised(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quant")
    mp = pytest.MonkeyPatch()
    mp.setenv("MMCL_CACHE_DIR", str(tmp / "cache"))  # the FP32 export is cached here for this module
    ckpt = _checkpoint(tmp / "ck.pt", seed=0)
    w = ShardWriter(tmp / "calib", LIVE_FEATURE_SET, source="monitor", shard_windows=16)
    w.add_inputs(live_windows(48, seed=1, dims=LIVE_FEATURE_SET.dims))
    out = tmp / "model_int8.onnx"
    res = CliRunner().invoke(
        app,
        [
            "calibrate",
            "quantize",
            "--checkpoint",
            str(ckpt),
            "--calib",
            str(tmp / "calib"),
            "--out",
            str(out),
            "--batch",
            "8,1",
            "--budget",
            "0.3",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    report = json.loads(res.stdout.strip().splitlines()[-1])
    yield tmp, ckpt, out, report
    mp.undo()


def _bound(ref: np.ndarray) -> float:
    return TOL.bound(float(np.abs(ref).max()))


def test_int8_output_is_close_to_fp32_on_live_shaped_windows(quantised) -> None:
    _tmp, ckpt, out, report = quantised
    assert out.is_file() and report["quantization"]["parity"]["ok"]
    # read from the written graph: weight MatMuls in INT8, the attention/CSD products in FP32
    assert report["quantization"]["matmuls"]["quantised"] > 0 and report["quantization"]["matmuls"]["fp32"] > 0
    loaded = load_checkpoint(ckpt)
    backend = create_backend("onnx-int8", loaded)  # found through the checkpoint's record
    assert backend.path == out.resolve() and "onnx-int8" in backend.describe()
    fresh = live_windows(16, seed=2, dims=LIVE_FEATURE_SET.dims)  # not the calibration windows
    ref, got = eager_reference(loaded.model, fresh), backend.run(fresh)
    assert fresh.steps == 50 and got.shape == ref.shape == (16, 1)
    err = float(np.abs(got - ref).max())
    assert err <= _bound(ref), f"INT8 error {err:.4g} > {_bound(ref):.4g}"
    assert err > 0  # it really is a different (quantised) model
    for case in parity_cases(loaded.model):  # masked steps, missing modalities, NaN in masked steps, batch 1
        ref, got = eager_reference(loaded.model, case.inputs), backend.run(case.inputs)
        assert np.abs(got - ref).max() <= _bound(ref), case.name


def test_the_report_gives_speed_for_each_batch(quantised) -> None:
    _tmp, _ckpt, out, report = quantised
    rows = {r["batch"]: r for r in report["speed"]["rows"]}
    assert set(rows) == {8, 1}
    assert all(r["fp32_p50_ms"] > 0 and r["int8_p50_ms"] > 0 and r["speedup"] > 0 for r in rows.values())
    saved = json.loads(out.with_name(out.name + ".report.json").read_text())
    q = saved["quantization"]
    assert (q["calib_windows"], q["check_windows"]) == (39, 9) and len(saved["speed"]["loadavg_before"]) == 3
    assert q["parity"]["ok"] and q["parity"]["cases"][0]["name"].startswith("recorded windows 1–9")


def test_int8_that_does_not_fit_the_held_out_windows_is_refused(quantised) -> None:
    tmp, ckpt, _out, _report = quantised
    loaded = load_checkpoint(ckpt)
    calib = read_calibration(tmp / "calib", LIVE_FEATURE_SET, 20)
    cal = np.arange(20) % 5 != 4  # the windows the ranges are measured on (every 5th is held out)
    for m in ("vision", "audio", "text"):
        getattr(calib.inputs, m)[cal] *= 1e-4  # near-zero calibration windows: real ones get clipped
    with pytest.raises(ExportError, match=r"parity check failed.*recorded windows 1–4 \(held out\)"):
        quantize_onnx_int8(loaded, calib, tmp / "bad.onnx", settings=QuantizeSettings(batch=8))  # cached FP32 export
    assert not (tmp / "bad.onnx").exists()


def test_onnx_int8_backend_refuses_another_checkpoint_or_none(quantised, tmp_path: Path) -> None:
    _tmp, _ckpt, out, _report = quantised
    other = load_checkpoint(_checkpoint(tmp_path / "other.pt", seed=1))
    with pytest.raises(CheckpointError, match="another checkpoint"):
        create_backend("onnx-int8", other, path=str(out))
    with pytest.raises(BackendUnavailable, match="calibrate quantize"):
        create_backend("onnx-int8", other)


def test_wrong_feature_set_shards_are_refused_by_the_command(quantised, tmp_path: Path) -> None:
    from helpers_calibration import OLD_FEATURE_SET

    _tmp, ckpt, _out, _report = quantised
    ShardWriter(tmp_path / "old", OLD_FEATURE_SET, source="monitor").add_inputs(live_windows(4))
    res = CliRunner().invoke(
        app,
        [
            "calibrate",
            "quantize",
            "--checkpoint",
            str(ckpt),
            "--calib",
            str(tmp_path / "old"),
            "--out",
            str(tmp_path / "x.onnx"),
        ],
    )
    assert res.exit_code != 0 and "live-v0" in str(res.exception) and "live-v1" in str(res.exception)
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.skipif(GPU_READY, reason="TensorRT and ModelOpt are installed here")
def test_tensorrt_targets_say_what_is_missing(quantised, tmp_path: Path) -> None:
    tmp, ckpt, _out, _report = quantised
    for target in ("tensorrt-int8", "tensorrt-fp8"):
        res = CliRunner().invoke(
            app,
            [
                "calibrate",
                "quantize",
                "--checkpoint",
                str(ckpt),
                "--calib",
                str(tmp / "calib"),
                "--target",
                target,
                "--out",
                str(tmp_path / "e.ep"),
            ],
        )
        assert isinstance(res.exception, BackendUnavailable), res.output
        msg = str(res.exception)
        assert target in msg and "onnx-int8" in msg
        assert ("torch_tensorrt" in msg) or ("CUDA" in msg) or ("modelopt" in msg)


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.skipif(not GPU_READY, reason=GPU_REASON)
@pytest.mark.parametrize("target", ["tensorrt-int8", "tensorrt-fp8"])
def test_modelopt_ptq_engine_matches_fp32(quantised, tmp_path: Path, target: str) -> None:  # pragma: no cover
    tmp, ckpt, _out, _report = quantised
    loaded = load_checkpoint(ckpt)
    calib = read_calibration(tmp / "calib", LIVE_FEATURE_SET)
    result, backend = quantize_tensorrt(loaded, calib, tmp_path / f"{target}.ep", target)
    assert result.parity.ok and (tmp_path / f"{target}.ep").is_file()
    fresh = live_windows(8, seed=3, dims=LIVE_FEATURE_SET.dims)
    ref = eager_reference(loaded.model, fresh)
    assert np.abs(backend.run(fresh) - ref).max() <= _bound(ref)


def test_quantize_run_module_reports_progress_and_leaves_the_checkpoint_alone(quantised, tmp_path: Path) -> None:
    """calibration.quantize_run without the CLI: the callbacks see each step, --no-record keeps the checkpoint's
    record of the first run, and the command's printer words the result."""
    from calibration.config import CalibrationConfig
    from calibration.quantize_run import prepare_quantize, run_quantize
    from mmcl.commands.calibrate_cmd import _print_quant_report
    from model.checkpoint import read_checkpoint

    tmp, ckpt, first_out, _report = quantised
    before = read_checkpoint(ckpt)["extra"]["quantization"]["onnx-int8"]
    job = prepare_quantize(ckpt, tmp / "calib", tmp_path / "again.onnx", "onnx-int8", CalibrationConfig(),
                           batches=[1], budget_s=0.1, record=False)  # fmt: skip
    assert job.describe().startswith("calibration: 48 of 48 windows from 3 shard(s)")
    steps, batches, timed = [], [], []
    run = run_quantize(job, on_step=steps.append, on_batch=lambda d, t: batches.append((d, t)),
                       on_timed=lambda d, t: timed.append((d, t)))  # fmt: skip
    assert "done" in steps and batches and batches[-1][0] == batches[-1][1] and timed == [(0, 1), (1, 1)]
    assert run.report_path.is_file() and not run.recorded and run.labels == ("FP32 ONNX", "INT8 ONNX")
    assert read_checkpoint(ckpt)["extra"]["quantization"]["onnx-int8"] == before  # still the first file
    assert before["path"] == str(first_out.resolve())
    _print_quant_report(run)
    with pytest.raises(ConfigError, match="--target must be one of"):
        prepare_quantize(ckpt, tmp / "calib", tmp_path / "x.onnx", "onnx-fp4", CalibrationConfig())


def test_quantize_targets_are_met_or_missed_by_the_numbers() -> None:
    from calibration.quantize_run import TARGET_SPEEDUP_B64, targets_met

    report = {"speed": {"rows": [{"batch": 64, "speedup": TARGET_SPEEDUP_B64 - 0.01}, {"batch": 1, "speedup": 3.0}]},
              "accuracy": {"delta": {"acc2_has0": -0.005, "acc": -0.02, "mae": 0.03}}}  # fmt: skip
    got = targets_met(report)
    assert {k: v["met"] for k, v in got.items()} == {
        "speedup_b64": False, "acc2_has0_drop": True, "acc_drop": False, "mae_rise": False,
    }  # fmt: skip
    assert got["acc_drop"]["value"] == pytest.approx(0.02) and targets_met({}) == {}
