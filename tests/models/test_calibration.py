"""The monotone value calibrator: keeps the ranking, removes ties, and fixes the level per band."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from models.calibration import MonotoneCalibrator


def test_calibration_keeps_order_without_ties_and_corrects_bands():
    rng = np.random.default_rng(0)
    predicted = rng.gamma(1.0, 50.0, 5000)
    actual = rng.poisson(2 * predicted) * 1.0  # the model is off by a factor of two
    calibrator = MonotoneCalibrator().fit(predicted, actual)
    out = calibrator.predict(predicted)
    order = np.argsort(predicted)
    assert np.all(np.diff(out[order]) >= 0)
    assert len(np.unique(out)) > 0.95 * len(out)  # a step function would pool hundreds together
    assert out.sum() == pytest.approx(actual.sum(), rel=0.03)
    top = predicted > np.quantile(predicted, 0.9)
    assert out[top].sum() == pytest.approx(actual[top].sum(), rel=0.1)


def test_values_beyond_the_calibrated_range_extrapolate_proportionally():
    calibrator = MonotoneCalibrator().fit([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0])
    assert calibrator.predict([8.0, 0.5]) == pytest.approx([16.0, 1.0])
    assert calibrator.predict([-1.0]).min() >= 0


def test_unfitted_and_too_small():
    with pytest.raises(NotFittedError):
        MonotoneCalibrator().predict([1.0])
    with pytest.raises(ValueError, match="at least two"):
        MonotoneCalibrator().fit([1.0], [1.0])
