"""``auto``: TensorRT when usable, else the fastest CPU backend measured here, cached; one log line says why.

The lowest layer (``model.backends.probe.find_spec`` / ``cuda_device_count``) is patched to fake a machine
with a GPU but no torch-tensorrt, and the reverse; everything above it runs for real.
"""

from __future__ import annotations

import json
import logging

import pytest
from helpers_backends import TINY_STEPS, shared_cache_dir, tiny_loaded

import model.backends.auto as auto
import model.backends.probe as probe
from model.backends import create_backend
from model.backends.inputs import live_like_inputs
from model.backends.parity import eager_reference
from model.errors import BackendUnavailable, ConfigError

FAST = ("eager", "eager:bf16")  # cheap candidates for the decision logic (no export)


@pytest.fixture(autouse=True)
def _cache(monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", shared_cache_dir())


@pytest.fixture
def no_tensorrt(monkeypatch):
    """This machine as it is, but guaranteed without torch-tensorrt (so the test means the same anywhere)."""
    real = probe.find_spec
    monkeypatch.setattr(probe, "find_spec", lambda name: None if name == "torch_tensorrt" else real(name))


def _auto_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "model.backends.auto"]


def test_auto_measures_onnx_and_eager_here_and_says_why(no_tensorrt, caplog):
    caplog.set_level(logging.INFO, logger="model.backends.auto")
    loaded = tiny_loaded()
    backend = create_backend("auto", loaded, steps=TINY_STEPS, budget_s=0.2, remeasure=True)
    choice = backend.auto_choice
    assert choice.backend in ("eager", "onnx") and backend.name == choice.backend
    assert set(choice.p50_ms) == {"eager", "onnx"} and all(v > 0 for v in choice.p50_ms.values())
    assert choice.p50_ms[choice.backend] == min(choice.p50_ms.values())
    lines = _auto_lines(caplog)
    assert len(lines) == 1  # one line
    assert "TensorRT unavailable" in lines[0] and "torch_tensorrt is not installed" in lines[0]
    assert f"chose {choice.backend}" in lines[0] and "measured now" in lines[0]
    x = live_like_inputs(loaded.model, 3, TINY_STEPS)
    assert abs(backend.run(x) - eager_reference(loaded.model, x)).max() < 1e-5


def test_auto_caches_its_choice_per_checkpoint_and_machine(no_tensorrt, caplog, monkeypatch):
    loaded = tiny_loaded()
    before = set(auto.cache_dir("auto").glob("*.json"))
    first = create_backend("auto", loaded, candidates=FAST, steps=TINY_STEPS, budget_s=0.05, remeasure=True)
    first = first.auto_choice
    files = set(auto.cache_dir("auto").glob("*.json")) - before
    assert len(files) <= 1  # a new entry, or the same entry rewritten
    path = auto._choice_path(loaded, FAST, auto.LIVE_BATCHES, TINY_STEPS)
    assert json.loads(path.read_text())["backend"] == first.backend

    def no_measuring(*a, **k):
        raise AssertionError("a cached choice must not be measured again")

    monkeypatch.setattr(auto, "measure_interleaved", no_measuring)
    caplog.set_level(logging.INFO, logger="model.backends.auto")
    again = create_backend("auto", loaded, candidates=FAST, steps=TINY_STEPS, budget_s=0.05)
    assert again.auto_choice.cached and again.auto_choice.backend == first.backend
    assert "cached choice measured" in _auto_lines(caplog)[-1]
    with pytest.raises(AssertionError, match="cached choice"):  # another checkpoint is measured afresh
        create_backend("auto", tiny_loaded(seed=3), candidates=FAST, steps=TINY_STEPS, budget_s=0.05)
    with pytest.raises(AssertionError, match="cached choice"):  # so is a forced re-measurement
        create_backend("auto", loaded, candidates=FAST, steps=TINY_STEPS, budget_s=0.05, remeasure=True)


def test_gpu_present_but_torch_tensorrt_missing(no_tensorrt, monkeypatch, caplog):
    monkeypatch.setattr(probe, "cuda_device_count", lambda: 1)
    status = probe.tensorrt_status()
    assert not status.ok and "torch_tensorrt is not installed" in status.reason and "GPU" not in status.reason
    with pytest.raises(BackendUnavailable) as exc:
        create_backend("tensorrt", tiny_loaded())
    assert "torch_tensorrt is not installed" in str(exc.value) and "no CUDA GPU" not in str(exc.value)
    caplog.set_level(logging.INFO, logger="model.backends.auto")
    backend = create_backend("auto", tiny_loaded(), candidates=FAST, steps=TINY_STEPS, budget_s=0.05)
    assert backend.auto_choice.backend in FAST
    line = _auto_lines(caplog)[-1]
    assert "torch_tensorrt is not installed" in line and "no CUDA GPU" not in line


def test_torch_tensorrt_present_but_no_gpu(monkeypatch):
    real = probe.find_spec
    monkeypatch.setattr(probe, "find_spec", lambda name: object() if name == "torch_tensorrt" else real(name))
    monkeypatch.setattr(probe, "cuda_device_count", lambda: 0)
    with pytest.raises(BackendUnavailable) as exc:
        create_backend("tensorrt", tiny_loaded())
    assert "no CUDA GPU is visible" in str(exc.value) and "not installed" not in str(exc.value)


def test_tensorrt_that_fails_to_load_falls_back_to_the_cpu(monkeypatch, caplog):
    """Both probes say yes, but the import fails (a broken install): auto says so and measures the CPU."""
    import sys

    monkeypatch.setattr(probe, "find_spec", lambda name: object())
    monkeypatch.setattr(probe, "cuda_device_count", lambda: 1)
    monkeypatch.setitem(sys.modules, "torch_tensorrt", None)  # import raises ImportError
    caplog.set_level(logging.INFO, logger="model.backends.auto")
    backend = create_backend("auto", tiny_loaded(), candidates=FAST, steps=TINY_STEPS, budget_s=0.05)
    assert backend.auto_choice.backend in FAST
    assert "TensorRT present but unusable" in _auto_lines(caplog)[-1]


def test_auto_rejects_unknown_candidates(no_tensorrt):
    with pytest.raises(ConfigError, match="unknown candidate"):
        create_backend("auto", tiny_loaded(), candidates=("eager", "openvino"))
