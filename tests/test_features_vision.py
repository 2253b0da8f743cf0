"""Face features per frame (MediaPipe FaceLandmarker, VIDEO mode) on real faces, and without faces."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from model.errors import DataFormatError
from model.featureset import LIVE_FEATURE_SET, LIVE_V1, VISION_COLUMNS
from realtime.features.media import iter_frames
from realtime.features.vision import VISION_DIM, FaceFeatureExtractor, head_pose_deg

COL = {name: i for i, name in enumerate(VISION_COLUMNS)}
YAW, PITCH, ROLL = COL["head_yaw_deg"], COL["head_pitch_deg"], COL["head_roll_deg"]


@pytest.fixture(scope="module")
def face() -> FaceFeatureExtractor:
    with FaceFeatureExtractor() as ex:
        yield ex


@pytest.fixture(scope="module")
def moud(shared_data, face) -> list[tuple[np.ndarray, object]]:
    """(values, raw MediaPipe result) of the first 10 s of a real talking-face video."""
    face.reset()
    out = []
    for t, frame in iter_frames(shared_data / "media" / "moud_101_movies.mp4"):
        if t > 10.0:
            break
        out.append((face.process(frame, t), face.last_result))
    return out


def test_columns_match_the_feature_set(face) -> None:
    assert VISION_DIM == len(VISION_COLUMNS) == LIVE_V1.dims["vision"] == 56
    assert VISION_COLUMNS[-1] == "face_present"
    # live-v2 and live-v3 (the default) = the 56 of live-v1, then the 7 expression probabilities
    assert LIVE_FEATURE_SET.vision[:56] == VISION_COLUMNS and len(LIVE_FEATURE_SET.vision) == 63
    assert face.dim == 63


def test_faces_are_found_on_most_frames_of_a_real_face_video(moud) -> None:
    samples = [s for s, _ in moud]
    assert len(samples) == 300
    assert np.mean([s.valid for s in samples]) >= 0.9
    x = np.stack([s.values for s in samples if s.valid])
    assert x.shape[1] == LIVE_FEATURE_SET.dims["vision"] and x.dtype == np.float32
    assert (x[:, :52] >= 0).all() and (x[:, :52] <= 1).all()
    assert (x[:, COL["face_present"]] == 1).all()
    pose = x[:, [YAW, PITCH, ROLL]]
    assert np.mean(np.abs(pose).max(axis=1) < 45) >= 0.95  # a speaker facing the camera
    assert pose.std(axis=0).max() > 1.0  # and the head does move


def test_head_pose_signs_agree_with_the_landmarks_in_the_image(moud) -> None:
    # yaw > 0: nose towards the image's right edge; pitch > 0: nose up (documented in head_pose_deg)
    yaw, nose_dx, pitch, nose_dy = [], [], [], []
    for s, result in moud:
        if not s.valid:
            continue
        lm = result.face_landmarks[0]
        mid_x, width = (lm[234].x + lm[454].x) / 2, abs(lm[454].x - lm[234].x)
        mid_y, height = (lm[10].y + lm[152].y) / 2, abs(lm[152].y - lm[10].y)
        yaw.append(s.values[YAW])
        nose_dx.append((lm[1].x - mid_x) / width)
        pitch.append(s.values[PITCH])
        nose_dy.append((lm[1].y - mid_y) / height)
    assert np.corrcoef(yaw, nose_dx)[0, 1] > 0.8
    assert np.corrcoef(pitch, nose_dy)[0, 1] < -0.6  # image y grows downwards


@pytest.fixture(scope="module")
def london(shared_data) -> list[dict[str, str]]:
    with (shared_data / "faces_expr" / "index.csv").open() as f:
        return list(csv.DictReader(f))


def test_roll_follows_an_in_plane_rotation_and_a_mirror_flips_yaw_and_roll(face, london, shared_data) -> None:
    import cv2

    img = cv2.imread(str(shared_data / "faces_expr" / london[0]["path"]))

    def pose(image: np.ndarray) -> np.ndarray:
        face.reset()
        s = face.process(image, 0.0)
        assert s.valid
        return s.values[[YAW, PITCH, ROLL]]

    base = pose(img)
    for angle in (15.0, -15.0):  # OpenCV: positive = counter-clockwise
        rot = cv2.warpAffine(img, cv2.getRotationMatrix2D((256, 256), angle, 1.0), (512, 512))
        assert abs((pose(rot)[2] - base[2]) - angle) < 5.0
    mirrored = pose(cv2.flip(img, 1))
    assert abs(mirrored[0] + base[0]) < 3.0 and abs(mirrored[2] + base[2]) < 3.0


def test_smiling_raises_mouth_smile_blendshapes(face, london, shared_data) -> None:
    import cv2

    by_subject: dict[str, dict[str, float]] = {}
    subjects = sorted({r["subject_id"] for r in london})[:24]
    face.reset()
    t = 0.0
    for row in london:
        if row["subject_id"] not in subjects:
            continue
        t += 1.0
        s = face.process(cv2.imread(str(shared_data / "faces_expr" / row["path"])), t)
        assert s.valid, row["path"]
        smile = (s.values[COL["bs_mouthSmileLeft"]] + s.values[COL["bs_mouthSmileRight"]]) / 2
        by_subject.setdefault(row["subject_id"], {})[row["label"]] = float(smile)
    diffs = [d["smiling"] - d["neutral"] for d in by_subject.values()]
    assert len(diffs) == 24
    assert np.mean(np.array(diffs) > 0) >= 0.9
    assert np.mean(diffs) > 0.2


def test_a_frame_without_a_face_is_invalid_and_zero(face, shared_data) -> None:
    import cv2

    rng = np.random.default_rng(0)
    face.reset()
    for frame in (np.zeros((480, 640, 3), np.uint8), rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)):
        s = face.process(frame, 0.0)
        assert not s.valid and s.values.shape == (63,) and not s.values.any()
    # a real photograph with the face cut away (the top-left corner of a portrait: wall and hair)
    img = cv2.imread(str(shared_data / "media" / "faces" / "obama.jpg"))
    corner = np.ascontiguousarray(img[:200, :200])
    assert not face.process(corner, 1.0).valid


def test_timestamps_that_do_not_increase_are_bumped_not_fatal(face) -> None:
    face.reset()
    frame = np.zeros((240, 320, 3), np.uint8)
    bumped = face.bumped_timestamps
    for t in (1.0, 1.0, 0.5, 1.0004):
        assert not face.process(frame, t).valid
    assert face.bumped_timestamps == bumped + 3


def test_gray_and_bgra_frames_are_accepted_and_other_input_is_a_clear_error(face) -> None:
    face.reset()
    assert face.process(np.zeros((120, 160), np.uint8), 0.0).values.shape == (63,)
    assert face.process(np.zeros((120, 160, 4), np.uint8), 0.1).values.shape == (63,)
    with pytest.raises(DataFormatError, match="uint8"):
        face.process(np.zeros((120, 160, 3), np.float32), 0.2)
    with pytest.raises(DataFormatError, match="H×W×3"):
        face.process(np.zeros((120, 160, 2), np.uint8), 0.3)


def test_head_pose_of_known_rotations() -> None:
    def rot_y(deg: float) -> np.ndarray:
        a = np.radians(deg)
        m = np.eye(4)
        m[:3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
        return m

    def rot_z(deg: float) -> np.ndarray:
        a = np.radians(deg)
        m = np.eye(4)
        m[:3, :3] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
        return m

    np.testing.assert_allclose(head_pose_deg(np.eye(4)), (0, 0, 0), atol=1e-9)
    np.testing.assert_allclose(head_pose_deg(rot_y(20)), (20, 0, 0), atol=1e-9)
    np.testing.assert_allclose(head_pose_deg(rot_z(-10)), (0, 0, -10), atol=1e-9)
    np.testing.assert_allclose(head_pose_deg(rot_y(20) @ rot_z(-10) * 3.0), (20, 0, -10), atol=1e-9)  # scaled
