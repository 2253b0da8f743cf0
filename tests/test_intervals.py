"""The shipped checkpoint's intervals (mmcl/recipes/intervals.py): split conformal on out-of-fold residuals,
pooled and per presence pattern, and the monitor's choice of width for a window."""

import numpy as np
import pytest

from mmcl.recipes.intervals import MIN_PER_PATTERN, fit_intervals


def _res(v, a, kv=None, ka=None):
    return v, a, kv if kv is not None else ["audio"] * len(v), ka if ka is not None else ["audio"] * len(a)


def test_conformal_half_width_from_pooled_folds_and_its_test_coverage():
    rng = np.random.default_rng(0)
    folds = [_res(rng.uniform(0, 1, 500), rng.uniform(0, 2, 200)) for _ in range(4)]  # 2000 valence, 800 arousal
    test = _res(rng.uniform(0, 1, 4000), rng.uniform(0, 2, 2000))
    rec = fit_intervals(folds, test, level=0.9)
    pooled = np.sort(np.concatenate([r[0] for r in folds]))
    assert rec["interval"]["half_width"] == pooled[int(np.ceil(2001 * 0.9)) - 1]  # the 1801st smallest
    assert rec["interval"]["n_valid"] == 2000 and rec["arousal_interval"]["n_valid"] == 800
    # exchangeable residuals: the test coverage is near the level
    assert rec["interval"]["test_coverage"] == pytest.approx(0.9, abs=0.025)
    assert rec["arousal_interval"]["test_coverage"] == pytest.approx(0.9, abs=0.03)
    assert rec["arousal_interval"]["half_width"] > rec["interval"]["half_width"]  # wider residuals, wider q


def test_each_presence_pattern_gets_its_own_width_and_keeps_its_coverage():
    rng = np.random.default_rng(1)

    def draw(n_face, n_text, n_rare):  # faces err little, words a lot, a rare pattern too rare for its own q
        v = np.concatenate([rng.uniform(0, 0.5, n_face), rng.uniform(0, 3, n_text), rng.uniform(0, 1, n_rare)])
        keys = ["vision"] * n_face + ["text"] * n_text + ["vision+text"] * n_rare
        return _res(v, np.zeros(0), keys, [])

    test = draw(3000, 3000, 50)
    rec = fit_intervals([draw(600, 600, MIN_PER_PATTERN - 1)], test, level=0.9)["interval"]
    per = rec["by_presence"]
    assert set(per) == {"vision", "text"}  # the rare pattern falls back to the pooled width
    assert per["vision"]["half_width"] < rec["half_width"] < per["text"]["half_width"]
    for key in ("vision", "text"):
        assert per[key]["test_coverage"] == pytest.approx(0.9, abs=0.03)  # within the pattern, not on average
        assert per[key]["n_valid"] == 600 and per[key]["n_test"] == 3000
    # what the per-pattern widths mend: the pooled width covers every face window and too few word windows
    q, keys = rec["half_width"], np.asarray(test[2])
    assert (test[0][keys == "vision"] <= q).mean() == 1.0 and (test[0][keys == "text"] <= q).mean() < 0.85


def test_too_few_residuals_give_no_interval_rather_than_a_wrong_one():
    rec = fit_intervals([_res(np.ones(5), np.zeros(0))], _res(np.ones(3), np.zeros(0)), level=0.9)
    assert rec == {}
    rec = fit_intervals([_res(np.linspace(0, 1, 30), np.ones(4))], _res(np.ones(3), np.ones(2)), level=0.9)
    assert "interval" in rec and "arousal_interval" not in rec
    assert "by_presence" not in rec["interval"]  # 30 residuals: no pattern has enough for its own width


def test_the_monitor_uses_the_width_of_the_windows_pattern():
    from model.evaluate import TaskInfo
    from realtime.pipeline.inference import InferenceEngine, checkpoint_interval_options
    from realtime.pipeline.windows import Window

    class Backend:
        def run(self, inputs):
            return np.tile([0.5, 0.1], (inputs.batch, 1))

    extra = {"calibration": {
        "interval": {"half_width": 2.0, "level": 0.9, "by_presence": {"vision": {"half_width": 0.4}}},
        "arousal_interval": {"half_width": 0.8, "level": 0.9, "by_presence": {"vision": {"half_width": 0.3},
                                                                              "text": {"half_width": "bad"}}},
    }}  # fmt: skip
    opts = checkpoint_interval_options(extra)
    assert opts["interval_by_presence"] == {"vision": 0.4} and opts["arousal_interval_by_presence"] == {"vision": 0.3}
    task = TaskInfo(task="regression", label_kind="msa", arousal=True)
    engine = InferenceEngine(Backend(), task, contributions=False, **opts)
    dims = {"vision": 4, "audio": 3, "text": 2}

    def window(present):
        feats = {m: np.zeros((10, d), np.float32) for m, d in dims.items()}
        masks = {m: np.full(10, m in present) for m in dims}
        return Window(0, 0.0, 5.0, feats, masks, dict.fromkeys(dims), dict.fromkeys(dims, 10))

    face = engine.predict(window({"vision"}))
    assert (face.interval, face.arousal_interval, face.interval_level) == (0.4, 0.3, 0.9)
    both = engine.predict(window({"vision", "text"}))  # no width of its own: the pooled ones
    assert (both.interval, both.arousal_interval) == (2.0, 0.8)
