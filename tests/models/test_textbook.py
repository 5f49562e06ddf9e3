"""Textbook CLV baselines (models.textbook) on tiny hand-computed examples.

The formulas: basic CLV = average order value x purchases per year x expected active years; churn CLV
= revenue per year x margin x expected active years, where the expected active years within a horizon
of h years are (1 - exp(-lam h)) / lam with lam = -ln(1 - c) for a yearly churn c (-> 1 / lam as h
grows; the lifetime textbook values with 1 / c are in `base_summary`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from models.textbook import BasicCLV, ChurnCLV, RunRateCLV, base_summary, run_rate


def base(recency_days) -> pd.DataFrame:
    """Customers with two years of tenure, 4 orders of 50 (200 revenue) each, and the given recency."""
    n = len(recency_days)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "recency_days": np.asarray(recency_days, dtype=float),
            "tenure_days": np.full(n, 730.0),
            "n_orders": np.full(n, 4.0),
            "monetary_mean": np.full(n, 50.0),
            "monetary_total": np.full(n, 200.0),
        }
    )


# 10 customers with a year of tenure, 3 of them silent for more than a year: yearly churn 0.3.
TEN = base([400, 500, 366, 10, 20, 30, 40, 50, 60, 365])
CUSTOMER = pd.DataFrame(
    {
        "recency_days": [5.0],
        "tenure_days": [730.0],
        "n_orders": [4.0],
        "monetary_mean": [50.0],
        "monetary_total": [300.0],
    }
)


def test_yearly_churn_is_the_share_of_seasoned_customers_silent_for_a_year():
    assert BasicCLV().fit(TEN).churn_rate_ == pytest.approx(0.3)
    # Customers with less than a year of tenure do not count either way.
    young = pd.concat([TEN, base([300] * 5).assign(tenure_days=300.0)], ignore_index=True)
    assert BasicCLV().fit(young).churn_rate_ == pytest.approx(0.3)


def test_basic_clv_by_hand():
    model = BasicCLV().fit(TEN)
    # AOV 50 x (4 orders / 2 years) x active years in one year: (1 - 0.7) / -ln(0.7) = 0.8411.
    one_year = 50 * 2 * 0.3 / -math.log(0.7)
    assert model.predict_clv(CUSTOMER, 365)[0] == pytest.approx(one_year, rel=1e-12)
    assert one_year == pytest.approx(84.11, abs=0.01)
    # Two years: survival 0.7 per year, active (1 - 0.49) / -ln(0.7) years.
    assert model.predict_clv(CUSTOMER, 730)[0] == pytest.approx(50 * 2 * 0.51 / -math.log(0.7), rel=1e-12)
    # Lifetime: 1 / lam years, about half a year short of the textbook's 1 / c.
    lifetime = model.predict_clv(CUSTOMER, 365 * 1000)[0]
    assert lifetime == pytest.approx(50 * 2 / -math.log(0.7), rel=1e-12)
    assert 50 * 2 / 0.3 - lifetime == pytest.approx(50 * 2 * 0.53, abs=1)
    # Discounted to the middle of the horizon: one year at 10% is a factor 1.1^-0.5.
    assert model.predict_clv(CUSTOMER, 365, discount_rate=0.1)[0] == pytest.approx(one_year / math.sqrt(1.1))


def test_churn_clv_by_hand():
    model = ChurnCLV(margin=0.4).fit(TEN)
    # Revenue per year 300 / 2 = 150, x margin 0.4 = 60, x 0.8411 active years in one year.
    assert model.predict_clv(CUSTOMER, 365)[0] == pytest.approx(60 * 0.3 / -math.log(0.7), rel=1e-12)
    # margin 1 gives revenue, and over a lifetime revenue per year / lam.
    assert ChurnCLV().fit(TEN).predict_clv(CUSTOMER, 365 * 1000)[0] == pytest.approx(150 / -math.log(0.7))
    # Refunds above the revenue do not make a negative value.
    refunded = CUSTOMER.assign(monetary_total=-20.0)
    assert model.predict_clv(refunded, 365)[0] == 0


def test_zero_churn_is_floored_so_values_stay_finite():
    nobody_leaves = base([10] * 12)
    model = BasicCLV().fit(nobody_leaves)
    assert model.churn_rate_ == pytest.approx(0.02)
    lam = -math.log(0.98)
    assert model.predict_clv(CUSTOMER, 365)[0] == pytest.approx(100 * (1 - 0.98) / lam, rel=1e-12)
    assert np.isfinite(ChurnCLV().fit(nobody_leaves).predict_clv(CUSTOMER, 365 * 1000)).all()
    everybody_left = base([400] * 12)
    assert BasicCLV().fit(everybody_left).churn_rate_ == pytest.approx(0.98)


def test_one_customer():
    one = base([10]).assign(tenure_days=0.0, n_orders=1.0, monetary_total=50.0)
    model = BasicCLV().fit(one)
    assert model.churn_rate_ == 0.5  # too few seasoned customers: assume half leave each year
    # A first order today is one order per 30 days (not infinitely many per year).
    per_year = 1 / (30 / 365)
    assert model.predict_clv(one, 365)[0] == pytest.approx(50 * per_year * 0.5 / math.log(2), rel=1e-12)
    assert ChurnCLV().fit(one).predict_clv(one, 365)[0] == pytest.approx(50 * per_year * 0.5 / math.log(2))
    summary = base_summary(one, 365)
    assert summary["customers"] == 1 and summary["yearly_churn"] == 0.5


def test_base_summary_by_hand():
    summary = base_summary(TEN, 365)
    assert summary["customers"] == 10
    assert summary["average_order_value"] == pytest.approx(50)
    assert summary["orders_per_year"] == pytest.approx(2)
    assert summary["yearly_churn"] == pytest.approx(0.3)
    assert summary["lifespan_years"] == pytest.approx(1 / 0.3)
    assert summary["basic_clv_lifetime"] == pytest.approx(50 * 2 / 0.3)
    assert summary["horizon_years_active"] == pytest.approx(0.3 / -math.log(0.7))
    assert summary["basic_clv_horizon"] == pytest.approx(100 * 0.3 / -math.log(0.7))


def test_estimator_contract():
    assert BasicCLV().get_params() == {}
    assert ChurnCLV(margin=0.3).get_params() == {"margin": 0.3}
    assert clone(ChurnCLV(margin=0.3)).margin == 0.3
    for model in (BasicCLV(), ChurnCLV()):
        with pytest.raises(NotFittedError):
            model.predict_clv(CUSTOMER, 365)
        assert model.fit(TEN) is model
    with pytest.raises(ValueError, match="tenure_days"):
        BasicCLV().fit(TEN.drop(columns="tenure_days"))
    with pytest.raises(ValueError, match="monetary_total"):
        ChurnCLV().fit(TEN).predict_clv(CUSTOMER.drop(columns="monetary_total"), 365)


def test_run_rate_by_hand():
    """Revenue so far x H / days since the first purchase; 0 days counts as 1; refunds floor at 0."""
    X = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "monetary_total": [300.0, 50.0, -20.0, 0.0],
            "tenure_days": [730.0, 0.0, 100.0, 10.0],
        }
    )
    model = RunRateCLV().fit(X)
    expected = [300 * 365 / 730, 50 * 365 / 1, 0.0, 0.0]
    assert model.predict_clv(X, 365) == pytest.approx(expected, rel=1e-12)
    assert run_rate(X["monetary_total"], X["tenure_days"], 182) == pytest.approx(
        [300 * 182 / 730, 50 * 182, 0.0, 0.0], rel=1e-12
    )
    # Proportional to the horizon, discounted to its middle like the other baselines.
    assert model.predict_clv(X, 730)[0] == pytest.approx(2 * model.predict_clv(X, 365)[0])
    assert model.predict_clv(X, 365, discount_rate=0.1)[0] == pytest.approx(150 / math.sqrt(1.1))
    assert RunRateCLV().get_params() == {}
    with pytest.raises(NotFittedError):
        RunRateCLV().predict_clv(X, 365)
    with pytest.raises(ValueError, match="tenure_days"):
        RunRateCLV().fit(X.drop(columns="tenure_days"))
