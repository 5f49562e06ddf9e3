"""BG/NBD: the beta-geometric / negative binomial distribution model of repeat purchasing.

Fader, Hardie and Lee (2005), "Counting your customers the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2). While alive, a customer buys as a Poisson process with
rate lambda ~ Gamma(r, alpha); after each purchase she drops out with probability p ~ Beta(a, b).

Inputs per customer (days, from `features.rfm`): `btyd_frequency` x (repeat purchase days),
`btyd_recency` t_x (first to last purchase), `btyd_age` T (first purchase to the cut-off).
Internally time is measured in `time_scale` days (default a week) so the parameters are O(1);
`params_` reports r and alpha in that unit (alpha is a time scale: larger means slower buyers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betaln, expit, gammaln, hyp2f1

from models.btyd_fit import Fitted, collapse, fit_log_params, summary_arrays

PARAMS = ("r", "alpha", "a", "b")


class BetaGeoModel(Fitted):
    """BG/NBD with maximum likelihood fitting (weighted over identical customer histories)."""

    def __init__(self, time_scale: float = 7.0, penalizer: float = 0.0):
        self.time_scale = time_scale
        self.penalizer = penalizer

    def fit(self, X: pd.DataFrame, y=None) -> BetaGeoModel:
        x, t_x, age = summary_arrays(X, self.time_scale)
        (x, t_x, age), weights = collapse(x, t_x, age)

        def negative_ll(log_params: np.ndarray) -> float:
            return -np.sum(weights * _log_likelihood(np.exp(log_params), x, t_x, age))

        self.params_, self.log_likelihood_ = fit_log_params(
            negative_ll, PARAMS, starts=[np.log([0.5, 5.0, 0.8, 2.5]), np.log([1.0, 1.0, 1.0, 1.0])],
            penalizer=self.penalizer,
        )
        self.n_customers_ = int(weights.sum())
        return self

    def _arrays(self, X: pd.DataFrame):
        self._check_fitted()
        x, t_x, age = summary_arrays(X, self.time_scale)
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"], x, t_x, age

    def log_likelihood(self, X: pd.DataFrame) -> np.ndarray:
        r, alpha, a, b, x, t_x, age = self._arrays(X)
        return _log_likelihood(np.array([r, alpha, a, b]), x, t_x, age)

    def p_alive(self, X: pd.DataFrame) -> np.ndarray:
        """P(still alive at the cut-off | history); 1 for customers with no repeat purchase (by the model)."""
        r, alpha, a, b, x, t_x, age = self._arrays(X)
        return _p_alive(r, alpha, a, b, x, t_x, age)

    def expected_purchases(self, X: pd.DataFrame, t_days: float) -> np.ndarray:
        """E[number of purchases in (cut-off, cut-off + t_days] | history] (eq. 10 of the paper)."""
        r, alpha, a, b, x, t_x, age = self._arrays(X)
        t = float(t_days) / self.time_scale
        if t <= 0:
            return np.zeros_like(x)
        # Pfaff's transformation of the paper's 2F1 term keeps the argument in (-inf, 0) and the
        # product (alpha+T / alpha+T+t)^(r+x) * 2F1(...) from overflowing for frequent buyers.
        hyper = hyp2f1(r + x, a - 1, a + b + x - 1, -t / (alpha + age))
        first = (a + b + x - 1) / (a - 1) * (1 - hyper)
        return np.clip(np.nan_to_num(first * _p_alive(r, alpha, a, b, x, t_x, age)), 0, None)

    def p_no_purchase(self, X: pd.DataFrame, t_days: float) -> np.ndarray:
        """P(no purchase in (cut-off, cut-off + t_days] | history): dead, or alive and not buying.

        An alive customer's rate has posterior Gamma(r + x, alpha + T), so P(0 in t | alive) =
        ((alpha + T) / (alpha + T + t))^(r + x). Unlike 1 - p_alive, this does not call a
        one-order customer safe just because the model cannot have seen her drop out.
        """
        r, alpha, a, b, x, t_x, age = self._arrays(X)
        t = float(t_days) / self.time_scale
        alive = _p_alive(r, alpha, a, b, x, t_x, age)
        quiet = np.exp((r + x) * (np.log(alpha + age) - np.log(alpha + age + t)))
        return np.clip(1 - alive + alive * quiet, 0, 1)


def _log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    beyond = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + age)
    with np.errstate(invalid="ignore", divide="ignore"):
        dropped = np.where(
            x > 0,
            betaln(a + 1, np.maximum(b + x - 1, 1e-12)) - betaln(a, b) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return common + np.logaddexp(beyond, dropped)


def _p_alive(r, alpha, a, b, x, t_x, age) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds_dead = np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) + (r + x) * (
            np.log(alpha + age) - np.log(alpha + t_x)
        )
    return np.where(x > 0, expit(-log_odds_dead), 1.0)
