"""Every measure has one home, ``model/metrics.py``: hand-computed values, the libraries they stand on, and the
one NaN policy (a measure the data cannot define is NaN, never 0 and never an exception)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from model.metrics import accuracy_rows, mae, mosi_metrics, pearson, pearson_rows, sign_accuracy


def test_mosi_metrics_against_hand_computed_values() -> None:
    pred = np.array([2.0, -1.0, 0.4, -0.2, 0.0])
    label = np.array([1.5, -2.0, 0.0, 0.3, -0.6])
    m = mosi_metrics(pred, label)
    assert m.mae == pytest.approx(0.6)
    assert m.corr == pytest.approx(5.132 / np.sqrt(4.912 * 6.572))
    assert m.acc2_has0 == pytest.approx(3 / 5)  # >=0: TFTFT vs TFTTF
    assert m.f1_has0 == pytest.approx(0.6)  # (3 * 2/3 + 2 * 1/2) / 5
    assert m.acc2_non0 == pytest.approx(3 / 4)  # label 0 dropped
    assert m.f1_non0 == pytest.approx((2 * 2 / 3 + 2 * 0.8) / 4)
    assert m.acc7 == pytest.approx(3 / 5)  # classes 2,-1,0,0,0 vs 2,-2,0,0,-1
    assert m.n == 5


def test_measures_agree_with_numpy_and_the_parts_of_mosi_metrics() -> None:
    rng = np.random.default_rng(3)
    y, p = rng.normal(size=(3, 50)), rng.normal(size=(3, 50))
    assert np.allclose(pearson_rows(y, p), [np.corrcoef(y[i], p[i])[0, 1] for i in range(3)])
    assert pearson(p[0], y[0]) == pytest.approx(np.corrcoef(p[0], y[0])[0, 1])
    assert mae(p[0], y[0]) == pytest.approx(float(np.mean(np.abs(p[0] - y[0]))), abs=1e-15)
    m = mosi_metrics(p[0], y[0])
    assert (m.mae, m.corr) == (mae(p[0], y[0]), pearson(p[0], y[0]))
    rows = accuracy_rows(np.array([[1, 0, 1], [0, 0, 0]]), np.array([[1, 1, 1], [0, 0, 0]]))
    assert rows == pytest.approx([2 / 3, 1])


def test_sign_accuracy_plain_and_balanced() -> None:
    pred, label = np.array([1.0, -1.0, -1.0, 0.2]), np.array([2.0, -2.0, 2.0, 0.1])
    assert sign_accuracy(pred, label, clear=1.0) == pytest.approx(2 / 3)  # 0.1 is not clear
    assert sign_accuracy(pred, label, clear=1.0, balanced=True) == pytest.approx(0.75)  # (1/2 + 1) / 2


def test_nan_policy_one_rule_for_every_measure() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN is the answer, not a warning
        assert np.isnan(pearson(np.ones(5), np.arange(5.0)))  # a constant side
        assert np.isnan(pearson(np.arange(5.0), np.full(5, 2.0)))
        assert np.isnan(pearson(np.array([1.0]), np.array([2.0])))  # fewer than two samples
        rows = pearson_rows(np.vstack([np.arange(5.0), np.ones(5)]), np.vstack([np.arange(5.0), np.arange(5.0)]))
        assert rows[0] == pytest.approx(1.0) and np.isnan(rows[1])
        assert np.isnan(mae(np.array([]), np.array([])))
        assert np.isnan(sign_accuracy(np.ones(3), np.full(3, 0.5), clear=1.0))  # no clear label
        assert np.isnan(sign_accuracy(np.ones(3), np.full(3, 2.0), clear=1.0, balanced=True))  # no negative
        constant = mosi_metrics(np.array([1.0, 2.0, 3.0]), np.zeros(3))
    assert np.isnan(constant.corr) and np.isnan(constant.acc2_non0) and np.isnan(constant.f1_non0)
    assert constant.mae == pytest.approx(2.0) and constant.acc2_has0 == 1.0


def test_different_shapes_are_a_callers_bug() -> None:
    for measure in (mosi_metrics, pearson, pearson_rows, mae):
        with pytest.raises(ValueError):
            measure(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        sign_accuracy(np.zeros(3), np.zeros(4), clear=1.0)
    with pytest.raises(ValueError):
        mosi_metrics(np.zeros(0), np.zeros(0))
