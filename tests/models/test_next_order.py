"""Next order dates: the median time to the next order of a customer still active, or empty with a reason."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from demo.shop import write_demo_shop
from features.contract import load_shop
from features.pipeline import compute_features
from models.btyd_features import BTYDFeatures
from models.btyd_fit import Summary
from models.next_order import (
    DUE,
    days_to_next_order,
    next_order,
    next_order_date,
    pinned,
    quiet_while_customer,
)

AS_OF = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shop")
    write_demo_shop(folder, n_customers=800, seed=3)
    transactions = load_shop(folder / "transactions.parquet").tables()["transactions"]
    features = compute_features(transactions, AS_OF)
    return BTYDFeatures(features), features


def test_the_date_agrees_with_the_rows_churn_and_p_alive(fitted):
    """A date exactly when (1 - churn_prob) / p_alive, her chance of an order within the horizon if still
    a customer, is at least 1/2; the reason quotes those numbers; the likelier that order, the sooner."""
    btyd, features = fitted
    n = len(features)
    alive = np.full(n, 0.8)
    chance = np.random.default_rng(0).uniform(0, 1, n)
    out = next_order(btyd, features, alive, 1 - alive * chance, min_p_alive=0.3, max_days=365)
    shown = out["days_to_next_order"].notna()
    assert (shown == (chance >= DUE)).all()
    assert (out.loc[shown, "days_to_next_order"] <= 365).all()
    assert out["next_order_reason"].str.contains("p_alive 80%").all()
    quoted = out["next_order_reason"].str.extract(r"p_alive 80% ([=<>]) ([\d.]+)%")
    # A chance that rounds to 0% reads "< 1%", one that rounds to 100% "> 99%" (models.targeting.percent).
    under, over = (quoted[0] == "<").to_numpy(), (quoted[0] == ">").to_numpy()
    value = quoted[1].astype(float).to_numpy() / 100
    exact = ~under & ~over
    assert np.abs(value[exact] - chance[exact]).max() <= 0.005
    assert under.any() and (chance[under] < value[under]).all()
    assert over.any() and (chance[over] > value[over]).all()
    sooner = days_to_next_order(btyd, features, 365, np.full(n, 0.95))
    later = days_to_next_order(btyd, features, 365, np.full(n, 0.6))
    assert (sooner <= later).all() and (sooner < later).mean() > 0.9


def test_pinning_takes_whether_from_the_row_and_when_from_the_base():
    quiet = np.array([[0.9, 0.7, 0.4], [0.99, 0.98, 0.97], [0.9, 0.7, 0.4]])
    shifted = pinned(quiet, np.array([0.2, 0.5, 0.0]))
    assert shifted[:, -1].tolist() == [0.2, 0.5, 0.0]
    assert (np.diff(shifted, axis=1) <= 0).all()
    # The chance of an order by each day, scaled: the base's timing given an order within the horizon.
    assert (1 - shifted[0]) == pytest.approx((1 - quiet[0]) * 0.8 / 0.6)
    assert (1 - shifted[2]) == pytest.approx((1 - quiet[2]) / 0.6), "b = 1 keeps the base's timing, not day 1"


def test_the_date_is_the_median_while_a_customer(fitted):
    btyd, features = fitted
    days = days_to_next_order(btyd, features, 365)
    known = np.isfinite(days)
    assert known.mean() > 0.5 and (days[known] >= 1).all()
    rows = features[known].head(50)
    for (_, row), d in zip(rows.iterrows(), days[known][:50], strict=True):
        q = quiet_while_customer(btyd, Summary.of(row.to_frame().T.infer_objects()), float(d))
        assert abs(q[0] - 0.5) < 0.03


def test_gone_or_slow_customers_get_no_date_and_say_why(fitted):
    btyd, features = fitted
    alive = np.linspace(0.01, 0.99, len(features))
    churn = 1 - alive * np.linspace(0.99, 0.01, len(features))
    out = next_order(btyd, features, alive, churn, min_p_alive=0.3, max_days=365)
    gone = alive < 0.3
    assert out.loc[gone, "days_to_next_order"].isna().all()
    assert out.loc[gone, "next_order_reason"].str.contains("probably no longer a customer").all()
    shown = out["days_to_next_order"].notna()
    assert out.loc[shown, "next_order_reason"].str.startswith("median date of her next order").all()
    assert (
        out.loc[~gone & ~shown, "next_order_reason"].str.contains("unlikely to order within 365 days").all()
    )
    one_day = features["gap_mean_days"].isna()
    assert out.loc[one_day, "avg_days_between_orders"].isna().all()


def test_the_date_is_as_of_plus_whole_days():
    dates = next_order_date(pd.Series([AS_OF, AS_OF]), pd.Series([2.2, np.nan]))
    assert dates.tolist() == [dt.date(2025, 7, 3), None]


def test_a_chance_capped_at_its_bound_never_reads_as_certain(fitted):
    """Seen on the demo shop: churn_prob 25.80% and p_alive 74.20% (churn at its floor, 1 - p_alive) read
    "an order within 365 days ... = 100%", and p_alive 0.9962 read "p_alive 100%"."""
    btyd, features = fitted
    n = len(features)
    alive = np.where(np.arange(n) % 2 == 0, 0.742, 0.9962)
    out = next_order(btyd, features, alive, 1 - alive, min_p_alive=0.3, max_days=365)
    reasons = out["next_order_reason"]
    assert out["days_to_next_order"].notna().all()
    assert not reasons.str.contains("100%").any(), reasons[reasons.str.contains("100%")].iloc[0]
    # A bound reads as one: "(1 - churn_prob 26%) / p_alive 74% > 99%" (it read "= >99%").
    assert reasons.str.endswith("/ p_alive 74% > 99%")[::2].all() and reasons.str.endswith(" > 99%").all()
    assert not reasons.str.contains("= >").any()
    assert reasons[1::2].str.contains(r"p_alive >99%\)", regex=True).all()


def test_without_drop_out_the_date_follows_the_chance_of_an_order_alone(fitted):
    """Where the base found no drop-out, p_alive is empty (`models.predictor`); its only bound is 1 - churn_prob.
    Read as an estimate, the bound called every customer of such a log "probably no longer a customer" (7 of 41 of whom
    ordered within the 90 days), and a bound that made (1 - churn_prob) / p_alive = 1 would date every row.
    The date is then the median of her next order, shown when 1 - churn_prob is at least 1/2."""
    btyd, features = fitted
    n = len(features)
    churn = np.random.default_rng(1).uniform(0, 1, n)
    empty = np.full(n, np.nan)
    out = next_order(btyd, features, empty, churn, min_p_alive=0.3, max_days=365, alive_known=False)
    shown = out["days_to_next_order"].notna()
    assert (shown == (1 - churn >= DUE)).all()
    # The same date as for a customer certainly alive with that churn probability.
    alive = next_order(btyd, features, np.ones(n), churn, min_p_alive=0.3, max_days=365)
    assert np.allclose(out["days_to_next_order"], alive["days_to_next_order"], equal_nan=True)
    reasons = out["next_order_reason"]
    assert not reasons.str.contains("probably no longer a customer").any()
    assert reasons.str.endswith("whether she is still a customer is not known").all()
    assert reasons[shown].str.startswith("median date of her next order (an order within 365 days").all()
    assert reasons[~shown].str.startswith("left empty: unlikely to order within 365 days").all()
