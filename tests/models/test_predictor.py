"""The composite predictor on a small demo shop: output columns, invariants, estimator contracts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from features.contract import load_shop
from features.demo_shop import write_demo_shop
from features.engine import from_duckdb, to_pandas
from features.pipeline import compute_features
from features.snapshots import make_snapshots
from models.predictor import OUTPUT_COLUMNS, CLVPredictor

CUTOFF = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    write_demo_shop(out, n_customers=3000, seed=5)
    shop = load_shop(out / "transactions.parquet", out / "events.parquet", out / "customers.parquet")
    backend = from_duckdb(shop.con)
    tx, ev, cu = (backend.table(t) for t in ("transactions", "events", "customers"))
    cutoffs = [dt.date(2024, 3, 31), dt.date(2024, 6, 29)]
    snapshots = to_pandas(make_snapshots(tx, cutoffs, 180, ev, cu))
    return snapshots, compute_features(tx, CUTOFF, ev, cu)


@pytest.fixture(scope="module")
def fitted(data):
    snapshots, reference = data
    return CLVPredictor(horizon_days=365, label_days=180, margin=0.3, n_estimators=80, seed=1).fit(
        snapshots, reference
    )


def test_output_columns_and_invariants(fitted, data):
    _, reference = data
    out = fitted.predict(reference)
    assert list(out.columns) == [*OUTPUT_COLUMNS, "predicted_profit"]
    assert len(out) == len(reference) and out["customer_id"].tolist() == reference["customer_id"].tolist()
    assert (out["predicted_clv"] >= 0).all()
    assert (out["predicted_clv_low"] <= out["predicted_clv"]).all()
    assert (out["predicted_clv"] <= out["predicted_clv_high"]).all()
    for column in ("churn_prob", "p_alive"):
        assert out[column].between(0, 1).all()
    assert out["value_decile"].between(1, 10).all()
    assert out["predicted_profit"].to_numpy() == pytest.approx(0.3 * out["predicted_clv"].to_numpy())
    assert out["reason"].str.len().gt(0).all()


def test_one_order_customers_get_real_distinct_predictions(fitted, data):
    _, reference = data
    out = fitted.predict(reference)
    one = (reference["n_orders"] == 1).to_numpy()
    assert one.sum() > 100
    values = out.loc[one, "predicted_clv"]
    assert (values > 0).mean() > 0.95
    assert values.nunique() > 0.9 * len(values)


def test_horizon_stretch_raises_value_with_the_horizon(data):
    snapshots, reference = data
    short = CLVPredictor(horizon_days=180, label_days=180, n_estimators=80, seed=1).fit(snapshots, reference)
    long = CLVPredictor(horizon_days=365, label_days=180, n_estimators=80, seed=1).fit(snapshots, reference)
    a, b = short.predict(reference), long.predict(reference)
    assert b["predicted_clv"].sum() > a["predicted_clv"].sum()
    assert (b["churn_prob"] <= a["churn_prob"] + 1e-9).mean() > 0.99  # longer windows: fewer no-purchase


def test_estimator_contracts(data):
    snapshots, reference = data
    model = CLVPredictor(horizon_days=200, n_estimators=10)
    assert clone(model).get_params()["horizon_days"] == 200
    with pytest.raises(NotFittedError):
        model.predict(reference)
    with pytest.raises(ValueError, match="lack columns"):
        model.fit(snapshots.drop(columns=["label_revenue"]))
    with pytest.raises(ValueError, match="cannot exceed"):
        CLVPredictor(horizon_days=90, label_days=180).fit(snapshots)


def test_empty_and_malformed_inputs(fitted, data):
    _, reference = data
    with pytest.raises(ValueError, match="no customers"):
        fitted.predict(reference.iloc[:0])
    with pytest.raises(ValueError, match="lacks columns"):
        fitted.predict(reference.drop(columns=["recency_days"]))
    noisy = reference.copy()
    noisy.loc[noisy.index[:5], "monetary_mean"] = np.nan
    assert np.isfinite(fitted.predict(noisy)["predicted_clv"]).all()
    assert isinstance(fitted.feature_importance(), pd.Series)
