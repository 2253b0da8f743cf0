"""Checkpoints: weights + the full config + task record + feature set, loadable with weights_only=True.

Everything but the tensors is plain data (dicts, lists, str, numbers), so ``torch.load(...,
weights_only=True)`` can read it without running code. Weights may be stored in FP16 to keep shipped
files small; they are restored to FP32 on load.
"""

from __future__ import annotations

import datetime
import logging
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from model.config import ModelConfig
from model.configlib import from_dict, to_dict
from model.errors import CheckpointError, ConfigError
from model.evaluate import TaskInfo
from model.featureset import FeatureSet
from model.mmcl import MMCL

log = logging.getLogger(__name__)
FORMAT = "mmcl-checkpoint/1"


@dataclass
class LoadedCheckpoint:
    model: MMCL
    model_cfg: ModelConfig
    task: TaskInfo
    feature_set: FeatureSet
    config: dict[str, Any] = field(default_factory=dict)  # the full run config (model/train/data/...)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. calibration (temperature, intervals)
    path: Path | None = None


def save_checkpoint(
    path: str | Path,
    model: MMCL,
    *,
    task: TaskInfo,
    feature_set: FeatureSet,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
             for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "model_config": to_dict(model.cfg),
        "task": task.to_dict(),
        "feature_set": feature_set.to_dict(),
        "config": to_dict(config or {}),
        "metrics": to_dict(metrics or {}),
        "extra": to_dict(extra or {}),
        "state_dict": state,
        "versions": {"torch": str(torch.__version__), "mmcl": _mmcl_version()},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = p.with_suffix(p.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(p)  # never leave a half-written checkpoint behind
    return p


def _mmcl_version() -> str:
    try:
        from importlib.metadata import version

        return version("mmcl-live")
    except Exception:
        return "unknown"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw payload (weights_only=True), with clear errors for missing/corrupt/foreign files."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist (train one with `mmcl train`)")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(
            f"{p} is not a readable mmcl checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "it may be truncated, or not a checkpoint at all"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not an mmcl checkpoint (no '{FORMAT}' format tag)")
    missing = [k for k in ("model_config", "task", "feature_set", "state_dict") if k not in payload]
    if missing:
        raise CheckpointError(f"{p} is missing {', '.join(missing)}; re-create it with this version of mmcl")
    return payload


def load_checkpoint(path: str | Path, expected_features: FeatureSet | None = None) -> LoadedCheckpoint:
    """Rebuild the model in eval mode. With ``expected_features``, refuse a different feature set."""
    payload = read_checkpoint(path)
    try:
        mcfg = from_dict(ModelConfig, payload["model_config"], "model_config")
    except ConfigError as exc:
        raise CheckpointError(f"{path}: stored model config is invalid for this version ({exc})") from None
    feature_set = FeatureSet.from_dict(payload["feature_set"])
    if expected_features is not None:
        from model.featureset import check_compatible

        check_compatible(expected_features, feature_set, what=f"checkpoint {path}")
    model = MMCL(mcfg)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in payload["state_dict"].items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: weights do not fit the stored model config ({str(exc).splitlines()[0][:300]})"
        ) from None
    model.eval()
    return LoadedCheckpoint(
        model=model,
        model_cfg=mcfg,
        task=TaskInfo.from_dict(payload["task"]),
        feature_set=feature_set,
        config=payload.get("config", {}),
        metrics=payload.get("metrics", {}),
        extra=payload.get("extra", {}),
        path=Path(path),
    )


def update_checkpoint_extra(path: str | Path, key: str, value: Any) -> None:
    """Store ``value`` under ``extra[key]`` of an existing checkpoint (e.g. a fitted temperature)."""
    payload = read_checkpoint(path)
    payload.setdefault("extra", {})[key] = to_dict(value)
    p = Path(path)
    tmp = p.with_suffix(p.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(p)
