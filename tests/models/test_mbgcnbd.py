"""MBG/CNBD-k (models.mbgcnbd): k = 1 is MBG/NBD, k and the parameters are recovered from simulated
customers, and the predictions match what simulated customers then did (the generative story is
simulated event by event, independently of the likelihood)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.mbgcnbd import ErlangBetaGeoModel, fit_regularity, simulate
from models.mbgnbd import ModifiedBetaGeoModel

PARAMS = {"r": 2.0, "alpha": 6.0, "a": 1.0, "b": 6.0}
HALF_YEAR = 182


def customers(k: int, n: int = 5_000, seed: int = 1) -> pd.DataFrame:
    ages = np.random.default_rng(seed).uniform(180, 720, n)
    return simulate(PARAMS, ages, k=k, horizon_days=HALF_YEAR, seed=seed + 1)


def test_k_1_is_mbg_nbd():
    X = customers(k=1, n=3_000)
    erlang, mbg = ErlangBetaGeoModel(k=1).fit(X), ModifiedBetaGeoModel().fit(X)
    assert erlang.params_ == pytest.approx(mbg.params_, rel=1e-4)
    mbg.params_ = dict(erlang.params_)  # the same parameters give the same numbers
    np.testing.assert_allclose(erlang.log_likelihood(X), mbg.log_likelihood(X), rtol=1e-10)
    np.testing.assert_allclose(erlang.p_alive(X), mbg.p_alive(X), rtol=1e-10)
    for days in (30, 365):
        np.testing.assert_allclose(
            erlang.expected_purchases(X, days), mbg.expected_purchases(X, days), rtol=1e-10
        )
        np.testing.assert_allclose(erlang.p_no_purchase(X, days), mbg.p_no_purchase(X, days), rtol=1e-10)


@pytest.mark.parametrize("k", [1, 3])
def test_finds_the_regularity_and_the_parameters(k):
    X = customers(k)
    model = fit_regularity(X)
    assert model.k == k
    for name, tolerance in {"r": 0.15, "alpha": 0.15, "a": 0.25, "b": 0.25}.items():
        assert model.params_[name] == pytest.approx(PARAMS[name], rel=tolerance), name
    # The likelihood of each k tried is recorded, and the chosen one is the highest.
    assert max(model.log_likelihoods_, key=model.log_likelihoods_.get) == k


def test_a_small_gain_in_likelihood_does_not_buy_a_larger_k():
    # Poisson buyers: any k > 1 would have to beat k = 1 by more than ln(n) / 2.
    model = fit_regularity(customers(k=1, n=400, seed=5))
    assert model.k == 1


def test_predictions_match_what_simulated_customers_did():
    X = customers(k=3)
    model = fit_regularity(X)
    quiet = model.p_no_purchase(X, HALF_YEAR)
    none = (X["future_purchases"] == 0).to_numpy()
    assert quiet.mean() == pytest.approx(none.mean(), abs=0.02)
    # Calibrated within each fifth of the predictions, not only on average.
    fifth = np.digitize(quiet, np.quantile(quiet, [0.2, 0.4, 0.6, 0.8]))
    for group in range(5):
        assert quiet[fifth == group].mean() == pytest.approx(none[fifth == group].mean(), abs=0.04)
    expected = model.expected_purchases(X, HALF_YEAR)
    assert expected.sum() == pytest.approx(X["future_purchases"].sum(), rel=0.08)


def test_a_silence_longer_than_the_rhythm_means_gone_only_for_regular_buyers():
    # Eleven purchases a fortnight apart, then silent for a fortnight (on time) or for two months.
    X = pd.DataFrame(
        {
            "btyd_frequency": [10.0, 10.0],
            "btyd_recency": [140.0, 140.0],
            "btyd_age": [140.0 + 14, 140.0 + 60],
        }
    )
    poisson, regular = ErlangBetaGeoModel(k=1), ErlangBetaGeoModel(k=4)
    poisson.params_ = regular.params_ = dict(PARAMS)
    drop_poisson = poisson.p_alive(X)[0] - poisson.p_alive(X)[1]
    drop_regular = regular.p_alive(X)[0] - regular.p_alive(X)[1]
    assert regular.p_alive(X)[0] > regular.p_alive(X)[1]
    assert drop_regular > drop_poisson


def test_regularity_needs_the_log_gaps():
    X = customers(k=1, n=500).drop(columns="gap_log_mean")
    with pytest.raises(ValueError, match="gap_log_mean"):
        fit_regularity(X)
