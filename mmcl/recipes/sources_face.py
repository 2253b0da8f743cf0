"""Face source: the London set still portraits (``faces_expr/``), smiling vs neutral, split by subject.

A still photo becomes a window of video: ``window_s × fps`` frames of the same photo with a small seeded
random-walk head motion (shift, in-plane rotation, scale) and brightness jitter, fed in time order to the
live ``FaceFeatureExtractor`` (MediaPipe FaceLandmarker, VIDEO mode, a fresh tracker per window). The
expression does not change within a window: this teaches a held expression, not its onset.

Labels: smiling → valence ``face.smiling_valence`` (+1.5), arousal ``face.smiling_arousal`` (+0.4); neutral
→ 0 and 0. There is no negative face class in this data: what the vision branch knows of negative faces
comes from the expression classifier's columns (trained on FER2013), not from these labels. Groups:
subjects; ``face.test_frac`` of them (seeded) are the final test.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from mmcl.recipes.config import FaceSourceConfig
from mmcl.recipes.groups import held_out
from mmcl.recipes.items import Item, ItemCache, Progress, empty_features, file_digest, limit_per_split
from model.errors import DataFormatError
from realtime.features.extract import OfflineExtractor

log = logging.getLogger(__name__)

LONDON = Path("faces_expr")


def read_london(data_root: Path) -> list[dict[str, str]]:
    index = data_root / LONDON / "index.csv"
    if not index.is_file():
        raise DataFormatError(f"{index} is missing; --data-root must point at the shared data folder")
    with index.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def moving_frames(image: np.ndarray, n: int, cfg: FaceSourceConfig, seed: list[int]) -> list[np.ndarray]:
    """``n`` frames of ``image`` with a smooth seeded random-walk of shift/rotation/scale and gain."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    state = np.zeros(4)  # dx, dy, angle, scale offset
    steps = np.array([cfg.shift_px, cfg.shift_px, cfg.rotate_deg, cfg.scale])
    frames = []
    for _ in range(n):
        state = 0.8 * state + rng.normal(0.0, steps)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), float(state[2]), float(1.0 + state[3]))
        m[:, 2] += state[:2]
        frame = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        gain = 1.0 + rng.uniform(-cfg.brightness, cfg.brightness)
        frames.append(np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8))
    return frames


def face_window_features(
    ex: OfflineExtractor, path: Path, cfg: FaceSourceConfig, window_s: float, seed: list[int]
):
    """FileFeatures with only vision: the moving still at ``cfg.fps`` over ``window_s`` seconds."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataFormatError(f"OpenCV cannot read the image {path}")
    n = round(window_s * cfg.fps)
    face = ex.face
    face.reset()
    ts, xs, ok = [], [], []
    for k, frame in enumerate(moving_frames(image, n, cfg, seed)):
        t = (k + 0.5) / cfg.fps
        s = face.process(frame, t)
        ts.append(t)
        xs.append(s.values)
        ok.append(s.valid)
    ff = empty_features(str(path), window_s, ex.dims)
    ff.has_video = True
    ff.vision_t = np.asarray(ts, np.float64)
    ff.vision_x = np.stack(xs) if xs else np.zeros((0, ex.dims["vision"]), np.float32)
    ff.vision_valid = np.asarray(ok, bool)
    return ff


def subject_splits(
    rows: list[dict[str, str]], cfg: FaceSourceConfig, seed: int, limit: int = 0
) -> dict[str, str]:
    """subject_id → "test" / "dev" (seeded), at most ``limit`` subjects per side when ``limit`` > 0."""
    side = held_out(sorted({r["subject_id"] for r in rows}), cfg.test_frac, seed)
    return {s: side[s] for s in limit_per_split(sorted(side), lambda s: side[s], limit)}


def face_items(
    data_root: Path, cfg: FaceSourceConfig, window_s: float, seed: int, cache: ItemCache,
    ex: OfflineExtractor, limit: int = 0, progress: Progress | None = None,
) -> list[Item]:  # fmt: skip
    rows = read_london(data_root)
    split_of = subject_splits(rows, cfg, seed, limit)
    rows = [r for r in rows if r["subject_id"] in split_of]
    jobs = []
    for r in rows:
        split = split_of[r["subject_id"]]
        for v in range(cfg.variants if split == "dev" else 1):
            jobs.append((r, split, v))
    items = []
    for i, (r, split, v) in enumerate(jobs):
        path = data_root / LONDON / r["path"]
        motion = (cfg.fps, cfg.shift_px, cfg.rotate_deg, cfg.scale, cfg.brightness, window_s)
        key = cache.key("face", file_digest(path), motion, seed, v)
        sid = int(r["subject_id"])

        def make(path=path, sid=sid, v=v, smile=int(r["label"] == "smiling")):
            return face_window_features(ex, path, cfg, window_s, [seed, sid, v, smile])

        ff = cache.get_or_make("face", key, make)
        smiling = r["label"] == "smiling"
        items.append(Item(
            id=f"face/{r['subject_id']}_{r['label']}#{v}", source="face", split=split,
            label=cfg.smiling_valence if smiling else cfg.neutral_valence, group=f"subject{r['subject_id']}",
            arousal=cfg.smiling_arousal if smiling else cfg.neutral_arousal,
            ff=ff, meta={"expression": r["label"], "subject": r["subject_id"], "variant": v,
                         "face_rate": float(ff.vision_valid.mean()) if ff.vision_valid.size else 0.0},
        ))  # fmt: skip
        if progress:
            progress("London faces (MediaPipe)", i + 1, len(jobs))
    return items
