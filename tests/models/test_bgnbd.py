"""BG/NBD (models.bgnbd): parameter recovery, published CDNOW values, and closed forms checked against
independent computations (plain-math formulas, numerical integration over the individual-level model,
an event-by-event Monte Carlo simulation)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import dblquad, quad
from scipy.special import betaincinv, betaln

from models.bgnbd import BetaGeoModel, simulate

# Fader, Hardie and Lee (2005), CDNOW sample, weekly time unit.
CDNOW = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
WEEK = 7.0


def summary(x, t_x_weeks, age_weeks) -> pd.DataFrame:
    """A btyd_* summary in days from values in weeks."""
    return pd.DataFrame(
        {
            "btyd_frequency": np.asarray(x, dtype=float),
            "btyd_recency": np.asarray(t_x_weeks, dtype=float) * WEEK,
            "btyd_age": np.asarray(age_weeks, dtype=float) * WEEK,
        }
    )


def with_params(params: dict[str, float], time_scale: float = WEEK) -> BetaGeoModel:
    model = BetaGeoModel(time_scale=time_scale)
    model.params_ = dict(params)
    return model


# ----------------------------------------------------------------------------------------- fitting
def test_recovers_parameters_from_simulated_data():
    rng = np.random.default_rng(11)
    age_days = rng.uniform(52, 104, 20_000) * WEEK
    X = simulate(CDNOW, age_days, seed=12)
    model = BetaGeoModel().fit(X)

    fitted = model.params_
    for name, tolerance in {"r": 0.10, "alpha": 0.10, "a": 0.20, "b": 0.20}.items():
        assert fitted[name] == pytest.approx(CDNOW[name], rel=tolerance), name
    # The optimiser found the maximum: at least as likely as the parameters that generated the data.
    at_truth = with_params(CDNOW).log_likelihood(X).sum()
    assert model.log_likelihood_ >= at_truth - 1e-6
    assert model.log_likelihood_ == pytest.approx(model.log_likelihood(X).sum(), rel=1e-12)
    assert model.n_customers_ == len(X)


def test_predictions_do_not_depend_on_the_time_unit():
    rng = np.random.default_rng(5)
    X = simulate(CDNOW, rng.uniform(52, 104, 5_000) * WEEK, seed=6)
    weekly = BetaGeoModel(time_scale=7).fit(X)
    daily = BetaGeoModel(time_scale=1).fit(X)
    assert daily.params_["alpha"] == pytest.approx(7 * weekly.params_["alpha"], rel=0.01)
    np.testing.assert_allclose(daily.p_alive(X), weekly.p_alive(X), atol=2e-3)
    np.testing.assert_allclose(daily.expected_purchases(X, 365), weekly.expected_purchases(X, 365), rtol=1e-2)


# ------------------------------------------------------------------------- closed forms, by hand
def test_cdnow_expected_purchases_match_the_published_value():
    # FHL (2005), section 5: a customer with x = 2, t_x = 30.43, T = 38.86 weeks is expected to make
    # 1.226 purchases in the next 39 weeks.
    model = with_params(CDNOW)
    assert model.expected_purchases(summary([2], [30.43], [38.86]), 39 * WEEK)[0] == pytest.approx(
        1.226, abs=5e-4
    )


def test_p_alive_matches_the_hand_formula():
    # P(alive) = 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x)) for x > 0, 1 for x = 0.
    r, alpha, a, b = CDNOW.values()
    rows = [(2, 30.43, 38.86), (1, 2.0, 38.86), (7, 37.0, 38.86), (0, 0.0, 38.86)]
    expected = [
        1 / (1 + a / (b + x - 1) * ((alpha + age) / (alpha + t_x)) ** (r + x)) if x > 0 else 1.0
        for x, t_x, age in rows
    ]
    got = with_params(CDNOW).p_alive(summary(*zip(*rows, strict=True)))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[0] == pytest.approx(0.7266, abs=1e-4)


def _naive_log_likelihood(r, alpha, a, b, x, t_x, age) -> float:
    """FHL (2005) eq. 6 written out with math.lgamma, term by term."""

    def beta_fn(p, q):
        return math.exp(math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q))

    rate_part = math.exp(math.lgamma(r + x) - math.lgamma(r)) * alpha**r
    alive = beta_fn(a, b + x) / beta_fn(a, b) * rate_part / (alpha + age) ** (r + x)
    dropped = (
        beta_fn(a + 1, b + x - 1) / beta_fn(a, b) * rate_part / (alpha + t_x) ** (r + x) if x > 0 else 0.0
    )
    return math.log(alive + dropped)


def test_log_likelihood_matches_a_naive_formula():
    rows = [(0, 0.0, 38.86), (1, 5.57, 30.0), (2, 30.43, 38.86), (5, 20.0, 52.0), (12, 51.0, 52.0)]
    expected = [_naive_log_likelihood(*CDNOW.values(), *row) for row in rows]
    got = with_params(CDNOW).log_likelihood(summary(*zip(*rows, strict=True)))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got.sum() == pytest.approx(sum(expected), rel=1e-12)


def _posterior_expectations(params, x, t_x, age, t) -> dict[str, float]:
    """P(alive), E[purchases in t], P(no purchase in t) for one customer by 2-D numerical integration of
    the individual-level model over the priors lambda ~ Gamma(r, alpha), p ~ Beta(a, b): no 2F1 involved.

    Given lambda and p: L = (1-p)^x lambda^x e^(-lambda T) [alive] + p (1-p)^(x-1) lambda^x e^(-lambda t_x)
    [dropped after the x-th purchase]; an alive customer buys (1 - e^(-lambda p t)) / p times in t in
    expectation and nothing in t with probability e^(-lambda t).
    """
    r, alpha, a, b = params

    def integrate(f):
        # lambda = e^u, p = logistic(v): smooth integrands on the whole line
        def integrand(v, u):
            lam, p = math.exp(u), 1 / (1 + math.exp(-v))
            log_prior = r * math.log(alpha) - math.lgamma(r) + r * u - alpha * lam
            log_prior += a * math.log(p) + b * math.log1p(-p) - betaln(a, b)
            return f(lam, p) * math.exp(log_prior)

        return dblquad(integrand, -70, 5, -60, 30, epsabs=0, epsrel=1e-10)[0]

    def alive(lam, p):
        return (1 - p) ** x * lam**x * math.exp(-lam * age)

    def likelihood(lam, p):
        dropped = p * (1 - p) ** (x - 1) * lam**x * math.exp(-lam * t_x) if x > 0 else 0.0
        return alive(lam, p) + dropped

    total = integrate(likelihood)
    return {
        "p_alive": integrate(alive) / total,
        "expected": integrate(lambda lam, p: alive(lam, p) * -math.expm1(-lam * p * t) / p) / total,
        "no_purchase": 1 - integrate(lambda lam, p: alive(lam, p) * -math.expm1(-lam * t)) / total,
    }


def test_closed_forms_match_numerical_integration_of_the_individual_model():
    x, t_x, age, t = 2, 30.43, 38.86, 39.0
    reference = _posterior_expectations(tuple(CDNOW.values()), x, t_x, age, t)
    model, X = with_params(CDNOW), summary([x], [t_x], [age])
    assert model.p_alive(X)[0] == pytest.approx(reference["p_alive"], rel=1e-7)
    assert model.expected_purchases(X, t * WEEK)[0] == pytest.approx(reference["expected"], rel=1e-7)
    assert model.p_no_purchase(X, t * WEEK)[0] == pytest.approx(reference["no_purchase"], rel=1e-7)


def _expected_if_alive(params, x, z) -> float:
    """E[purchases in t | alive] = E over p ~ Beta(a, b+x) of (1 - (1 + p z)^-(r+x)) / p, z = t / (alpha+T):
    the rate's posterior Gamma(r+x, alpha+T) integrated out by its Laplace transform, p by adaptive
    quadrature in y = -log p, with break points at quantiles of p (so a concentrated Beta is found)."""
    r, _, a, b = params
    shape = b + x

    def integrand(y):  # p = e^-y, dp = p dy
        p = math.exp(-y)
        log_density = -(a - 1) * y + (shape - 1) * math.log(-math.expm1(-y)) - betaln(a, shape)
        return -math.expm1(-(r + x) * math.log1p(p * z)) * math.exp(log_density)

    levels = (1e-15, 1e-9, 1e-6, 1e-3, 0.1, 0.5, 0.9, 0.999, 1 - 1e-6, 1 - 1e-12)
    quantiles = [float(betaincinv(a, shape, q)) for q in levels]
    edges = sorted({-math.log(q) for q in quantiles if 0 < q < 1} | {max(math.log(z), 0.0), 0.0})
    return sum(
        quad(integrand, lo, hi, limit=200, epsabs=0, epsrel=1e-12)[0]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    )


@pytest.mark.parametrize("x", [100, 300, 500])
@pytest.mark.parametrize("horizon_weeks", [52, 520, 5200])
def test_frequent_buyers_long_horizons_match_quadrature(x, horizon_weeks):
    # Regression: eq. 10 through 2F1(r+x, a-1; a+b+x-1; -z) returned inf/nan here (silently zeroed).
    r, alpha, a, b = CDNOW.values()
    t_x, age = 80.0, 104.0
    model, X = with_params(CDNOW), summary([x], [t_x], [age])
    alive = 1 / (1 + a / (b + x - 1) * ((alpha + age) / (alpha + t_x)) ** (r + x))
    expected = alive * _expected_if_alive(tuple(CDNOW.values()), x, horizon_weeks / (alpha + age))
    assert model.expected_purchases(X, horizon_weeks * WEEK)[0] == pytest.approx(expected, rel=1e-8)


# A fit on a cut-off with 4 to 14 weeks of history (the backtest's first window): the drop-out
# probability is pinned near a / (a + b) = 0.11, so a and b are in the hundreds and thousands.
SHORT = {"r": 0.5642, "alpha": 5.532, "a": 611.75, "b": 4802.7}


@pytest.mark.parametrize("x", [0, 1, 3, 7, 20, 600])
@pytest.mark.parametrize("age", [4.0, 13.57, 52.0])
def test_large_a_and_b_match_quadrature(x, age):
    # Regression: Euler's form 2F1(a+b-1-r, a-1; a+b+x-1; u) is nan for these (a > r + x + 1). x = 600 in
    # 4 weeks falls through both closed forms to the numerical integral.
    r, alpha, a, b = SHORT.values()
    horizon, t_x = 365 / 7, age * 0.8 if x else 0.0
    alive = 1 / (1 + a / (b + x - 1) * ((alpha + age) / (alpha + t_x)) ** (r + x)) if x else 1.0
    expected = alive * _expected_if_alive(tuple(SHORT.values()), x, horizon / (alpha + age))
    got = with_params(SHORT).expected_purchases(summary([x], [t_x], [age]), horizon * WEEK)[0]
    assert got == pytest.approx(expected, rel=1e-8)


def test_no_nan_for_any_plausible_parameters():
    r_values, a_values, b_values = (0.05, 0.5, 5.0), (0.05, 0.5, 1.0, 3.0, 600.0, 1e5), (0.1, 2.0, 5e3, 1e5)
    X = summary([0, 1, 3, 30, 300], [0, 1.0, 10.0, 50.0, 100.0], [1.0, 10.0, 52.0, 104.0, 104.0])
    for r in r_values:
        for a in a_values:
            for b in b_values:
                model = with_params({"r": r, "alpha": 5.0, "a": a, "b": b})
                curve = np.array([model.expected_purchases(X, t) for t in (1, 30, 365, 3650, 36500)])
                assert np.isfinite(curve).all() and (curve >= 0).all(), (r, a, b)
                assert (np.diff(curve, axis=0) >= -1e-9 * curve[1:]).all(), (r, a, b)


# ------------------------------------------------------------------------------------ Monte Carlo
def _simulate_events(params, age, horizon, seed):
    """Event-by-event BG/NBD customers: (x, t_x, purchases in (T, T + horizon]), times in weeks."""
    rng = np.random.default_rng(seed)
    n = age.size
    rate = rng.gamma(params["r"], 1 / params["alpha"], n)
    drop = rng.beta(params["a"], params["b"], n)
    now = np.zeros(n)
    x, t_x, future = np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.arange(n)
    while active.size:
        now[active] += rng.exponential(1 / rate[active])
        before, during = (
            now[active] <= age[active],
            (now[active] > age[active]) & (now[active] <= age[active] + horizon),
        )
        x[active[before]] += 1
        t_x[active[before]] = now[active[before]]
        future[active[during]] += 1
        survives = rng.random(active.size) >= drop[active]  # drop-out after each purchase
        active = active[(before | during) & survives]
    return x, t_x, future


def test_predictions_are_calibrated_on_a_monte_carlo_simulation():
    rng = np.random.default_rng(21)
    n, horizon = 100_000, 52.0
    age = rng.uniform(30, 104, n)
    x, t_x, future = _simulate_events(CDNOW, age, horizon, seed=22)
    model, X = with_params(CDNOW), summary(x, t_x, age)

    expected = model.expected_purchases(X, horizon * WEEK)
    assert expected.mean() == pytest.approx(future.mean(), rel=0.03)
    quiet = model.p_no_purchase(X, horizon * WEEK)
    assert quiet.mean() == pytest.approx((future == 0).mean(), abs=0.005)
    # Calibrated across the range, not just on average: deciles of the predicted probability.
    deciles = np.digitize(quiet, np.quantile(quiet, np.linspace(0.1, 0.9, 9)))
    for d in np.unique(deciles):
        members = deciles == d
        assert quiet[members].mean() == pytest.approx((future[members] == 0).mean(), abs=0.02), d
    # And by repeat frequency, the BG/NBD's main input.
    for lo, hi in [(0, 0), (1, 1), (2, 3), (4, 10), (11, np.inf)]:
        members = (x >= lo) & (x <= hi)
        assert expected[members].mean() == pytest.approx(future[members].mean(), rel=0.08), (lo, hi)


def test_simulate_follows_the_generative_story():
    # simulate (order statistics) and the event-by-event simulation agree in distribution.
    rng = np.random.default_rng(3)
    age = rng.uniform(52, 104, 50_000)
    fast = simulate(CDNOW, age * WEEK, seed=4)
    x, t_x, _ = _simulate_events(CDNOW, age, 0.0, seed=5)
    assert fast["btyd_frequency"].mean() == pytest.approx(x.mean(), rel=0.05)
    assert (fast["btyd_frequency"] == 0).mean() == pytest.approx((x == 0).mean(), abs=0.01)
    assert (fast["btyd_recency"] / WEEK).mean() == pytest.approx(t_x.mean(), rel=0.05)
    assert (fast["btyd_recency"] <= fast["btyd_age"]).all()


def test_unconditional_expectation_matches_the_paper():
    # A customer with no repeat purchase and T -> 0 is a new customer: E[X(t)] of FHL eq. 9,
    # (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))], here from its series.
    r, alpha, a, b = CDNOW.values()
    t = 52.0
    z = t / (alpha + t)
    term, series = 1.0, 1.0
    for k in range(5_000):
        term *= (r + k) * (b + k) / ((a + b - 1 + k) * (k + 1)) * z
        series += term
    new_customer = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * series)
    got = with_params(CDNOW).expected_purchases(summary([0], [0], [0]), t * WEEK)[0]
    assert got == pytest.approx(new_customer, rel=1e-6)
