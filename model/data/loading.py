"""One entry point for every dataset format, with format auto-detection.

Dataset pickles (MMSA, MulT) are untrusted code by nature: they are only ever opened through the
restricted Unpickler of ``model.data.safe_pickle`` (numpy arrays, lists, dicts, str, numbers; any other
global is refused before it runs). CMDC folders are read with ``numpy.load(allow_pickle=False)``. Every
malformed file raises DataFormatError with a message.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from model.config import DataConfig
from model.data.cmdc import load_cmdc
from model.data.mmsa import load_mmsa
from model.data.mult import load_mult_iemocap
from model.data.safe_pickle import safe_load_pickle
from model.data.types import MultimodalData
from model.errors import DataFormatError

FORMATS = ("mmsa", "mult-iemocap", "cmdc")


def detect_format(raw: Any) -> str:
    """MulT pickles label with ``labels``; MMSA ones with ``regression_labels``."""
    train = raw.get("train") if isinstance(raw, dict) else None
    if isinstance(train, dict) and "labels" in train and "regression_labels" not in train:
        return "mult-iemocap"
    return "mmsa"


def load_dataset(cfg: DataConfig, task: str | None = None) -> MultimodalData:
    """Load ``cfg.path`` in ``cfg.format`` (``auto`` detects it). ``task`` matters for MMSA and CMDC."""
    if not cfg.path:
        raise DataFormatError("no data path given: pass --data PATH (or data.path=... in the config)")
    path = Path(cfg.path).expanduser()
    if not path.exists():
        raise DataFormatError(f"data path {path} does not exist")
    fmt = cfg.format
    if fmt == "cmdc" or (fmt == "auto" and path.is_dir()):
        return load_cmdc(path, cfg, task or "regression")
    if path.is_dir():
        raise DataFormatError(f"{path} is a folder; --format {fmt} expects a pickle file")
    raw = safe_load_pickle(path)
    if fmt == "auto":
        fmt = detect_format(raw)
    if fmt == "mmsa":
        if task == "classification":
            cfg = dataclasses.replace(cfg, mmsa_labels="classification")
        return load_mmsa(path, cfg, raw=raw)
    if fmt == "mult-iemocap":
        return load_mult_iemocap(path, cfg, raw=raw)
    raise DataFormatError(f"unknown data format {fmt!r}; use one of {', '.join(FORMATS)}")
