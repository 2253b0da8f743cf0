"""TensorRT engines and CUDA graphs: run only where torch-tensorrt and/or a CUDA GPU exist (skipped here
with the reason). benchmarks/bench_gpu.py exercises the same code on a GPU machine without TensorRT."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers_backends import tiny_loaded

from model.backends.inputs import live_like_inputs
from model.backends.parity import eager_reference
from model.backends.probe import cuda_status, modelopt_status, tensorrt_status

STEPS = 12
TRT = tensorrt_status()
CUDA = cuda_status()

needs_gpu = pytest.mark.skipif(not CUDA.ok, reason=f"needs a CUDA GPU: {CUDA.reason}")
needs_trt = pytest.mark.skipif(not TRT.ok, reason=f"needs torch-tensorrt on a CUDA GPU: {TRT.reason}")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.gpu
@needs_gpu
def test_cuda_graph_replay_equals_eager_on_the_gpu():
    from model.backends.cudagraph import CudaGraphRunner

    loaded = tiny_loaded()
    model = loaded.model.cuda()
    x = live_like_inputs(model, 1, STEPS)
    runner = CudaGraphRunner(model, x.tensors("cuda"))
    for seed in (1, 2):  # new inputs are copied into the static buffers before each replay
        y = live_like_inputs(model, 1, STEPS, seed=seed)
        with torch.inference_mode():
            want = model(*y.tensors("cuda")).cpu().numpy()
        np.testing.assert_allclose(runner(*y.tensors("cuda")).cpu().numpy(), want, atol=1e-6)
    assert not runner.matches(live_like_inputs(model, 2, STEPS).tensors("cuda"))


@pytest.mark.tensorrt
@pytest.mark.gpu
@needs_trt
def test_tensorrt_fp16_engine_parity_cache_and_batch_1_graph(tmp_path):
    from model.backends import create_backend

    loaded = tiny_loaded()
    backend = create_backend("tensorrt", loaded, steps=STEPS, max_batch=8)
    assert backend.parity is not None and backend.parity.ok, backend.parity.summary()
    assert backend.engine_path.is_file()
    for batch in (1, 3, 8, 11):  # 11 > max_batch: run in chunks
        x = live_like_inputs(loaded.model, batch, STEPS, seed=batch)
        ref = eager_reference(loaded.model.cpu(), x)
        assert np.abs(backend.run(x) - ref).max() <= backend.parity.tolerance.bound(float(np.abs(ref).max()))
    again = create_backend("tensorrt", loaded, steps=STEPS, max_batch=8)  # loaded from the engine cache
    assert again.engine_path == backend.engine_path and again.parity.ok
    with pytest.raises(Exception, match="L=12"):
        backend.run(live_like_inputs(loaded.model, 1, STEPS + 1))


@pytest.mark.tensorrt
@pytest.mark.gpu
@needs_trt
@pytest.mark.skipif(not modelopt_status().ok, reason=f"INT8 needs NVIDIA ModelOpt: {modelopt_status().reason}")
def test_tensorrt_int8_engine_passes_its_parity_check():
    from model.backends import create_backend

    loaded = tiny_loaded()
    calib = [live_like_inputs(loaded.model, 32, STEPS, seed=100 + i) for i in range(4)]
    backend = create_backend("tensorrt:int8", loaded, steps=STEPS, max_batch=8, calibration=calib)
    assert backend.parity is not None and backend.parity.ok, backend.parity.summary()


def test_tensorrt_absence_is_reported_not_hidden():
    """Where TensorRT is missing, the explicit backend fails with the reason (the tests above skip)."""
    if TRT.ok:
        pytest.skip("TensorRT is usable here")
    from model.backends import create_backend
    from model.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="tensorrt backend cannot run here"):
        create_backend("tensorrt:fp16", tiny_loaded())
