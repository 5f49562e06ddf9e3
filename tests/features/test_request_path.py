"""The request path (pandas in, pandas out) gives exactly what the batch path gives."""

from __future__ import annotations

import datetime as dt
import threading

import ibis
import numpy as np
import pandas as pd
import pytest

from features.contract import load_shop
from features.pipeline import FEATURE_COLUMNS, compute_features
from features.request import compute_features_for_request

AS_OF = dt.date(2024, 3, 31)


def shop(seed: int = 11, n_customers: int = 6, n_rows: int = 160):
    """A small random shop with every optional column, refunds, events and customer attributes."""
    rng = np.random.default_rng(seed)
    customers = [f"c{i}" for i in range(n_customers)]
    order = rng.integers(0, n_rows // 2, n_rows)
    start = pd.Timestamp("2023-01-01")
    order_time = start + pd.to_timedelta(rng.integers(0, 480 * 86400, n_rows // 2), unit="s")
    tx = pd.DataFrame(
        {
            "customer_id": [customers[i % n_customers] for i in order],
            "timestamp": order_time[order] + pd.to_timedelta(rng.integers(0, 3 * 86400, n_rows), unit="s"),
            "amount": np.where(rng.random(n_rows) < 0.1, -1, 1) * np.round(rng.lognormal(3, 0.7, n_rows), 2),
            "order_id": [f"o{i}" for i in order],
            "quantity": rng.integers(1, 4, n_rows).astype(float),
            "product_id": [f"p{i}" for i in rng.integers(0, 12, n_rows)],
            "category": [f"k{i}" for i in rng.integers(0, 4, n_rows)],
            "channel": rng.choice(["web", "app"], n_rows),
        }
    )
    n_events = 300
    events = pd.DataFrame(
        {
            "customer_id": rng.choice(customers, n_events),
            "timestamp": start + pd.to_timedelta(rng.integers(300 * 86400, 480 * 86400, n_events), unit="s"),
            "event_type": rng.choice(
                [
                    "session_start",
                    "page_view",
                    "product_view",
                    "add_to_cart",
                    "checkout_start",
                    "email_open",
                    "email_click",
                    "support_ticket",
                ],
                n_events,
            ),
        }
    )
    attributes = pd.DataFrame(
        {
            "customer_id": customers,
            "signup_date": [
                dt.date(2022, 12, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 600, n_customers)
            ],
            "acquisition_channel": rng.choice(["search", "social"], n_customers),
            "country": rng.choice(["DE", "FR"], n_customers),
        }
    )
    return tx, events, attributes


def batch(tx, as_of, events=None, customers=None) -> pd.DataFrame:
    def wrap(frame):
        return ibis.memtable(frame) if frame is not None else None

    return compute_features(ibis.memtable(tx), as_of, wrap(events), wrap(customers))


@pytest.mark.parametrize("as_of", [AS_OF, dt.date(2023, 12, 31), dt.date(2024, 2, 29)])
@pytest.mark.parametrize("with_extras", [False, True])
def test_batch_equals_request(as_of, with_extras):
    tx, events, attributes = shop()
    extras = (events, attributes) if with_extras else (None, None)
    expected = batch(tx, as_of, *extras)
    got = compute_features_for_request(tx, as_of, *extras)
    assert len(expected) >= 3
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)


def test_request_for_one_customer_equals_its_batch_row():
    tx, events, attributes = shop()
    expected = batch(tx, AS_OF, events, attributes)
    one = "c2"
    got = compute_features_for_request(
        tx[tx.customer_id == one],
        AS_OF,
        events[events.customer_id == one],
        attributes[attributes.customer_id == one],
    )
    pd.testing.assert_frame_equal(
        got, expected[expected.customer_id == one].reset_index(drop=True), rtol=1e-12
    )


def test_request_converts_time_zones_and_fills_order_ids():
    tx, _, _ = shop()
    expected_tx = tx.drop(columns=["order_id"]).assign(
        order_id=tx.customer_id + "|" + tx.timestamp.dt.strftime("%Y-%m-%d")
    )
    expected = batch(expected_tx, AS_OF)
    aware = tx.drop(columns=["order_id"]).assign(
        timestamp=tx.timestamp.dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo")
    )
    pd.testing.assert_frame_equal(compute_features_for_request(aware, AS_OF), expected, rtol=1e-12)


def test_request_path_serves_new_data_and_other_threads():
    tx, _, _ = shop()
    first = compute_features_for_request(tx, AS_OF)
    doubled = compute_features_for_request(tx.assign(amount=tx.amount * 2), AS_OF)
    np.testing.assert_allclose(doubled["monetary_total"], first["monetary_total"] * 2)
    results = {}

    def run(name, frame):
        results[name] = compute_features_for_request(frame, AS_OF)

    threads = [
        threading.Thread(target=run, args=(i, tx if i % 2 else tx.assign(amount=tx.amount * 2)))
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, result in results.items():
        pd.testing.assert_frame_equal(result, first if i % 2 else doubled)


def test_request_edge_cases():
    tx, _, _ = shop()
    empty = compute_features_for_request(tx.iloc[:0], AS_OF)
    assert tuple(empty.columns) == FEATURE_COLUMNS and len(empty) == 0
    refund_only = tx.head(1).assign(amount=-5.0, timestamp=pd.Timestamp("2024-01-15"))
    [row] = compute_features_for_request(refund_only, AS_OF).to_dict("records")
    assert row["n_orders"] == 0 and row["monetary_total"] == -5.0
    unit = compute_features_for_request(tx.drop(columns=["amount"]), AS_OF)  # every order is worth 1
    # An order of 3 lines is 3 x 1/3, summed with 9 decimals (features.orders.exact_amount).
    assert unit["monetary_mean"].to_numpy() == pytest.approx(1.0, abs=1e-8)
    assert unit["monetary_total"].to_numpy() == pytest.approx(unit["n_orders"].to_numpy(float), abs=1e-7)
    with pytest.raises(ValueError, match="amount"):
        compute_features_for_request(tx.assign(amount="lots"), AS_OF)


ROWS_WITHOUT_ORDER_IDS = pd.DataFrame(
    {
        "customer_id": ["A", "A", "B", "C", "C", "C"],
        "timestamp": pd.to_datetime(
            ["2025-03-01", "2025-05-01", "2025-04-01", "2025-03-01", "2025-04-01", "2025-04-20"]
        ),
        "amount": [10.0, 5.0, 7.0, 10.0, 20.0, 20.0],
        "order_id": [None, None, "b1", "c1", None, "c3"],
    }
)


def test_a_row_without_an_order_id_is_its_customer_days_order(tmp_path):
    """An empty order_id cell, which the contract allows, once counted in no order: A, whose rows all had
    one, read 0 orders worth 15 (segment no_purchase, "only refunds or free orders"), C 2 orders with a
    mean of 25 for 3 orders worth 50; and /predict_history answered 500 on a null order_id."""
    path = tmp_path / "t.csv"
    ROWS_WITHOUT_ORDER_IDS.to_csv(path, index=False)
    from_file = compute_features(load_shop(path).tables()["transactions"], dt.date(2025, 5, 1))
    counted = from_file.set_index("customer_id")
    assert counted.n_orders.to_dict() == {"A": 2, "B": 1, "C": 3}
    assert counted.monetary_mean["C"] == pytest.approx(50 / 3)
    filled = ROWS_WITHOUT_ORDER_IDS.assign(
        order_id=ROWS_WITHOUT_ORDER_IDS.order_id.fillna(
            ROWS_WITHOUT_ORDER_IDS.customer_id
            + "|"
            + ROWS_WITHOUT_ORDER_IDS.timestamp.dt.strftime("%Y-%m-%d")
        )
    )
    pd.testing.assert_frame_equal(from_file, batch(filled, dt.date(2025, 5, 1)), rtol=1e-12)
    got = compute_features_for_request(ROWS_WITHOUT_ORDER_IDS, dt.date(2025, 5, 1))
    pd.testing.assert_frame_equal(got, from_file, rtol=1e-12)
