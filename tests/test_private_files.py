"""Files holding a user's features are created 0600 (folders 0700), whatever the umask."""

import os
import stat

import numpy as np

from calibration.baseline import baseline_from_samples, save_baseline
from calibration.shards import ShardWriter
from model.featureset import LIVE_FEATURE_SET, MODALITIES


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_calibration_recordings_and_baselines_are_private(tmp_path):
    old = os.umask(0o022)
    try:
        dims = LIVE_FEATURE_SET.dims
        writer = ShardWriter(tmp_path / "calib", LIVE_FEATURE_SET, source="test", shard_windows=2)
        for _ in range(2):
            writer.add({m: np.zeros((50, dims[m]), np.float32) for m in MODALITIES},
                       {m: np.ones(50, bool) for m in MODALITIES})
        writer.flush()
        files = [p for p in (tmp_path / "calib").iterdir()]
        assert len(files) >= 2  # a shard and the manifest
        assert _mode(tmp_path / "calib") == 0o700
        assert all(_mode(p) == 0o600 for p in files), {p.name: oct(_mode(p)) for p in files}

        rng = np.random.default_rng(0)
        base = baseline_from_samples(
            LIVE_FEATURE_SET, rng.random((40, dims["vision"])), rng.random((40, dims["audio"]))
        )
        path = save_baseline(tmp_path / "user.yaml", base)
        assert _mode(path) == 0o600
    finally:
        os.umask(old)
