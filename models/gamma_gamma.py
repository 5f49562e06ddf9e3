"""Gamma-Gamma model of spend per transaction.

Fader, Hardie and Lee (2005), "RFM and CLV: using iso-value curves for customer base analysis",
Journal of Marketing Research 42(4). A customer's transaction values are Gamma(p, nu) with her
own nu ~ Gamma(q, gamma); spend is assumed independent of purchase frequency. The mean spend of a
customer is then nu-averaged: E[M] = p * gamma / (q - 1) for the population.

Inputs: `btyd_frequency` x (repeat purchase days) and `btyd_monetary` m_x (their mean value), fitted
on customers with x > 0 and m_x > 0. Money is in the shop's currency; gamma is in currency units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import gammaln

from models.btyd_fit import Fitted, collapse, fit_log_params, require

PARAMS = ("p", "q", "gamma")
MIN_REPEAT_BUYERS = 10


class TooFewRepeatBuyers(ValueError):
    """Fewer than `MIN_REPEAT_BUYERS` customers with a repeat purchase of positive value: Gamma-Gamma
    cannot be fitted on these data. `repeaters` is how many there were."""

    def __init__(self, repeaters: int):
        super().__init__(
            f"Gamma-Gamma needs at least {MIN_REPEAT_BUYERS} customers with a repeat purchase, got {repeaters}"
        )
        self.repeaters = repeaters


class GammaGammaModel(Fitted):
    """Conditional expected order value; one-time buyers are shrunk from their first order to the mean."""

    def __init__(self, penalizer: float = 0.0):
        self.penalizer = penalizer

    def fit(self, X: pd.DataFrame, y=None) -> GammaGammaModel:
        """Maximum likelihood on the customers with a repeat purchase of positive value; returns self.
        Raises TooFewRepeatBuyers when there are fewer than `MIN_REPEAT_BUYERS` of them."""
        require(X, ("btyd_frequency", "btyd_monetary"))
        x = X["btyd_frequency"].to_numpy(float)
        m = X["btyd_monetary"].to_numpy(float)
        keep = (x > 0) & (m > 0)
        if keep.sum() < MIN_REPEAT_BUYERS:
            raise TooFewRepeatBuyers(int(keep.sum()))
        (x, m), weights = collapse(x[keep], m[keep])
        # Scale money so the optimiser works on O(1) numbers; gamma is scaled back afterwards.
        scale = float(np.average(m, weights=weights))
        m_scaled = m / scale

        def negative_ll(log_params: np.ndarray) -> float:
            return -np.sum(weights * _log_likelihood(np.exp(log_params), x, m_scaled))

        params, _ = fit_log_params(
            negative_ll,
            PARAMS,
            starts=[np.log([2.0, 3.0, 1.0]), np.log([6.0, 4.0, 0.5])],
            penalizer=self.penalizer,
        )
        params["gamma"] *= scale
        self.params_ = params
        self.log_likelihood_ = float(np.sum(weights * _log_likelihood(np.array(list(params.values())), x, m)))
        self.n_customers_ = int(weights.sum())
        return self

    def population_mean(self) -> float:
        """Mean spend per transaction in the population: p * gamma / (q - 1) (infinite when q <= 1)."""
        self._check_fitted()
        p, q, gamma = (self.params_[k] for k in PARAMS)
        return p * gamma / (q - 1) if q > 1 else float("inf")

    def log_likelihood(self, X: pd.DataFrame) -> np.ndarray:
        """Per-customer log density of the mean repeat spend m_x given x at the fitted parameters
        (x m_x | x is Gamma(p x, nu), nu ~ Gamma(q, gamma)); 0 for customers without a repeat purchase."""
        self._check_fitted()
        require(X, ("btyd_frequency", "btyd_monetary"))
        x = X["btyd_frequency"].to_numpy(float)
        m = X["btyd_monetary"].to_numpy(float)
        repeat = (x > 0) & (m > 0)
        out = np.zeros(len(x))
        params = np.array([self.params_[k] for k in PARAMS])
        out[repeat] = _log_likelihood(params, x[repeat], m[repeat])
        return out

    def expected_order_value(self, X: pd.DataFrame) -> np.ndarray:
        """E[spend per transaction | x, m_x] (eq. 5 of the paper): a weighted mean of m_x and the
        population mean, with weight p x / (p x + q - 1) on m_x.

        A transaction is a purchase day, as for the BG/NBD counts (`btyd_monetary` is the mean value of
        the repeat purchase days). Customers with no repeat purchase have no m_x; the value of their one
        purchase day (`monetary_mean` x `n_orders`, or `monetary_mean` alone when `n_orders` is absent)
        is used as a single observation (x = 1), which shrinks it strongly towards the population mean.
        Without `monetary_mean` they get the population mean.
        """
        self._check_fitted()
        require(X, ("btyd_frequency", "btyd_monetary"))
        p, q, gamma = (self.params_[k] for k in PARAMS)
        x = X["btyd_frequency"].to_numpy(float)
        m = X["btyd_monetary"].to_numpy(float)
        if "monetary_mean" in X:
            one_time = x == 0
            first_day = X["monetary_mean"].to_numpy(float)
            if "n_orders" in X:  # all of a one-time buyer's orders fall on her one purchase day
                first_day = first_day * X["n_orders"].to_numpy(float)
            m = np.where(one_time, first_day, m)
            x = np.where(one_time, 1.0, x)
        m = np.clip(m, 0, None)
        value = (gamma + m * x) * p / (p * x + q - 1)
        return np.where(x > 0, value, self.population_mean())


def _log_likelihood(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    p, q, gamma = params
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(gamma)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(gamma + m * x)
    )
