"""``mmcl bench`` smoke test with tiny sizes: the JSON has every key the README and the lead rely on.
No timing assertions (timings belong to benchmarks, not tests)."""

from __future__ import annotations

import json

import pytest
from helpers_backends import tiny_checkpoint
from typer.testing import CliRunner

from mmcl.cli import app
from model.backends.bench import expand_backends, peer_checkpoint, shipped_model_config
from model.backends.precision import cpu_supports_bf16
from model.backends.probe import tensorrt_status
from model.errors import ConfigError
from model.peers.mult import MulTPeer


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path / "cache"))


def test_bench_json_has_rows_summary_peak_and_machine(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "t.pt")
    args = [
        "bench",
        "--checkpoint",
        str(ckpt),
        "--backend",
        "eager,eager:bf16",
        "--batch",
        "1,3",
        "--seq",
        "6",
        "--threads",
        "1",
        "--budget",
        "0.01",
        "--min-iters",
        "2",
        "--warmup",
        "1",
        "--matmul-size",
        "64",
        "--peer-backends",
        "eager",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {
        "machine",
        "model",
        "config",
        "threads",
        "matmul_peak_gflops",
        "models",
        "results",
        "summary",
        "skipped",
        "descriptions",
    } <= set(data)
    assert data["threads"] == 1 and data["matmul_peak_gflops"] > 0
    assert {"cpu", "torch", "onnxruntime", "python"} <= set(data["machine"])
    assert data["models"]["mmcl"]["parameters"] > 0 and data["models"]["mult"]["class"] == "MulTPeer"
    rows = {(r["model"], r["backend"], r["batch"]) for r in data["results"]}
    assert rows == {
        (m, b, n) for n in (1, 3) for m, b in [("mmcl", "eager"), ("mmcl", "eager:bf16"), ("mult", "eager")]
    }
    for r in data["results"]:
        assert r["n"] >= 2 and r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]
        assert r["throughput_sps"] > 0 and r["achieved_gflops"] > 0 and r["pct_fp32_peak"] > 0
        assert r["parity_ok"] and r["parity_max_abs_err"] <= r["parity_tolerance"]
        if r["backend"] == "eager":
            assert r["parity_max_abs_err"] == 0.0
    for batch in ("1", "3"):
        s = data["summary"][batch]
        assert s["best_backend"] in ("eager", "eager:bf16") and s["best_over_eager"] >= 1.0
        assert set(s["mmcl_over_mult"]) == {"eager"} and s["mmcl_over_mult"]["eager"] > 0
    # FLOPs are counted per batch: three samples cost three times one
    gflop = {(r["model"], r["batch"]): r["gflop"] for r in data["results"] if r["backend"] == "eager"}
    assert gflop[("mmcl", 3)] == pytest.approx(3 * gflop[("mmcl", 1)], rel=1e-6)


def test_bench_rejects_bad_options():
    runner = CliRunner()
    assert runner.invoke(app, ["bench", "--backend", "nosuch"]).exit_code != 0
    with pytest.raises(ConfigError):
        expand_backends(["nosuch"])
    from mmcl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "--batch", "1,x"])
    assert exc.value.code == 2


def test_all_means_every_backend_that_can_run_here():
    names = expand_backends(["all"])
    assert names[:1] == ["eager"] and {"compile", "onnx"} <= set(names)
    assert ("eager:bf16" in names) == cpu_supports_bf16()
    assert any(n.startswith("tensorrt") for n in names) == tensorrt_status().ok
    assert expand_backends(["onnx", "eager", "onnx"]) == ["onnx", "eager"]


def test_peer_matches_the_model_it_is_compared_with():
    from model.backends.bench import random_checkpoint

    loaded = random_checkpoint()
    assert loaded.model_cfg == shipped_model_config() and loaded.model_cfg.d_model == 256
    peer = peer_checkpoint(loaded).model
    assert isinstance(peer, MulTPeer)
    assert (peer.cfg.d_model, peer.cfg.n_heads, peer.cfg.ff_mult) == (256, loaded.model_cfg.n_heads, 2)
    assert peer.cfg.dim_text == loaded.model_cfg.dim_text and peer.cfg.out_dim == loaded.model_cfg.out_dim
