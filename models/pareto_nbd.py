"""Pareto/NBD: the original buy-till-you-die model of repeat purchasing.

Schmittlein, Morrison and Colombo (1987), "Counting your customers: who are they and what will they
do next?", Management Science 33(1); expressions as derived in Fader and Hardie (2005), "A note on
deriving the Pareto/NBD model and related expressions". While alive, a customer buys as a Poisson
process with rate lambda ~ Gamma(r, alpha); independently, her lifetime is exponential with rate
mu ~ Gamma(s, beta), so, unlike BG/NBD, she can die at any time, also before her first repeat purchase.

Same inputs, units and interface as `models.bgnbd.BetaGeoModel`: `btyd_frequency` x,
`btyd_recency` t_x, `btyd_age` T in days, measured internally in `time_scale` days; `params_`
holds r, alpha, s, beta with alpha and beta in that unit (both are time scales: larger alpha means
slower buyers, larger beta longer lives).

Everything rests on one integral, the probability density of dying at u with no purchase after t_x,
integrated over the future:

    I(y) = int_y^inf (alpha + u)^-(r+x) (beta + u)^-(s+1) du
         = (alpha + y)^-(r+s+x) 2F1(r+s+x, s+1; r+s+x+1; (alpha-beta)/(alpha+y)) / (r+s+x)   (alpha >= beta)
         = (beta + y)^-(r+s+x) 2F1(r+s+x, r+x; r+s+x+1; (beta-alpha)/(beta+y)) / (r+s+x)    (alpha < beta)

(the two cases of the note's A_0 keep the argument in [0, 1)). With C = Gamma(r+x) alpha^r beta^s / Gamma(r):
- likelihood L(x, t_x, T) = C [(alpha+T)^-(r+x) (beta+T)^-s + s (I(t_x) - I(T))];
- P(alive | x, t_x, T) = C (alpha+T)^-(r+x) (beta+T)^-s / L;
- P(no purchase in (T, T+t] | x, t_x, T) = L(x, t_x, T+t) / L(x, t_x, T): a customer who does not buy
  in (T, T+t] would show the same x and t_x at age T+t, so this is exact and needs no new integral.
All are computed in log space: 2F1 through Euler's transformation as (1-z)^(c-a-b) 2F1(1, .; .; z),
whose value lies in [1, 1/(1-z)], and the difference I(t_x) - I(T) as a log-difference of exponentials.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, gammaln, hyp2f1

from models.btyd_fit import SummaryModel

PARAMS = ("r", "alpha", "s", "beta")
_TINY = 1e-300


class ParetoNBDModel(SummaryModel):
    """Pareto/NBD with maximum likelihood fitting (weighted over identical customer histories).

    Parameters (`params_`): r, alpha (gamma shape and scale of the purchase rate lambda), s, beta
    (gamma shape and scale of the death rate mu); alpha and beta in `time_scale` units.
    """

    PARAMS = PARAMS
    STARTS = ((0.5, 10.0, 0.5, 10.0), (1.0, 2.0, 1.0, 50.0))

    def __init__(self, time_scale: float = 7.0, penalizer: float = 0.0):
        self.time_scale = time_scale
        self.penalizer = penalizer

    @staticmethod
    def _log_likelihood(params, x, t_x, age):
        return _log_likelihood(params, x, t_x, age)

    def p_alive(self, X: pd.DataFrame) -> np.ndarray:
        """P(still alive at the cut-off | history); below 1 also for customers with no repeat purchase."""
        params, x, t_x, age = self._summary(X)
        alive, dead = _log_branches(params, x, t_x, age)
        return expit(alive - dead)

    def expected_purchases(self, X: pd.DataFrame, t_days: float) -> np.ndarray:
        """E[number of purchases in (cut-off, cut-off + t_days] | history].

        (r+x)/(alpha+T) x (beta+T)/(s-1) [1 - ((beta+T)/(beta+T+t))^(s-1)] x P(alive) (Schmittlein et
        al. 1987, eq. 22): the posterior mean rate of an alive customer times her expected remaining
        lifetime within t, E[(1 - exp(-mu t)) / mu], which is finite also for s <= 1.
        """
        params, x, t_x, age = self._summary(X)
        t = float(t_days) / self.time_scale
        if t <= 0:
            return np.zeros_like(x)
        r, alpha, s, beta = params
        log_growth = np.log1p(t / (beta + age))
        k = (s - 1) * log_growth
        with np.errstate(invalid="ignore", divide="ignore"):
            # (1 - exp(-k)) / k, with its limit 1 at k = 0 (s = 1: the lifetime term is a logarithm).
            shrink = np.where(np.abs(k) < 1e-8, 1 - k / 2, -np.expm1(-k) / k)
        lifetime = (beta + age) * log_growth * shrink
        alive, dead = _log_branches(params, x, t_x, age)
        return (r + x) / (alpha + age) * lifetime * expit(alive - dead)

    def p_no_purchase(self, X: pd.DataFrame, t_days: float) -> np.ndarray:
        """P(no purchase in (cut-off, cut-off + t_days] | history) = L(x, t_x, T + t) / L(x, t_x, T).

        Equivalently P(dead) + P(alive) x [P(no purchase before dying or the end of the window)],
        with an alive customer's posterior lambda ~ Gamma(r+x, alpha+T), mu ~ Gamma(s, beta+T).
        """
        params, x, t_x, age = self._summary(X)
        t = max(float(t_days) / self.time_scale, 0.0)
        later = _log_likelihood(params, x, t_x, age + t)
        now = _log_likelihood(params, x, t_x, age)
        return np.clip(np.exp(later - now), 0, 1)


def _log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    alive, dead = _log_branches(params, x, t_x, age)
    return np.logaddexp(alive, dead)


def _log_branches(params, x, t_x, age) -> tuple[np.ndarray, np.ndarray]:
    """log of the likelihood's two terms: alive at T, and died in (t_x, T] (-inf when t_x = T)."""
    r, alpha, s, beta = params
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = common - (r + x) * np.log(alpha + age) - s * np.log(beta + age)
    at_last = _log_tail(params, x, t_x)
    at_end = _log_tail(params, x, age)
    gap = np.minimum(at_end - at_last, 0.0)  # I is decreasing; rounding must not make log(1 - e^gap) nan
    with np.errstate(divide="ignore"):
        dead = common + np.log(s) + at_last + _log1mexp(gap)
    return alive, dead


