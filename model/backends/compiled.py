"""``torch.compile`` (Inductor) backend: C++/OpenMP kernels on the CPU, Triton on a CUDA GPU.

* Weights are frozen into the graph (Inductor ``freezing``), which lets oneDNN pre-pack them; that
  needs inference mode, which ``run`` always uses.
* ``precision="bf16"`` compiles the low-precision copy (matrix products in BF16, the rest FP32);
  with native AVX-512 BF16/AMX this is the fastest CPU path measured here (see ``mmcl bench``).
* ``dynamic=None`` (torch's default) compiles the first shape statically and recompiles once with
  dynamic sizes when another batch/length appears; the live pipeline only ever uses one shape.
* Compiling costs time once per process (tens of seconds to minutes on a small CPU; Inductor keeps an
  on-disk cache that makes later processes faster). ``warmup=True`` pays it in the constructor, at the
  live shape, so the first real window is not late.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from model.backends.base import InferenceBackend, ModelInputs
from model.backends.inputs import LIVE_STEPS, synthetic_inputs
from model.backends.precision import check_precision, low_precision_copy
from model.checkpoint import LoadedCheckpoint

log = logging.getLogger(__name__)


class CompileBackend(InferenceBackend):
    name = "compile"

    def __init__(
        self,
        loaded: LoadedCheckpoint,
        device: str = "cpu",
        precision: str = "fp32",
        dynamic: bool | None = None,
        mode: str | None = None,
        warmup: bool = True,
        warmup_batch: int = 1,
        warmup_steps: int = LIVE_STEPS,
    ) -> None:
        super().__init__(loaded)
        self.precision = check_precision(precision, ("fp32", "bf16", "fp16"), self.name)
        self.device = torch.device(device)
        module = (
            low_precision_copy(loaded.model, self.precision) if self.precision != "fp32" else loaded.model
        )
        self.module = module.to(self.device).eval()
        options = {"freezing": True} if mode is None else None
        self.compiled = torch.compile(self.module, dynamic=dynamic, mode=mode, options=options)
        self.compile_seconds = 0.0
        if warmup:
            start = time.perf_counter()
            self.run(synthetic_inputs(loaded.model, warmup_batch, warmup_steps))
            self.compile_seconds = time.perf_counter() - start
            log.debug("torch.compile (%s, %s) took %.1f s", self.precision, self.device, self.compile_seconds)

    @torch.inference_mode()
    def run(self, inputs: ModelInputs) -> np.ndarray:
        return self.compiled(*inputs.tensors(self.device)).float().cpu().numpy()

    def describe(self) -> str:
        return f"compile ({self.precision}, {self.device})"
