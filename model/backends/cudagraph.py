"""Replay one fixed-shape call through a captured CUDA graph (removes per-kernel launch overhead).

Used for batch 1 by the TensorRT backend and by ``benchmarks/bench_gpu.py`` for the CUDA eager paths.
Inputs are copied into static buffers before each replay; the returned tensor is the graph's static
output (clone it if it must outlive the next replay).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


class CudaGraphRunner:
    def __init__(
        self, fn: Callable[..., torch.Tensor], example: Sequence[torch.Tensor], warmup: int = 3
    ) -> None:
        if not all(t.is_cuda for t in example):
            raise ValueError("CUDA graphs need CUDA tensors")
        self.fn = fn
        self.static_inputs = [t.clone() for t in example]
        self.shapes = [(tuple(t.shape), t.dtype) for t in example]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(warmup):  # let lazy initialisation and allocator growth happen outside the capture
                fn(*self.static_inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.inference_mode():
            self.static_output = fn(*self.static_inputs)

    def matches(self, tensors: Sequence[torch.Tensor]) -> bool:
        return len(tensors) == len(self.shapes) and all(
            (tuple(t.shape), t.dtype) == s for t, s in zip(tensors, self.shapes, strict=True)
        )

    def __call__(self, *tensors: torch.Tensor) -> torch.Tensor:
        for dst, src in zip(self.static_inputs, tensors, strict=True):
            dst.copy_(src, non_blocking=True)
        self.graph.replay()
        return self.static_output
