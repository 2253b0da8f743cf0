"""Metrics against hand-computed values (MMSA / MulT conventions)."""

import numpy as np
import pytest

from model.metrics import mda_metrics, mer_metrics, msa_regression_metrics, multiclass_acc


def test_round_half_even_in_acc7():
    # np.round: 0.5 → 0, 1.5 → 2, 2.5 → 2, -0.5 → -0, -1.5 → -2
    pred = np.array([0.5, 1.5, 2.5, -0.5, -1.5])
    true = np.array([0.0, 2.0, 2.0, 0.0, -2.0])
    assert multiclass_acc(pred, true) == 1.0
    # Python-style "round half up" would give 1, 2, 3, 0, -1 → only 2 of 5 equal
    assert multiclass_acc(pred, np.array([1.0, 2.0, 3.0, 0.0, -1.0])) == pytest.approx(2 / 5)


def test_msa_metrics_hand_computed():
    y = np.array([2.6, -1.0, 0.0, 0.4, -3.4])
    p = np.array([3.2, -0.5, 0.2, -0.2, -2.0])
    m = msa_regression_metrics(p, y)
    assert m["mae"] == pytest.approx(np.mean([0.6, 0.5, 0.2, 0.6, 1.4]))
    # Acc7: clip to ±3 then round: p → 3, -0(−0.5), 0, -0, -2 ; y → 3, -1, 0, 0, -3
    assert m["acc7"] == pytest.approx(3 / 5)
    # Acc5: clip ±2: p → 2, -0, 0, -0, -2 ; y → 2, -1, 0, 0, -2
    assert m["acc5"] == pytest.approx(4 / 5)
    # has-0: y>=0 [T,F,T,T,F] p>=0 [T,F,T,F,F] → 4/5
    assert m["acc2_has0"] == pytest.approx(4 / 5)
    # non-0 drops y == 0: y>0 [T,F,T,F] p>0 [T,F,F,F] → 3/4
    assert m["acc2_non0"] == pytest.approx(3 / 4)
    assert m["acc2_has0"] != m["acc2_non0"]
    # weighted F1 (non-0): class True support 2 (f1 = 2·1·0.5/1.5 = 2/3), False support 2 (p 2/3, r 1 → 0.8)
    assert m["f1_non0"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert m["corr"] == pytest.approx(np.corrcoef(p, y)[0, 1])


def test_constant_prediction_corr_is_zero_not_nan():
    m = msa_regression_metrics(np.zeros(4), np.array([1.0, -1.0, 2.0, 0.5]))
    assert m["corr"] == 0.0


def test_mer_per_emotion_and_average():
    names = ["Neutral", "Happy", "Sad", "Angry"]
    true = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]])
    pred_cls = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]])
    logits = np.stack([1 - pred_cls, pred_cls], axis=2).astype(float)  # (N, 4, 2)
    m = mer_metrics(logits, true, names)
    assert m["neutral_acc"] == pytest.approx(3 / 4)
    assert m["happy_acc"] == pytest.approx(3 / 4)
    assert m["sad_acc"] == pytest.approx(1.0)
    assert m["angry_acc"] == pytest.approx(3 / 4)
    assert m["acc"] == pytest.approx((0.75 + 0.75 + 1 + 0.75) / 4)
    assert m["sad_f1"] == pytest.approx(1.0)


def test_mda_threshold_metrics():
    y = np.array([3.0, 12.0, 9.0, 20.0, 5.0])
    p = np.array([4.0, 10.0, 8.0, 15.0, 10.0])
    m = mda_metrics(p, y, threshold=9)
    assert m["mae"] == pytest.approx(np.mean([1, 2, 1, 5, 5]))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean([1, 4, 1, 25, 25])))
    # positives y>=9: idx 1,2,3 ; predicted p>=9: idx 1,3,4 → TP 2, FP 1, FN 1
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
