"""The inference-backend contract: the same checkpoint, run by eager PyTorch or an exported engine.

A backend takes numpy inputs (one window or a batch) and returns raw model outputs as numpy
(B, num_labels·num_classes) float32. It never knows about devices, threads or screens.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from model.checkpoint import LoadedCheckpoint
from model.featureset import MODALITIES

# The model's positional inputs, in order (also the input names of every exported graph).
INPUT_NAMES: tuple[str, ...] = (*MODALITIES, *(f"{m}_mask" for m in MODALITIES))
OUTPUT_NAME = "prediction"


@dataclass
class ModelInputs:
    """Features (B, L, D_m) float32 and masks (B, L) bool for the three modalities."""

    vision: np.ndarray
    audio: np.ndarray
    text: np.ndarray
    vision_mask: np.ndarray
    audio_mask: np.ndarray
    text_mask: np.ndarray

    @property
    def batch(self) -> int:
        return int(self.vision.shape[0])

    @property
    def steps(self) -> int:
        return int(self.vision.shape[1])

    def feeds(self) -> dict[str, np.ndarray]:
        """Name → contiguous array (float32 features, bool masks), as exported graphs take them."""
        return {
            name: np.ascontiguousarray(a, dtype=bool if name.endswith("_mask") else np.float32)
            for name, a in zip(INPUT_NAMES, self.as_tuple(), strict=True)
        }

    def tensors(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
        """The six inputs as torch tensors on ``device``."""
        return tuple(torch.from_numpy(a).to(device) for a in self.feeds().values())

    def select(self, rows: slice | list[int]) -> ModelInputs:
        """A sub-batch (rows of every array)."""
        return ModelInputs(*(a[rows] for a in self.as_tuple()))

    def as_tuple(self) -> tuple[np.ndarray, ...]:
        return (self.vision, self.audio, self.text, self.vision_mask, self.audio_mask, self.text_mask)

    @classmethod
    def single(cls, features: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> ModelInputs:
        """One window: features[m] (L, D_m), masks[m] (L,) → a batch of one."""
        return cls(
            **{m: np.ascontiguousarray(features[m], dtype=np.float32)[None] for m in MODALITIES},
            **{f"{m}_mask": np.ascontiguousarray(masks[m], dtype=bool)[None] for m in MODALITIES},
        )


class InferenceBackend(ABC):
    """Runs one checkpoint. Subclasses: eager (here), and the exported/compiled ones in this package."""

    name: str = "base"

    def __init__(self, loaded: LoadedCheckpoint) -> None:
        self.loaded = loaded

    @abstractmethod
    def run(self, inputs: ModelInputs) -> np.ndarray:
        """Raw outputs (B, num_labels·num_classes) float32."""

    def describe(self) -> str:
        return self.name
