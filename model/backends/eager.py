"""Eager PyTorch on the CPU (or a CUDA device): the reference every other backend is checked against.

``precision="bf16"|"fp16"`` runs the matrix products in that type (see ``precision.py``); the FP32
default is the reference itself.
"""

from __future__ import annotations

import numpy as np
import torch

from model.backends.base import InferenceBackend, ModelInputs
from model.backends.precision import check_precision, low_precision_copy
from model.checkpoint import LoadedCheckpoint


class EagerBackend(InferenceBackend):
    name = "eager"

    def __init__(self, loaded: LoadedCheckpoint, device: str = "cpu", precision: str = "fp32") -> None:
        super().__init__(loaded)
        self.precision = check_precision(precision, ("fp32", "bf16", "fp16"), self.name)
        self.device = torch.device(device)
        if self.precision == "fp32":
            self.model = loaded.model.to(self.device).eval()
        else:
            self.model = low_precision_copy(loaded.model, self.precision).to(self.device)

    @torch.inference_mode()
    def run(self, inputs: ModelInputs) -> np.ndarray:
        return self.model(*inputs.tensors(self.device)).float().cpu().numpy()

    def describe(self) -> str:
        return f"eager ({self.precision}, {self.device})"
