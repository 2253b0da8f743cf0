"""Eager PyTorch on the CPU (or the checkpoint's device): the reference every other backend is checked against."""

from __future__ import annotations

import numpy as np
import torch

from model.backends.base import InferenceBackend, ModelInputs
from model.checkpoint import LoadedCheckpoint


class EagerBackend(InferenceBackend):
    name = "eager"

    def __init__(self, loaded: LoadedCheckpoint, device: str = "cpu") -> None:
        super().__init__(loaded)
        self.device = torch.device(device)
        self.model = loaded.model.to(self.device).eval()

    @torch.inference_mode()
    def run(self, inputs: ModelInputs) -> np.ndarray:
        tensors = [torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in inputs.as_tuple()]
        return self.model(*tensors).float().cpu().numpy()
