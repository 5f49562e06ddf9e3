"""Level calibration of predicted orders: kept where it fixes the error by level, never reorders customers."""

from __future__ import annotations

import numpy as np
import pytest

from models import metrics
from models.calibration import LevelCalibration, fit_level_calibration


def window(n: int, power: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted orders p, and outcomes whose real rate is p ** power (power 1: p is calibrated)."""
    rng = np.random.default_rng(seed)
    predicted = np.exp(rng.normal(-2.0, 1.2, n))
    real = predicted**power * np.mean(predicted) / np.mean(predicted**power)
    order_value = rng.lognormal(4.0, 0.3, n)
    return predicted, rng.poisson(real).astype(float), order_value


def test_the_map_keeps_the_order_of_the_customers():
    predicted, y, _ = window(5000, 1.6, seed=0)
    calibration = LevelCalibration().fit(predicted, y)
    fresh = np.sort(np.exp(np.random.default_rng(1).normal(-2.0, 2.0, 2000)))  # beyond the fitted range too
    calibrated = calibration.predict(fresh)
    assert (np.diff(calibrated) > 0).all() and (calibrated > 0).all()


def test_predictions_too_high_at_the_low_end_are_calibrated_and_the_next_window_gains():
    predicted, y, value = window(8000, 1.6, seed=2)
    calibration, crossed = fit_level_calibration(predicted, y, value, y * value, seed=0)
    assert calibration is not None and crossed.shape == predicted.shape
    # A fresh window of the same shop: the decile error falls, the ranking is unchanged.
    p2, y2, v2 = window(8000, 1.6, seed=3)
    before, after = p2 * v2, calibration.predict(p2) * v2
    assert metrics.decile_mape(y2 * v2, after) < 0.7 * metrics.decile_mape(y2 * v2, before)
    # The customers keep their order by expected orders (values also weigh in the order value).
    assert metrics.spearman(y2, calibration.predict(p2)) == pytest.approx(metrics.spearman(y2, p2), rel=1e-12)


def test_calibrated_predictions_are_left_alone():
    for seed in range(5):
        predicted, y, value = window(3000, 1.0, seed)
        calibration, crossed = fit_level_calibration(predicted, y, value, y * value, seed=0)
        assert calibration is None and (crossed == predicted).all()
