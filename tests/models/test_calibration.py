"""Calibration of predicted orders by their level and by P(no purchase): kept where it fixes the error,
left alone where the predictions are calibrated already."""

from __future__ import annotations

import numpy as np
import pytest

from models import metrics
from models.calibration import (
    ChurnCalibration,
    LevelCalibration,
    fit_churn_calibration,
    fit_level_calibration,
)


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


def churn_window(n: int, strength: float, seed: int) -> tuple[np.ndarray, ...]:
    """Predicted orders p, P(no purchase) c, outcomes and order values: the real rate is p scaled by
    ((1 - c) / c) ** strength (strength 0: p is calibrated at every level of c), to the same total:
    the predictions under-react to the chance to buy nothing."""
    rng = np.random.default_rng(seed)
    predicted = np.exp(rng.normal(0.0, 0.8, n))
    # Customers predicted fewer orders are more likely to buy nothing, as in any fitted model.
    churn = 1 / (1 + np.exp(np.log(predicted) - rng.normal(0.0, 1.2, n)))
    real = predicted * ((1 - churn) / churn) ** strength
    real *= predicted.sum() / real.sum()
    return predicted, churn, rng.poisson(real).astype(float), rng.lognormal(4.0, 0.3, n)


def test_orders_of_customers_likely_gone_are_brought_down_to_what_they_buy():
    predicted, churn, y, value = churn_window(8000, 0.3, seed=4)
    calibration, crossed = fit_churn_calibration(predicted, y, churn, value, y * value, seed=0)
    assert calibration is not None and crossed.shape == predicted.shape
    # A fresh window of the same shop: customers most likely gone were over-predicted and no longer are.
    p2, c2, y2, v2 = churn_window(8000, 0.3, seed=5)
    after = calibration.predict(p2, c2)
    likely_gone = c2 > 0.8
    assert p2[likely_gone].sum() > 1.5 * y2[likely_gone].sum()
    assert after[likely_gone].sum() == pytest.approx(y2[likely_gone].sum(), rel=0.15)
    assert metrics.decile_mape(y2 * v2, after * v2) < 0.7 * metrics.decile_mape(y2 * v2, p2 * v2)


def test_a_customer_more_likely_to_buy_nothing_never_gets_a_larger_share_of_her_orders():
    predicted, churn, y, _ = churn_window(5000, 0.3, seed=6)
    calibration = ChurnCalibration().fit(predicted, y, churn)
    fresh = np.linspace(0.0, 1.0, 2001)  # the ends and beyond the fitted range too
    shares = calibration.predict(np.ones_like(fresh), fresh)
    assert (np.diff(shares) <= 0).all() and (shares > 0).all()


def test_orders_calibrated_at_every_chance_to_buy_are_left_alone():
    for seed in range(5):
        predicted, churn, y, value = churn_window(3000, 0.0, seed)
        calibration, crossed = fit_churn_calibration(predicted, y, churn, value, y * value, seed=0)
        assert calibration is None and (crossed == predicted).all()
