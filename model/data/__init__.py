"""Datasets: MMSA (CMU-MOSI/MOSEI) and MulT IEMOCAP pickles, CMDC-style folders, and planted-signal data."""

from model.data.loading import load_dataset
from model.data.types import LabelKind, MultimodalData, Split

__all__ = ["LabelKind", "MultimodalData", "Split", "load_dataset"]
