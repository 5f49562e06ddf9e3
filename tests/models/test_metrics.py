"""Metrics on hand-checked inputs."""

from __future__ import annotations

import numpy as np
import pytest

from models import metrics


def test_gini_is_one_for_perfect_ranking_and_negative_for_reversed():
    y = np.array([0, 0, 1, 5, 10, 0, 3.0])
    assert metrics.normalized_gini(y, y) == pytest.approx(1.0)
    assert metrics.normalized_gini(y, -y) < 0
    # A constant prediction carries no ranking information: ties give no credit.
    assert metrics.normalized_gini(y, np.ones_like(y)) <= 0


def test_gini_of_random_scores_is_near_zero():
    rng = np.random.default_rng(0)
    y = rng.gamma(0.5, 100, 20_000)
    assert abs(metrics.normalized_gini(y, rng.random(20_000))) < 0.03


def test_top_decile_capture_by_hand():
    y = np.array([100, 0, 0, 0, 0, 0, 0, 0, 0, 100.0])
    pred = np.arange(10.0)  # ranks customer 9 first: captures 100 of 200
    assert metrics.top_decile_capture(y, pred) == pytest.approx(0.5)
    assert metrics.top_decile_capture(y, y) == pytest.approx(0.5)


def test_decile_mape_and_aggregate_error():
    y = np.arange(1, 101, dtype=float)
    assert metrics.decile_mape(y, y) == pytest.approx(0)
    assert metrics.decile_mape(y, 1.1 * y) == pytest.approx(0.1)
    assert metrics.aggregate_error(y, 0.9 * y) == pytest.approx(-0.1)


def test_mae_rmse_coverage():
    y = np.array([1.0, 2.0, 3.0])
    p = np.array([2.0, 2.0, 5.0])
    assert metrics.mae(y, p) == pytest.approx(1.0)
    assert metrics.rmse(y, p) == pytest.approx(np.sqrt(5 / 3))
    assert metrics.interval_coverage(y, p - 1, p + 1) == pytest.approx(2 / 3)


def test_spearman_handles_constant_input():
    assert metrics.spearman([1, 2, 3], [1, 1, 1]) == 0.0
    assert metrics.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)


def test_churn_metrics_and_calibration():
    churned = np.array([0, 0, 1, 1])
    assert metrics.churn_auc(churned, [0.1, 0.2, 0.8, 0.9]) == pytest.approx(1.0)
    assert metrics.brier(churned, [0, 0, 1, 1]) == pytest.approx(0.0)
    mean_pred, observed, count = metrics.calibration_table(churned, [0.05, 0.05, 0.95, 0.95], n_bins=10)
    assert count[0] == 2 and count[9] == 2
    assert observed[0] == 0 and observed[9] == 1 and mean_pred[9] == pytest.approx(0.95)


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="equal length"):
        metrics.spearman([1, 2], [1, 2, 3])
