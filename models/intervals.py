"""Prediction intervals for CLV by split conformal prediction, per band of predicted value.

Residuals of a value model fitted on earlier windows are measured on a later calibration window
(Vovk et al. 2005; Lei et al. 2018, "Distribution-free predictive inference for regression").
Errors of CLV models grow with the predicted value and are skewed, so residual quantiles are taken
separately within bands of predicted value (Mondrian conformal), and the lower and upper tails are
taken separately. The interval always contains the point prediction and never goes below zero.

A customer's value is 0 with the probability that she buys nothing; once that probability reaches the
lower tail's share, (1 - coverage) / 2, the central interval's lower end is 0 and [0, high] would hold
the lower tail as well (90% at 80%). Such a row gets the one-sided interval [0, q] with q the
`coverage` quantile instead (`high_from_zero`), so every row's interval holds the coverage, not more.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import nbinom
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted


class ConformalInterval(BaseEstimator):
    """`coverage` is the target share of actual values inside [low, high] (e.g. 0.8)."""

    def __init__(self, coverage: float = 0.8, n_bands: int = 10, min_band_size: int = 50):
        self.coverage = coverage
        self.n_bands = n_bands
        self.min_band_size = min_band_size

    def fit(self, y_pred, y_true) -> ConformalInterval:
        y_pred = np.asarray(y_pred, dtype=float)
        y_true = np.asarray(y_true, dtype=float)
        if len(y_pred) < self.min_band_size:
            raise ValueError(
                f"conformal calibration needs at least {self.min_band_size} customers, got {len(y_pred)}"
            )
        n_bands = int(max(1, min(self.n_bands, len(y_pred) // self.min_band_size)))
        self.band_edges_ = np.unique(np.quantile(y_pred, np.linspace(0, 1, n_bands + 1)[1:-1]))
        bands = np.searchsorted(self.band_edges_, y_pred, side="right")
        residual = y_true - y_pred
        tail = (1 - self.coverage) / 2
        self.lower_ = np.zeros(len(self.band_edges_) + 1)
        self.upper_ = np.zeros(len(self.band_edges_) + 1)
        self.upper_from_zero_ = np.zeros(len(self.band_edges_) + 1)
        for band in range(len(self.band_edges_) + 1):
            r = residual[bands == band]
            if not len(r):
                r = residual
            n = len(r)
            # Finite-sample conformal levels: ceil((n + 1) q) / n, clipped to [0, 1].
            lo_level = max(0.0, np.floor((n + 1) * tail) / n)
            hi_level = min(1.0, np.ceil((n + 1) * (1 - tail)) / n)
            one_sided_level = min(1.0, np.ceil((n + 1) * self.coverage) / n)
            self.lower_[band] = min(0.0, np.quantile(r, lo_level))
            self.upper_[band] = max(0.0, np.quantile(r, hi_level))
            self.upper_from_zero_[band] = max(0.0, np.quantile(r, one_sided_level))
        return self

    def predict(self, y_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(low, high, high_from_zero) for the point predictions `y_pred` (arrays of its shape): the
        central interval [low, high], and the upper end of the one-sided interval [0, high_from_zero]
        for a row whose lower end is 0 (module docstring). Each contains the point prediction."""
        check_is_fitted(self, "upper_from_zero_")
        y_pred = np.asarray(y_pred, dtype=float)
        bands = np.searchsorted(self.band_edges_, y_pred, side="right")
        low = np.clip(y_pred + self.lower_[bands], 0, None)
        high = y_pred + self.upper_[bands]
        high_from_zero = y_pred + self.upper_from_zero_[bands]
        return np.minimum(low, y_pred), np.maximum(high, y_pred), np.maximum(high_from_zero, y_pred)


def posterior_count_interval(
    p_alive: np.ndarray,
    expected_orders: np.ndarray,
    shape: np.ndarray,
    p_none: np.ndarray,
    coverage: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low, high, high_from_zero) quantiles of a customer's number of future orders under a
    buy-till-you-die posterior, when there is no later window to conformalise on (a young shop).

    N is 0 with probability 1 - p_alive and otherwise negative binomial with the alive customer's
    posterior shape r + x and mean E[N] / p_alive (her purchase rate is Gamma-distributed, so her
    count is a Poisson-gamma mixture: Fader, Hardie and Lee 2005). Deaths within the horizon only
    lower the mean, which is the model's own. Quantiles at (1 - coverage) / 2, (1 + coverage) / 2 and, for
    the one-sided interval from 0 (module docstring), at `coverage`. Arrays of the inputs' shape.

    `p_none` is the row's P(N = 0), its churn_prob: a quantile is 0 at a level up to it and at least 1
    order above it. The mixture's own zero mass differs from it (the base's P(no purchase) also counts
    deaths within the horizon), and where it was the larger the interval [0, 0.48 orders] of a customer
    with churn_prob 0.775 held 77.5% of her outcomes, not 80%.
    """
    p_alive = np.clip(np.asarray(p_alive, float), 1e-9, 1)
    mean = np.asarray(expected_orders, float) / p_alive
    shape = np.asarray(shape, float)
    p_none = np.asarray(p_none, float)
    success = shape / (shape + np.maximum(mean, 1e-12))

    def quantile(level: float) -> np.ndarray:
        inner = (level - (1 - p_alive)) / p_alive
        count = np.where(inner <= 0, 0.0, nbinom.ppf(np.clip(inner, 0, 1 - 1e-12), shape, success))
        return np.where(level <= p_none, 0.0, np.maximum(count, 1.0))

    tail = (1 - coverage) / 2
    return quantile(tail), quantile(1 - tail), quantile(coverage)
