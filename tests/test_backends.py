"""Backends on the CPU: parity with eager for every model variant, the ONNX cache, precision transforms,
the registry, real-shaped inputs and the interleaved timer. (auto: test_backends_auto.py; TensorRT:
test_backends_tensorrt.py; exports: test_export.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers_backends import TINY_STEPS, VARIANTS, shared_cache_dir, tiny_loaded, tiny_model

from model.backends import BACKENDS, create_backend, parse_backend
from model.backends.inputs import live_like_inputs, parity_cases, synthetic_inputs
from model.backends.parity import compare, eager_reference
from model.backends.precision import LowPrecisionLinear, cpu_supports_bf16, low_precision_copy
from model.backends.timing import measure_interleaved
from model.errors import ConfigError


@pytest.fixture(autouse=True)
def _cache(monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", shared_cache_dir())


def _check(backend_name: str, loaded, precision: str = "fp32", steps: int = TINY_STEPS):
    backend = create_backend(backend_name, loaded)
    report = compare(
        backend_name,
        precision,
        lambda x: eager_reference(loaded.model, x),
        backend.run,
        parity_cases(loaded.model, steps),
    )
    return backend, report


def test_live_like_inputs_hold_the_live_window_situations():
    x = live_like_inputs(tiny_model(), 4, 10)
    assert x.vision.shape == (4, 10, 5) and x.vision_mask.dtype == bool
    assert x.vision_mask[0].all() and x.audio_mask[0].all() and x.text_mask[0].all()
    assert not x.vision_mask[1, -1] and np.isnan(x.vision[1, -1]).all()  # face lost, NaN in masked steps
    assert not x.audio_mask[2].any()  # audio missing
    assert not x.text_mask[3].any()  # no words yet
    names = [c.name for c in parity_cases(tiny_model(), 10)]
    assert any("batch 1" in n for n in names) and any("batch 4" in n for n in names)
    assert any("L=10" not in n for n in names)  # a second window length for dynamic-L graphs


@pytest.mark.parametrize("ablation, csd", VARIANTS)
def test_eager_fp32_and_bf16_match_the_reference_for_every_variant(ablation, csd):
    loaded = tiny_loaded(ablation, csd)
    _, exact = _check("eager", loaded)
    assert exact.ok and exact.max_abs_err == 0.0
    _, low = _check("eager:bf16", loaded, "bf16")
    assert low.ok, low.summary()
    assert low.max_abs_err > 0.0  # it really ran in BF16


def test_onnx_backend_matches_eager_and_reuses_its_cached_export(monkeypatch):
    loaded = tiny_loaded()
    backend, report = _check("onnx", loaded)
    assert report.ok, report.summary()
    assert report.max_abs_err < 1e-5
    path = backend.path
    assert path.is_file() and path.with_name(path.name + ".data").is_file()

    import model.backends.onnx_backend as ob

    def no_export(*a, **k):
        raise AssertionError("the cached export should have been used")

    monkeypatch.setattr(ob, "export_onnx", no_export)
    again = create_backend("onnx", loaded, threads=1)
    assert again.path == path and again.threads == 1
    x = live_like_inputs(loaded.model, 5, 13, seed=3)  # another batch size and window length
    np.testing.assert_allclose(again.run(x), eager_reference(loaded.model, x), atol=1e-5)
    with pytest.raises(AssertionError, match="cached export"):  # other weights → another cache entry
        create_backend("onnx", tiny_loaded(seed=1))


@pytest.mark.slow
@pytest.mark.parametrize("ablation, csd", [v for v in VARIANTS if v != ("none", "reference")])
def test_onnx_backend_every_other_variant(ablation, csd):
    _, report = _check("onnx", tiny_loaded(ablation, csd))
    assert report.ok, report.summary()


def test_compile_backend_matches_eager():
    """The one torch.compile test (compilation is slow): FP32, static shape, the live-like cases at L=8."""
    loaded = tiny_loaded("none", "paper")
    backend = create_backend("compile", loaded, dynamic=False, warmup=False)
    x = live_like_inputs(loaded.model, 4, TINY_STEPS)
    out = backend.run(x)
    np.testing.assert_allclose(out, eager_reference(loaded.model, x), atol=1e-5, rtol=1e-4)
    assert "compile (fp32" in backend.describe()


def test_low_precision_copy_keeps_the_original_and_norms_in_fp32():
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    low = low_precision_copy(model, "bf16")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    linears = [m for m in low.modules() if isinstance(m, LowPrecisionLinear)]
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)
    norms = [m for m in low.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(m.weight.dtype == torch.float32 for m in norms)
    assert not any(isinstance(m, torch.nn.Linear) for m in low.modules())
    assert low_precision_copy(model, "fp32") is model
    with pytest.raises(ConfigError):
        low_precision_copy(model, "int8")


def test_registry_parses_precision_and_rejects_unknown_names():
    assert set(BACKENDS) == {"eager", "compile", "onnx", "tensorrt", "onnx-int8", "auto"}
    assert parse_backend("compile:bf16") == ("compile", {"precision": "bf16"})
    assert parse_backend("onnx") == ("onnx", {})
    with pytest.raises(ConfigError, match="unknown backend"):
        create_backend("openvino", tiny_loaded())
    with pytest.raises(ConfigError, match="precision"):
        create_backend("onnx:bf16", tiny_loaded())
    with pytest.raises(ConfigError, match="precision"):
        create_backend("eager:int8", tiny_loaded())
    with pytest.raises(ConfigError, match="no :precision"):
        parse_backend("auto:fp16")


def test_auto_and_bench_candidates_come_from_the_registry(monkeypatch):
    from model.backends import BackendEntry, auto_candidates, bench_specs

    assert auto_candidates() == ("eager", "onnx")
    assert bench_specs() == ("eager", "eager:bf16", "compile", "compile:bf16", "onnx")
    assert bench_specs(gpu=True)[-2:] == ("tensorrt:fp16", "tensorrt:int8")
    monkeypatch.setitem(BACKENDS, "openvino", BackendEntry(lambda loaded, **o: ("built", o), ("fp32",),
                                                           auto_cpu=True, bench=("openvino",)))  # fmt: skip
    assert auto_candidates()[-1] == "openvino" and bench_specs()[-1] == "openvino"
    assert create_backend("openvino:fp32", tiny_loaded()) == ("built", {"precision": "fp32"})


def test_eager_backend_keeps_the_contract_for_one_window():
    loaded = tiny_loaded()
    x = synthetic_inputs(loaded.model, 1, TINY_STEPS)
    single = type(x).single(
        {m: getattr(x, m)[0] for m in ("vision", "audio", "text")},
        {m: getattr(x, f"{m}_mask")[0] for m in ("vision", "audio", "text")},
    )
    out = create_backend("eager", loaded).run(single)
    assert out.shape == (1, 1) and out.dtype == np.float32


def test_cpu_bf16_probe_matches_the_cpu_flags():
    flags = open("/proc/cpuinfo").read() if __import__("os").path.exists("/proc/cpuinfo") else ""
    native = " avx512_bf16" in flags or " amx_bf16" in flags
    if not flags:
        pytest.skip("no /proc/cpuinfo to compare with")
    assert cpu_supports_bf16() == native


def test_interleaved_timer_rotates_and_reports_percentiles():
    now = [0.0]
    order: list[str] = []

    def make(name: str, cost: float):
        def run():
            order.append(name)
            now[0] += cost

        return run

    stats = measure_interleaved(
        {"fast": make("fast", 0.001), "slow": make("slow", 0.004)},
        warmup=1,
        min_iters=10,
        max_iters=10,
        budget_s=100.0,
        clock=lambda: now[0],
    )
    assert stats["fast"].n == stats["slow"].n == 10
    assert stats["fast"].p50_ms == pytest.approx(1.0) and stats["slow"].p99_ms == pytest.approx(4.0)
    timed = order[2:]  # after one warm-up round
    assert timed[0:2] == ["fast", "slow"] and timed[2:4] == ["slow", "fast"]  # the order rotates per round
