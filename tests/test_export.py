"""``mmcl export`` and ``model.export``: round trips through disk with parity, failures are errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers_backends import TINY_STEPS, VARIANTS, tiny_checkpoint, tiny_loaded
from typer.testing import CliRunner

from mmcl.cli import app
from model.backends.graphs import export_program
from model.backends.inputs import live_like_inputs, parity_cases
from model.backends.parity import compare, eager_reference
from model.backends.precision import TOLERANCES, Tolerance
from model.errors import BackendUnavailable, ConfigError
from model.export import export_checkpoint


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path / "cache"))


def test_onnx_export_round_trip_with_dynamic_batch_and_length(tmp_path):
    loaded = tiny_loaded("none", "paper")
    report = export_checkpoint(loaded, "onnx", tmp_path / "m.onnx", steps=TINY_STEPS)
    assert report.parity.ok and report.precision == "fp32"
    assert report.parity.max_abs_err < 1e-5
    assert [f.name for f in report.files] == ["m.onnx", "m.onnx.data"]
    names = [c.name for c in report.parity.cases]
    assert any("batch 1" in n for n in names) and any("missing" in n for n in names)

    import onnx

    graph = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False).graph
    assert [i.name for i in graph.input] == ["vision", "audio", "text", "vision_mask", "audio_mask", "text_mask"]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_param and dims[2].dim_value == 5  # batch, L dynamic; D fixed
    assert graph.input[3].type.tensor_type.elem_type == onnx.TensorProto.BOOL

    from model.backends import create_backend

    backend = create_backend("onnx", loaded, path=tmp_path / "m.onnx")
    x = live_like_inputs(loaded.model, 7, 21, seed=5)
    np.testing.assert_allclose(backend.run(x), eager_reference(loaded.model, x), atol=1e-5)


@pytest.mark.parametrize("ablation, csd", VARIANTS)
def test_every_variant_exports_as_one_graph_with_dynamic_batch(ablation, csd):
    """torch.export (the graph ONNX and torch-tensorrt consume) for every ablation and CSD variant; the time
    axis is static here to keep the test fast (the round trips below cover a dynamic L)."""
    loaded = tiny_loaded(ablation, csd)
    program = export_program(loaded.model, steps=TINY_STEPS, dynamic_steps=False)
    module = program.module()

    def run(x):
        with torch.inference_mode():
            return module(*x.tensors()).numpy()

    cases = parity_cases(loaded.model, TINY_STEPS, dynamic_steps=False)
    report = compare(f"{ablation}/{csd}", "fp32", lambda x: eager_reference(loaded.model, x), run, cases)
    assert report.ok and report.max_abs_err < 1e-5, report.summary()
    x = live_like_inputs(loaded.model, 9, TINY_STEPS, seed=4)  # a batch size not seen at export
    np.testing.assert_allclose(run(x), eager_reference(loaded.model, x), atol=1e-5)


@pytest.mark.parametrize("pool", ["mean_last", "attention"])
def test_other_step_poolings_export_as_one_graph(pool):
    """torch.export (what ONNX and torch-tensorrt consume) of the mean + last step and attention poolings."""
    loaded = tiny_loaded("none", "reference", pool=pool)
    module = export_program(loaded.model, steps=TINY_STEPS, dynamic_steps=False).module()

    def run(x):
        with torch.inference_mode():
            return module(*x.tensors()).numpy()

    cases = parity_cases(loaded.model, TINY_STEPS, dynamic_steps=False)
    report = compare(pool, "fp32", lambda x: eager_reference(loaded.model, x), run, cases)
    assert report.ok and report.max_abs_err < 1e-5, report.summary()


def test_export_cli_round_trip_in_bf16_prints_parity(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "t.pt")
    out = tmp_path / "b.pt2"
    result = CliRunner().invoke(
        app,
        [
            "export",
            "--checkpoint",
            str(ckpt),
            "--format",
            "exported-program",
            "--precision",
            "bf16",
            "--out",
            str(out),
            "--seq",
            str(TINY_STEPS),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    tol = TOLERANCES["bf16"]
    assert report["precision"] == "bf16" and report["parity"]["ok"]
    assert report["parity"]["tolerance"] == {"atol": tol.atol, "rtol": tol.rtol}
    assert 0.0 < report["parity"]["max_abs_err"]  # really BF16
    assert len(report["parity"]["cases"]) == 4 and report["files"] == [str(out)]
    module = torch.export.load(str(out)).module()  # the file on disk is the verified graph
    x = live_like_inputs(tiny_loaded().model, 2, 5, seed=8)
    with torch.inference_mode():
        got = module(*x.tensors()).numpy()
    np.testing.assert_allclose(got, eager_reference(tiny_loaded().model, x), atol=tol.bound(1.0))


def test_a_failing_parity_exits_2_and_leaves_no_file(tmp_path, monkeypatch, capsys):
    ckpt = tiny_checkpoint(tmp_path / "t.pt")
    monkeypatch.setitem(TOLERANCES, "fp32", Tolerance(atol=-1.0, rtol=0.0))  # nothing can pass
    from mmcl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(
            [
                "export",
                "--checkpoint",
                str(ckpt),
                "--format",
                "exported-program",
                "--out",
                str(tmp_path / "bad.pt2"),
                "--seq",
                str(TINY_STEPS),
            ]
        )
    assert exc.value.code == 2
    assert "parity check failed" in capsys.readouterr().err
    assert not (tmp_path / "bad.pt2").exists()


def test_export_rejects_unknown_formats_and_precisions(tmp_path):
    with pytest.raises(ConfigError, match="format"):
        export_checkpoint(tiny_loaded(), "tflite", tmp_path / "x")
    with pytest.raises(ConfigError, match="precision"):
        export_checkpoint(tiny_loaded(), "onnx", tmp_path / "x.onnx", precision="bf16")


def test_tensorrt_export_without_tensorrt_names_the_missing_piece(tmp_path):
    from model.backends.probe import tensorrt_status

    status = tensorrt_status()
    if status.ok:
        pytest.skip("TensorRT is usable here; tests/test_backends_tensorrt.py covers it")
    with pytest.raises(BackendUnavailable) as exc:
        export_checkpoint(tiny_loaded(), "tensorrt", tmp_path / "e.ep", steps=TINY_STEPS)
    assert status.reason in str(exc.value)
    assert "torch_tensorrt" in str(exc.value) or "CUDA" in str(exc.value)
