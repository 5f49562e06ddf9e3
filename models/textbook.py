"""The textbook CLV formulas marketers know, as baselines with a fit / predict_clv interface.

Both assume every customer keeps her own past purchase rate and order value, and that the base
churns at a constant yearly rate c learned from the data: the share of customers with a year of
tenure whose last purchase is more than a year old (clipped to [0.02, 0.98]; 0.5 when fewer than
10 customers have a year of tenure). Survival is exponential with the hazard lam = -ln(1 - c) that
keeps a share 1 - c a year, so the expected active time within a horizon of h years is
(1 - exp(-lam h)) / lam. As h grows this tends to 1 / lam, not to the textbook lifespan 1 / c
(`base_summary` reports that as `lifespan_years`): the textbook counts every started year in full,
as if customers only left at year ends, which adds about half a year (1 / c - 1 / lam -> 1/2 as c -> 0).
- BasicCLV: average order value x purchases per year x expected active years.
- ChurnCLV: revenue per year x margin / churn rate, restricted to the horizon in the same way.

Simpler still, and the floor every model must clear, `RunRateCLV`: each customer keeps earning at her
average daily revenue since her first purchase, with no churn at all (issue 17's naive run-rate).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.btyd_fit import Fitted, require
from models.discounting import mid_horizon_factor

_MIN_YEARS = 30 / 365  # a first order yesterday is not a rate of 365 orders a year


def _yearly_churn(X: pd.DataFrame) -> float:
    require(X, ("tenure_days", "recency_days"))
    seasoned = X["tenure_days"].to_numpy(float) >= 365
    if seasoned.sum() < 10:
        return 0.5  # too young a base to measure: assume half the customers leave each year
    lapsed = X["recency_days"].to_numpy(float)[seasoned] > 365
    return float(np.clip(lapsed.mean(), 0.02, 0.98))


def _active_years(churn: float, horizon_days: float) -> float:
    rate = -np.log(1 - churn)  # constant hazard with the measured yearly churn
    years = horizon_days / 365
    return float((1 - np.exp(-rate * years)) / rate)


class BasicCLV(Fitted):
    """Average order value x purchases per year x expected active years within the horizon."""

    def fit(self, X: pd.DataFrame, y=None) -> BasicCLV:
        self.churn_rate_ = _yearly_churn(X)
        self.params_ = {"yearly_churn": self.churn_rate_}
        return self

    def predict_clv(self, X: pd.DataFrame, horizon_days: float, discount_rate: float = 0.0) -> np.ndarray:
        self._check_fitted()
        require(X, ("monetary_mean", "n_orders", "tenure_days"))
        years = np.maximum(X["tenure_days"].to_numpy(float) / 365, _MIN_YEARS)
        per_year = X["n_orders"].to_numpy(float) / years
        aov = np.clip(X["monetary_mean"].to_numpy(float), 0, None)
        value = aov * per_year * _active_years(self.churn_rate_, horizon_days)
        return value * mid_horizon_factor(discount_rate, horizon_days)


class ChurnCLV(Fitted):
    """Revenue per year x margin / churn rate, within the horizon; `margin` 1.0 gives revenue."""

    def __init__(self, margin: float = 1.0):
        self.margin = margin

    def fit(self, X: pd.DataFrame, y=None) -> ChurnCLV:
        self.churn_rate_ = _yearly_churn(X)
        self.params_ = {"yearly_churn": self.churn_rate_}
        return self

    def predict_clv(self, X: pd.DataFrame, horizon_days: float, discount_rate: float = 0.0) -> np.ndarray:
        self._check_fitted()
        require(X, ("monetary_total", "tenure_days"))
        years = np.maximum(X["tenure_days"].to_numpy(float) / 365, _MIN_YEARS)
        per_year = np.clip(X["monetary_total"].to_numpy(float), 0, None) / years
        value = per_year * self.margin * _active_years(self.churn_rate_, horizon_days)
        return value * mid_horizon_factor(discount_rate, horizon_days)


def run_rate(monetary_total, tenure_days, horizon_days: float) -> np.ndarray:
    """Naive run-rate value over the horizon: revenue so far x horizon_days / days since the first purchase.

    `monetary_total` is the net revenue up to the cut-off (clipped at 0: refunds never make a customer
    worth less than nothing), `tenure_days` the days from the first purchase to the cut-off; a customer
    whose first purchase is on the cut-off day (0 days) counts as 1 day, so a first order today of 50
    predicts 50 x horizon_days. Same units as `monetary_total` (orders when the log has no amounts).
    """
    revenue = np.clip(np.asarray(monetary_total, dtype=float), 0, None)
    days = np.maximum(np.asarray(tenure_days, dtype=float), 1.0)
    return revenue * (float(horizon_days) / days)


class RunRateCLV(Fitted):
    """The naive run-rate baseline (`run_rate`): nothing is learned; `fit` only checks the columns."""

    def fit(self, X: pd.DataFrame, y=None) -> RunRateCLV:
        require(X, ("monetary_total", "tenure_days"))
        self.params_ = {}
        return self

    def predict_clv(self, X: pd.DataFrame, horizon_days: float, discount_rate: float = 0.0) -> np.ndarray:
        self._check_fitted()
        require(X, ("monetary_total", "tenure_days"))
        value = run_rate(X["monetary_total"], X["tenure_days"], horizon_days)
        return value * mid_horizon_factor(discount_rate, horizon_days)


def base_summary(X: pd.DataFrame, horizon_days: float) -> dict[str, float]:
    """The textbook view of the whole base: AOV x purchases per year x lifespan, per customer.

    `lifespan_years` is the textbook 1 / churn; `horizon_years_active` is the same restricted to
    the horizon, as the models' predictions are.
    """
    require(X, ("monetary_total", "n_orders", "tenure_days"))
    churn = _yearly_churn(X)
    orders = float(X["n_orders"].sum())
    years = np.maximum(X["tenure_days"].to_numpy(float) / 365, _MIN_YEARS)
    aov = float(np.clip(X["monetary_total"].sum(), 0, None) / orders) if orders else 0.0
    per_year = float(np.mean(X["n_orders"].to_numpy(float) / years))
    return {
        "customers": int(len(X)),
        "average_order_value": aov,
        "orders_per_year": per_year,
        "yearly_churn": churn,
        "lifespan_years": 1 / churn,
        "horizon_days": float(horizon_days),
        "horizon_years_active": _active_years(churn, horizon_days),
        "basic_clv_lifetime": aov * per_year / churn,
        "basic_clv_horizon": aov * per_year * _active_years(churn, horizon_days),
    }
