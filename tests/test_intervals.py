"""The shipped checkpoint's intervals (mmcl/recipes/intervals.py): split conformal on out-of-fold residuals."""

import numpy as np
import pytest

from mmcl.recipes.intervals import fit_intervals


def test_conformal_half_width_from_pooled_folds_and_its_test_coverage():
    rng = np.random.default_rng(0)
    folds = [(rng.uniform(0, 1, 500), rng.uniform(0, 2, 200)) for _ in range(4)]  # 2000 valence, 800 arousal
    test = (rng.uniform(0, 1, 4000), rng.uniform(0, 2, 2000))
    rec = fit_intervals(folds, test, level=0.9)
    pooled = np.sort(np.concatenate([v for v, _ in folds]))
    assert rec["interval"]["half_width"] == pooled[int(np.ceil(2001 * 0.9)) - 1]  # the 1801st smallest
    assert rec["interval"]["n_valid"] == 2000 and rec["arousal_interval"]["n_valid"] == 800
    # exchangeable residuals: the test coverage is near the level
    assert rec["interval"]["test_coverage"] == pytest.approx(0.9, abs=0.025)
    assert rec["arousal_interval"]["test_coverage"] == pytest.approx(0.9, abs=0.03)
    assert rec["arousal_interval"]["half_width"] > rec["interval"]["half_width"]  # wider residuals, wider q


def test_too_few_residuals_give_no_interval_rather_than_a_wrong_one():
    rec = fit_intervals([(np.ones(5), np.zeros(0))], (np.ones(3), np.zeros(0)), level=0.9)
    assert rec == {}
    rec = fit_intervals([(np.linspace(0, 1, 30), np.ones(4))], (np.ones(3), np.ones(2)), level=0.9)
    assert "interval" in rec and "arousal_interval" not in rec