def _log_tail(params, x, y) -> np.ndarray:
    """log I(y) = log int_y^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du, vectorised over x and y.

    Euler's transformation 2F1(a, b; c; z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z) turns the module
    docstring's hypergeometric terms into 2F1(1, .; r+s+x+1; z) times powers of (alpha+y), (beta+y).
    """
    r, alpha, s, beta = params
    rho = r + s + x
    if alpha >= beta:
        z = (alpha - beta) / (alpha + y)
        log_f = _log_hyp2f1_one(r + x, rho + 1, z)
        return log_f - (r + x) * np.log(alpha + y) - s * np.log(beta + y) - np.log(rho)
    z = (beta - alpha) / (beta + y)
    log_f = _log_hyp2f1_one(s + 1, rho + 1, z)
    return log_f - (r + x - 1) * np.log(alpha + y) - (s + 1) * np.log(beta + y) - np.log(rho)


def _log_hyp2f1_one(b, c, z) -> np.ndarray:
    """log 2F1(1, b; c; z) for c > b > 0 and 0 <= z < 1, where the value lies in [1, 1/(1-z)].

    scipy's hyp2f1 is fast and accurate here except for large b with z near 1 (it returns nan);
    entries outside the bounds fall back to Gauss's continued fraction, which converges for z < 1.
    """
    b, c, z = np.broadcast_arrays(np.asarray(b, float), np.asarray(c, float), np.asarray(z, float))
    with np.errstate(all="ignore"):
        value = hyp2f1(1.0, b, c, z)
        bad = ~((value >= 1 - 1e-12) & (value * (1 - z) <= 1 + 1e-12))
    if bad.any():
        value = value.copy()
        value[bad] = _hyp2f1_one_fraction(b[bad], c[bad], z[bad])
    return np.log(value)


def _hyp2f1_one_fraction(b, c, z, max_terms: int = 1_000, tol: float = 1e-13) -> np.ndarray:
    """2F1(1, b; c; z) by the continued fraction of the incomplete beta function (modified Lentz).

    With p = c - 1 and q = b - c + 1, 2F1(p + q, 1; p + 1; z) is the fraction of Numerical Recipes'
    `betacf(p, q, z)`; it needs no q > 0, only z < 1. Vectorised; a few hundred terms for z near 1.
    `tol` is a hundred ulps (at 1e-15 rounding kept some entries from ever meeting it). Fits of real logs
    need far fewer than `max_terms`; only parameters at the edge of the search box (z within 1e-7 of 1,
    where the optimiser of a tiny shop wanders) need more, and there an approximate likelihood is enough
    to move away: 20,000 terms made a 60-customer shop train for minutes.
    """
    p, q = c - 1, b - c + 1
    front = 1 - (p + q) * z / (p + 1)
    d = 1 / np.where(np.abs(front) < _TINY, _TINY, front)
    lentz_c = np.ones_like(z)
    value = d.copy()
    for m in range(1, max_terms):
        for numerator in (
            m * (q - m) * z / ((p + 2 * m - 1) * (p + 2 * m)),
            -(p + m) * (p + q + m) * z / ((p + 2 * m) * (p + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / np.where(np.abs(d) < _TINY, _TINY, d)
            lentz_c = 1 + numerator / lentz_c
            lentz_c = np.where(np.abs(lentz_c) < _TINY, _TINY, lentz_c)
            step = d * lentz_c
            value = value * step
        if np.all(np.abs(step - 1) < tol):
            break
    return value


def _log1mexp(gap: np.ndarray) -> np.ndarray:
    """log(1 - exp(gap)) for gap <= 0, accurate at both ends (Maechler 2012); -inf at gap = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap > -np.log(2), np.log(-np.expm1(gap)), np.log1p(-np.exp(gap)))


def simulate(
    params: dict[str, float], age_days: np.ndarray, time_scale: float = 7.0, seed: int = 0
) -> pd.DataFrame:
    """Draw Pareto/NBD customers: the btyd_* summary (days) of one customer per entry of `age_days`.

    Follows the generative story, not the likelihood: lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta),
    lifetime tau ~ Exponential(mu); N ~ Poisson(lambda min(tau, T)) purchases, whose times are uniform
    on (0, min(tau, T)], so t_x / min(tau, T) ~ Beta(N, 1). For tests and benchmarks.
    """
    rng = np.random.default_rng(seed)
    age = np.asarray(age_days, dtype=float) / time_scale
    n = age.size
    rate = rng.gamma(params["r"], 1 / params["alpha"], n)
    death = rng.gamma(params["s"], 1 / params["beta"], n)
    observed = np.minimum(rng.exponential(1 / death), age)
    x = rng.poisson(rate * observed)
    t_x = np.where(x > 0, observed * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    return pd.DataFrame(
        {"btyd_frequency": x.astype(float), "btyd_recency": t_x * time_scale, "btyd_age": age * time_scale}
    )
