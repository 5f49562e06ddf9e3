"""Monotone recalibration of predicted values against what customers later spent.

Isotonic regression (pool adjacent violators) finds the best non-decreasing map from predicted to
actual values on a calibration window. Its raw output is a step function: on a few thousand
customers it pools hundreds of them into one value, which ties them in every ranked list. Here the
map is instead the straight line through the pooled blocks' centres, continued proportionally
(through the origin) below the first and above the last centre. It is strictly increasing wherever
the blocks' values are, so the model's ranking survives and no two different predictions tie.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.validation import check_is_fitted


class MonotoneCalibrator(BaseEstimator):
    def fit(self, predicted, actual) -> MonotoneCalibrator:
        predicted = np.asarray(predicted, dtype=float)
        actual = np.asarray(actual, dtype=float)
        if len(predicted) < 2:
            raise ValueError("calibration needs at least two customers")
        fitted = IsotonicRegression(y_min=0.0).fit_transform(predicted, actual)
        order = np.argsort(predicted, kind="stable")
        x, y = predicted[order], fitted[order]
        # Blocks: runs of equal fitted value; each becomes one point at its mean prediction.
        starts = np.flatnonzero(np.r_[True, np.diff(y) != 0])
        sums = np.add.reduceat(x, starts)
        counts = np.diff(np.r_[starts, len(x)])
        centres, values = sums / counts, y[starts]
        keep = np.r_[True, np.diff(centres) > 0]
        self.x_, self.y_ = centres[keep], values[keep]
        return self

    def predict(self, predicted) -> np.ndarray:
        check_is_fitted(self, "x_")
        predicted = np.asarray(predicted, dtype=float)
        out = np.interp(predicted, self.x_, self.y_)
        # Outside the calibrated range keep the last ratio of calibrated to raw value.
        below, above = predicted < self.x_[0], predicted > self.x_[-1]
        out[below] = predicted[below] * _ratio(self.y_[0], self.x_[0])
        out[above] = predicted[above] * _ratio(self.y_[-1], self.x_[-1])
        return np.clip(out, 0, None)


def _ratio(y: float, x: float) -> float:
    return y / x if x > 0 else 1.0
