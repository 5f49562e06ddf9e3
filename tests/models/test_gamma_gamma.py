"""Gamma-Gamma spend model (models.gamma_gamma) and the BG/NBD x Gamma-Gamma CLV (models.btyd_clv)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from models.bgnbd import BetaGeoModel
from models.bgnbd import simulate as simulate_purchases
from models.btyd_clv import BTYDCLV
from models.gamma_gamma import GammaGammaModel

# Fader, Hardie and Lee (2005), "RFM and CLV", CDNOW: p = 6.25, q = 3.74, gamma = 15.44 (dollars).
CDNOW = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def simulate_spend(params, x, seed) -> np.ndarray:
    """Mean of x transaction values z ~ Gamma(p, rate nu), nu ~ Gamma(q, rate gamma) per customer."""
    rng = np.random.default_rng(seed)
    nu = rng.gamma(params["q"], 1 / params["gamma"], x.size)
    return np.array([rng.gamma(params["p"], 1 / v, int(k)).mean() for v, k in zip(nu, x, strict=True)])


def with_params(params) -> GammaGammaModel:
    model = GammaGammaModel()
    model.params_ = dict(params)
    return model


def test_recovers_parameters_from_simulated_spend():
    rng = np.random.default_rng(91)
    x = rng.geometric(0.3, 20_000).astype(float)
    X = pd.DataFrame({"btyd_frequency": x, "btyd_monetary": simulate_spend(CDNOW, x, seed=92)})
    model = GammaGammaModel().fit(X)
    for name, tolerance in {"p": 0.12, "q": 0.10, "gamma": 0.12}.items():
        assert model.params_[name] == pytest.approx(CDNOW[name], rel=tolerance), name
    assert model.log_likelihood_ >= with_params(CDNOW).log_likelihood(X).sum() - 1e-6
    assert model.log_likelihood_ == pytest.approx(model.log_likelihood(X).sum(), rel=1e-10)
    # The population mean is pinned down far better than p, q, gamma one by one.
    assert model.population_mean() == pytest.approx(X["btyd_monetary"].mean(), rel=0.02)


def test_fit_ignores_customers_without_repeat_purchases_and_is_unit_free():
    rng = np.random.default_rng(93)
    x = rng.geometric(0.3, 3_000).astype(float)
    m = simulate_spend(CDNOW, x, seed=94)
    repeaters = pd.DataFrame({"btyd_frequency": x, "btyd_monetary": m})
    padded = pd.concat(
        [repeaters, pd.DataFrame({"btyd_frequency": [0.0] * 500, "btyd_monetary": [0.0] * 500})]
    )
    fitted = GammaGammaModel().fit(repeaters).params_
    assert GammaGammaModel().fit(padded).params_ == pytest.approx(fitted, rel=1e-9)
    # Spend in cents: same p and q, gamma scaled by 100.
    cents = GammaGammaModel().fit(repeaters.assign(btyd_monetary=100 * m)).params_
    assert cents["p"] == pytest.approx(fitted["p"], rel=1e-3)
    assert cents["q"] == pytest.approx(fitted["q"], rel=1e-3)
    assert cents["gamma"] == pytest.approx(100 * fitted["gamma"], rel=1e-3)


def test_cdnow_conditional_expected_spend_by_hand():
    model = with_params(CDNOW)
    # Population mean p gamma / (q - 1) = 6.25 * 15.44 / 2.74 = 96.5 / 2.74.
    assert model.population_mean() == pytest.approx(96.5 / 2.74, rel=1e-12)
    # E[M | x = 2, m_x = 30] = (gamma + m_x x) p / (p x + q - 1) = (15.44 + 60) * 6.25 / (12.5 + 2.74)
    #                        = 471.5 / 15.24 = 30.938...
    X = pd.DataFrame({"btyd_frequency": [2.0, 10.0], "btyd_monetary": [30.0, 30.0]})
    got = model.expected_order_value(X)
    assert got[0] == pytest.approx(471.5 / 15.24, rel=1e-12)
    # The same as a credibility-weighted mean of m_x and the population mean, weight p x / (p x + q - 1).
    for value, x in zip(got, (2.0, 10.0), strict=True):
        w = 6.25 * x / (6.25 * x + 2.74)
        assert value == pytest.approx(w * 30 + (1 - w) * 96.5 / 2.74, rel=1e-12)
    assert abs(got[1] - 30) < abs(got[0] - 30)  # more transactions, less shrinkage


def test_log_likelihood_matches_integration_over_the_customer_spend_rate():
    # x m_x | nu ~ Gamma(p x, rate nu); the density of m_x integrates nu ~ Gamma(q, rate gamma) out.
    p, q, gamma = CDNOW.values()
    rows = [(1.0, 12.0), (2.0, 30.0), (7.0, 55.5)]

    def density(x, m):
        def integrand(nu):
            log_m = p * x * math.log(x * nu) - math.lgamma(p * x) + (p * x - 1) * math.log(m) - x * nu * m
            log_nu = q * math.log(gamma) - math.lgamma(q) + (q - 1) * math.log(nu) - gamma * nu
            return math.exp(log_m + log_nu)

        return quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-12, limit=200)[0]

    X = pd.DataFrame(rows, columns=["btyd_frequency", "btyd_monetary"])
    np.testing.assert_allclose(
        with_params(CDNOW).log_likelihood(X), [math.log(density(*r)) for r in rows], rtol=1e-9
    )


def test_one_time_buyers_are_shrunk_between_the_population_mean_and_their_own_spend():
    model = with_params(CDNOW)
    mean = model.population_mean()
    X = pd.DataFrame(
        {
            "btyd_frequency": [0.0, 0.0, 0.0, 0.0],
            "btyd_monetary": [0.0, 0.0, 0.0, 0.0],
            "monetary_mean": [100.0, 5.0, mean, 50.0],
            "n_orders": [1, 1, 1, 2],  # the last bought two orders of 50 on her one purchase day
        }
    )
    got = model.expected_order_value(X)
    assert mean < got[0] < 100
    assert 5 < got[1] < mean
    assert got[2] == pytest.approx(mean)
    assert got[3] == pytest.approx(got[0])  # a purchase day of 100, like the first customer
    # By hand: a single observation of 100 is (15.44 + 100) * 6.25 / (6.25 + 2.74).
    assert got[0] == pytest.approx(115.44 * 6.25 / 8.99, rel=1e-12)
    # Without their spend, one-time buyers get the population mean.
    bare = model.expected_order_value(X.drop(columns=["monetary_mean", "n_orders"]))
    np.testing.assert_allclose(bare, mean)


def test_estimator_contract_and_input_errors():
    model = GammaGammaModel(penalizer=0.1)
    assert model.get_params() == {"penalizer": 0.1}
    assert clone(model).get_params() == {"penalizer": 0.1}
    for method in ("expected_order_value", "log_likelihood"):
        with pytest.raises(NotFittedError):
            getattr(model, method)(pd.DataFrame({"btyd_frequency": [1.0], "btyd_monetary": [10.0]}))
    with pytest.raises(NotFittedError):
        model.population_mean()
    too_few = pd.DataFrame({"btyd_frequency": [1.0] * 9 + [0.0], "btyd_monetary": [10.0] * 9 + [0.0]})
    with pytest.raises(ValueError, match="at least 10"):
        model.fit(too_few)
    with pytest.raises(ValueError, match="btyd_monetary"):
        model.fit(too_few.drop(columns="btyd_monetary"))


# ------------------------------------------------------------------------------------------ BTYDCLV
def test_btyd_clv_is_expected_purchases_times_expected_order_value():
    rng = np.random.default_rng(95)
    X = simulate_purchases(
        {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, rng.uniform(200, 700, 5_000), seed=96
    )
    spend = np.zeros(len(X))
    repeat = X["btyd_frequency"].to_numpy() > 0
    spend[repeat] = simulate_spend(CDNOW, X["btyd_frequency"].to_numpy()[repeat], seed=97)
    X = X.assign(btyd_monetary=spend, monetary_mean=np.where(repeat, spend, 40.0), n_orders=1.0)

    clv = BTYDCLV().fit(X)
    assert set(clv.params_) == {"r", "alpha", "a", "b", "p", "q", "gamma"}
    purchases = BetaGeoModel().fit(X).expected_purchases(X, 365)
    value = clv.spend_.expected_order_value(X)
    np.testing.assert_allclose(clv.predict_clv(X, 365), purchases * value, rtol=1e-12)
    # Discounted to the middle of the horizon: one year at 10% is a factor 1.1^-0.5.
    np.testing.assert_allclose(
        clv.predict_clv(X, 365, discount_rate=0.1), purchases * value / math.sqrt(1.1), rtol=1e-12
    )
    assert (clv.predict_clv(X, 365) >= 0).all()
    with pytest.raises(NotFittedError):
        BTYDCLV().predict_clv(X, 365)
