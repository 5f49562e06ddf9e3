"""Pareto/NBD (models.pareto_nbd): parameter recovery, CDNOW parameters, closed forms against numerical
integration of the individual-level model, P(no purchase) against an event-by-event Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import dblquad, quad

from models.pareto_nbd import ParetoNBDModel, _log_hyp2f1_one, _log_tail, simulate

# Fader and Hardie (2005), "Implementing the Pareto/NBD model given the CDNOW data", weekly time unit.
CDNOW = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
WEEK = 7.0


def summary(x, t_x_weeks, age_weeks) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "btyd_frequency": np.asarray(x, dtype=float),
            "btyd_recency": np.asarray(t_x_weeks, dtype=float) * WEEK,
            "btyd_age": np.asarray(age_weeks, dtype=float) * WEEK,
        }
    )


def with_params(params: dict[str, float]) -> ParetoNBDModel:
    model = ParetoNBDModel()
    model.params_ = dict(params)
    return model


# ----------------------------------------------------------------------------------------- fitting
def test_recovers_parameters_from_simulated_data():
    rng = np.random.default_rng(31)
    X = simulate(CDNOW, rng.uniform(52, 104, 20_000) * WEEK, seed=32)
    model = ParetoNBDModel().fit(X)

    for name, tolerance in {"r": 0.10, "alpha": 0.10, "s": 0.20, "beta": 0.25}.items():
        assert model.params_[name] == pytest.approx(CDNOW[name], rel=tolerance), name
    assert model.log_likelihood_ >= with_params(CDNOW).log_likelihood(X).sum() - 1e-6


def test_fits_a_large_base_in_reasonable_time():
    # Timing is reported by benchmarks/btyd.py; here only that a 200k base fits and gives finite output.
    rng = np.random.default_rng(33)
    X = simulate(CDNOW, rng.integers(1, 3 * 365, 200_000), seed=34)
    X["btyd_recency"] = np.floor(X["btyd_recency"])  # whole days, as features.rfm produces
    model = ParetoNBDModel().fit(X)
    assert all(np.isfinite(v) and v > 0 for v in model.params_.values())
    assert model.params_["r"] == pytest.approx(CDNOW["r"], rel=0.1)


# ------------------------------------------------------------- closed forms vs the individual model
def _individual(lam, mu, x, t_x, age):
    """Likelihood of (x, t_x, T) given lambda, mu: alive at T, or died at some u in (t_x, T]."""
    alive = lam**x * math.exp(-(lam + mu) * age)
    died = lam**x * mu / (lam + mu) * (math.exp(-(lam + mu) * t_x) - math.exp(-(lam + mu) * age))
    return alive, died


def _posterior_expectations(params, x, t_x, age, t) -> dict[str, float]:
    """log L, P(alive), E[purchases in t], P(no purchase in t) for one customer by 2-D numerical
    integration over the priors lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta): no 2F1 involved.

    An alive customer with (lambda, mu) buys lambda / mu (1 - e^(-mu t)) times in t in expectation, and
    buys nothing in t if she dies first or neither event happens: e^(-(lambda+mu) t) + mu / (lambda+mu)
    (1 - e^(-(lambda+mu) t)).
    """
    r, alpha, s, beta = params

    def integrate(f):
        def integrand(v, u):  # lambda = e^u, mu = e^v
            lam, mu = math.exp(u), math.exp(v)
            log_prior = r * math.log(alpha) - math.lgamma(r) + r * u - alpha * lam
            log_prior += s * math.log(beta) - math.lgamma(s) + s * v - beta * mu
            return f(lam, mu) * math.exp(log_prior)

        return dblquad(integrand, -70, 5, -70, 5, epsabs=0, epsrel=1e-10)[0]

    def quiet_if_alive(lam, mu):
        both = lam + mu
        return math.exp(-both * t) + mu / both * -math.expm1(-both * t)

    total = integrate(lambda lam, mu: sum(_individual(lam, mu, x, t_x, age)))
    alive = integrate(lambda lam, mu: _individual(lam, mu, x, t_x, age)[0])
    died = total - alive
    expected = integrate(
        lambda lam, mu: _individual(lam, mu, x, t_x, age)[0] * lam / mu * -math.expm1(-mu * t)
    )
    quiet = integrate(lambda lam, mu: _individual(lam, mu, x, t_x, age)[0] * quiet_if_alive(lam, mu))
    return {
        "log_likelihood": math.log(total),
        "p_alive": alive / total,
        "expected": expected / total,
        "no_purchase": (died + quiet) / total,
    }


@pytest.mark.parametrize(
    ("params", "x", "t_x", "age"),
    [
        (CDNOW, 2, 30.43, 38.86),  # the CDNOW paper's example customer
        (CDNOW, 0, 0.0, 38.86),
        ({"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 4.0}, 5, 20.0, 52.0),  # alpha >= beta branch
        ({"r": 1.3, "alpha": 3.0, "s": 1.0, "beta": 30.0}, 1, 1.0, 10.0),  # alpha < beta, s = 1
    ],
)
def test_closed_forms_match_numerical_integration(params, x, t_x, age):
    t = 39.0
    reference = _posterior_expectations(tuple(params.values()), x, t_x, age, t)
    model, X = with_params(params), summary([x], [t_x], [age])
    assert model.log_likelihood(X)[0] == pytest.approx(reference["log_likelihood"], abs=1e-7)
    assert model.p_alive(X)[0] == pytest.approx(reference["p_alive"], rel=1e-7)
    assert model.expected_purchases(X, t * WEEK)[0] == pytest.approx(reference["expected"], rel=1e-7)
    assert model.p_no_purchase(X, t * WEEK)[0] == pytest.approx(reference["no_purchase"], rel=1e-7)


def test_cdnow_example_customer():
    # Verified against the integration above; recorded here as plain numbers for the report.
    model, X = with_params(CDNOW), summary([2], [30.43], [38.86])
    assert model.expected_purchases(X, 39 * WEEK)[0] == pytest.approx(1.4504, abs=1e-4)
    assert model.p_alive(X)[0] == pytest.approx(0.8684, abs=1e-4)


def _log_tail_by_quadrature(params, x, y) -> float:
    """log int_y^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du by adaptive quadrature on a log scale."""
    r, alpha, s, beta = params
    at_y = -(r + x) * math.log(alpha + y) - (s + 1) * math.log(beta + y)
    shift = min(alpha, beta) + y

    def integrand(w):  # u = y + shift (e^w - 1)
        u = y + shift * math.expm1(w)
        return (
            math.exp(-(r + x) * math.log(alpha + u) - (s + 1) * math.log(beta + u) - at_y)
            * shift
            * math.exp(w)
        )

    edges = [0, 0.001, 0.01, 0.1, 1, 3, 10, 30, 100, 300, 700]
    return at_y + math.log(
        sum(
            quad(integrand, lo, hi, limit=400, epsabs=0, epsrel=1e-13)[0]
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        )
    )


@pytest.mark.parametrize(
    ("params", "x", "y"),
    [
        ((0.55, 10.58, 0.61, 11.67), 0, 0.0),
        ((0.55, 10.58, 0.61, 11.67), 2, 30.43),
        ((0.55, 10.58, 0.61, 11.67), 500, 1043.0),  # a frequent buyer over 20 years
        ((0.55, 11.67, 0.61, 10.58), 3000, 5.0),
        ((0.55, 10.58, 0.61, 10.58), 7, 3.0),  # alpha = beta: 2F1 = 1
        ((4.64, 48.7, 0.6, 0.0137), 3000, 0.0),  # scipy's hyp2f1 returns nan: continued fraction
        ((0.0844, 25.3, 0.061, 0.0245), 500, 0.0),
        ((0.5, 1e-3, 0.5, 1e3), 0, 0.0),  # argument near 1 in the alpha < beta branch
    ],
)
def test_tail_integral_matches_quadrature(params, x, y):
    got = _log_tail(params, np.array([float(x)]), np.array([y]))[0]
    assert got == pytest.approx(_log_tail_by_quadrature(params, x, y), rel=1e-10, abs=1e-10)


def test_hypergeometric_fallback_agrees_with_its_series():
    b = np.array([3000.6, 500.1, 1.2, 10.0])
    c = np.array([3001.5, 500.7, 3.5, 11.6])
    z = np.array([0.9995, 0.999, 0.5, 0.9999])
    series = []
    for bi, ci, zi in zip(b, c, z, strict=True):
        term, total, n = 1.0, 1.0, 0
        while term > 1e-18 * total:
            term *= (bi + n) / (ci + n) * zi
            total += term
            n += 1
        series.append(math.log(total))
    np.testing.assert_allclose(_log_hyp2f1_one(b, c, z), series, rtol=1e-11)


def test_expected_purchases_are_continuous_at_s_equal_one():
    X = summary([3, 0], [20.0, 0.0], [40.0, 40.0])
    at_one = with_params({**CDNOW, "s": 1.0}).expected_purchases(X, 52 * WEEK)
    for s in (1 - 1e-7, 1 + 1e-7):
        np.testing.assert_allclose(
            with_params({**CDNOW, "s": s}).expected_purchases(X, 52 * WEEK), at_one, rtol=1e-6
        )


# ------------------------------------------------------------------------------------ Monte Carlo
def _simulate_events(params, age, horizon, seed):
    """Event-by-event Pareto/NBD customers: (x, t_x, purchases in (T, T + horizon]), weeks."""
    rng = np.random.default_rng(seed)
    n = age.size
    rate = rng.gamma(params["r"], 1 / params["alpha"], n)
    death = rng.exponential(1 / rng.gamma(params["s"], 1 / params["beta"], n))
    now = np.zeros(n)
    x, t_x, future = np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.arange(n)
    while active.size:
        now[active] += rng.exponential(1 / rate[active])
        alive = now[active] < death[active]
        before = alive & (now[active] <= age[active])
        during = alive & (now[active] > age[active]) & (now[active] <= age[active] + horizon)
        x[active[before]] += 1
        t_x[active[before]] = now[active[before]]
        future[active[during]] += 1
        active = active[before | during]
    return x, t_x, future


def test_p_no_purchase_and_expected_purchases_match_a_monte_carlo_simulation():
    rng = np.random.default_rng(41)
    n, horizon = 100_000, 52.0
    age = rng.uniform(30, 104, n)
    x, t_x, future = _simulate_events(CDNOW, age, horizon, seed=42)
    model, X = with_params(CDNOW), summary(x, t_x, age)

    quiet = model.p_no_purchase(X, horizon * WEEK)
    assert quiet.mean() == pytest.approx((future == 0).mean(), abs=0.005)
    deciles = np.digitize(quiet, np.quantile(quiet, np.linspace(0.1, 0.9, 9)))
    for d in np.unique(deciles):
        members = deciles == d
        assert quiet[members].mean() == pytest.approx((future[members] == 0).mean(), abs=0.02), d
    expected = model.expected_purchases(X, horizon * WEEK)
    assert expected.mean() == pytest.approx(future.mean(), rel=0.03)
    for lo, hi in [(0, 0), (1, 1), (2, 3), (4, 10), (11, np.inf)]:
        members = (x >= lo) & (x <= hi)
        assert expected[members].mean() == pytest.approx(future[members].mean(), rel=0.08), (lo, hi)


def test_p_no_purchase_of_one_customer_matches_importance_sampling():
    # Draw (lambda, mu) from the prior, weight by the customer's likelihood, then play her future out:
    # alive at T with probability (alive term) / L, then the next purchase and death race.
    x, t_x, age, t = 2, 30.43, 38.86, 26.0
    rng = np.random.default_rng(51)
    n = 2_000_000
    lam = rng.gamma(CDNOW["r"], 1 / CDNOW["alpha"], n)
    mu = rng.gamma(CDNOW["s"], 1 / CDNOW["beta"], n)
    alive_term = lam**x * np.exp(-(lam + mu) * age)
    weight = alive_term + lam**x * mu / (lam + mu) * (np.exp(-(lam + mu) * t_x) - np.exp(-(lam + mu) * age))
    alive = rng.random(n) < alive_term / weight
    next_purchase, death = rng.exponential(1 / lam), rng.exponential(1 / mu)  # memoryless: from T on
    quiet = ~alive | (next_purchase > t) | (death < next_purchase)
    estimate = np.average(quiet, weights=weight)
    ess = weight.sum() ** 2 / (weight**2).sum()
    se = math.sqrt(estimate * (1 - estimate) / ess)
    got = with_params(CDNOW).p_no_purchase(summary([x], [t_x], [age]), t * WEEK)[0]
    assert got == pytest.approx(estimate, abs=4 * se)
