"""Feature values computed by hand on a tiny log, the cut-off boundary, refunds, and leakage.

The log (cut-off D = 2024-03-31, a leap year: February has 29 days):
- A: o1 2024-01-10 (30 + 20), o2 2024-02-09 (40, refunded -10 on 02-20), o3 and o4 both on
  2024-03-30 (60 and 20). After D: o3 refunded in full on 04-02.
- B: one order o5 on 2023-11-15 (100), in Q4.
- C: a free order o6 on 2024-03-01 (0) and a refund-only order r1 (-15): no purchase.
- D: o8 2024-02-01 cancelled (40, -40): placed, so a purchase, at net 0; refund-only r2 on 03-15
  (-5), o7 at 23:30 on D (25).
  After D: a line of o7 at 01:00 on D + 1 (10), o9 at 00:10 on D + 1 (35).
"""

from __future__ import annotations

import datetime as dt
import math

import ibis
import pandas as pd
import pytest

from features.engine import arrow_to_pandas
from features.pipeline import (
    FEATURE_COLUMNS,
    FEATURE_SCHEMA,
    FEATURES_VERSION,
    NUMERIC_COLUMNS,
    build_features,
    compute_features,
)
from features.rfm import build_rfm

D = dt.date(2024, 3, 31)

ROWS = [
    # customer, timestamp, amount, order_id, quantity, product_id, category
    ("A", "2024-01-10 10:00", 30.0, "o1", 1, "p1", "x"),
    ("A", "2024-01-10 10:00", 20.0, "o1", 2, "p2", "y"),
    ("A", "2024-02-09 09:00", 40.0, "o2", 1, "p1", "x"),
    ("A", "2024-02-20 15:00", -10.0, "o2", -1, "p1", "x"),
    ("A", "2024-03-30 12:00", 60.0, "o3", 3, "p3", "y"),
    ("A", "2024-03-30 18:00", 20.0, "o4", 1, "p1", "x"),
    ("B", "2023-11-15 08:00", 100.0, "o5", 1, "p2", "y"),
    ("C", "2024-03-01 10:00", 0.0, "o6", 1, "p1", "x"),
    ("C", "2024-03-05 10:00", -15.0, "r1", -1, "p1", "x"),
    ("D", "2024-02-01 10:00", 40.0, "o8", 1, "p4", "z"),
    ("D", "2024-02-01 11:00", -40.0, "o8", -1, "p4", "z"),
    ("D", "2024-03-15 10:00", -5.0, "r2", -1, "p4", "z"),
    ("D", "2024-03-31 23:30", 25.0, "o7", 1, "p4", "z"),
]
AFTER = [
    ("A", "2024-04-02 09:00", -60.0, "o3", -3, "p3", "y"),
    ("D", "2024-04-01 01:00", 10.0, "o7", 1, "p5", "z"),
    ("D", "2024-04-01 00:10", 35.0, "o9", 1, "p4", "z"),
    ("B", "2024-05-15 10:00", 80.0, "o10", 1, "p2", "y"),
]

EXPECTED = {
    "A": {
        "recency_days": 1,
        "frequency": 3,
        "n_orders": 4,
        "monetary_mean": 40.0,
        "monetary_total": 160.0,
        "tenure_days": 81,
        "first_order_value": 50.0,
        "btyd_frequency": 2,
        "btyd_recency": 80,
        "btyd_age": 81,
        "btyd_monetary": 55.0,  # repeat purchase days: 02-09 (30) and 03-30 (60 + 20)
        "largest_order_value": 60.0,  # o3, net of its refund after the cut-off (not read)
        "largest_repeat_order_value": 60.0,
        "gap_mean_days": 40.0,
        "gap_std_days": math.sqrt(200.0),
        "gap_last_days": 50.0,
        "gap_log_mean": (math.log(30) + math.log(50)) / 2,
        "orders_30d": 2,
        "orders_90d": 4,
        "orders_180d": 4,
        "orders_365d": 4,
        "revenue_30d": 80.0,
        "revenue_90d": 160.0,
        "revenue_180d": 160.0,
        "revenue_365d": 160.0,
        "orders_trend_30_90": 1.5,
        "orders_trend_90_365": 365 / 90,
        "revenue_trend_30_90": 1.5,
        "revenue_trend_90_365": 365 / 90,
        "q4_spend_share": 0.0,
        "refund_share": 10 / 170,
        "items_per_order": 2.0,
        "n_products": 3.0,
        "n_categories": 2.0,
        "top_category_share": 90 / 170,
    },
    "B": {
        "recency_days": 137,
        "frequency": 0,
        "n_orders": 1,
        "monetary_mean": 100.0,
        "monetary_total": 100.0,
        "tenure_days": 137,
        "first_order_value": 100.0,
        "btyd_frequency": 0,
        "btyd_recency": 0,
        "btyd_age": 137,
        "btyd_monetary": 0.0,
        "largest_order_value": 100.0,
        "largest_repeat_order_value": 0.0,
        "gap_mean_days": None,
        "gap_std_days": None,
        "gap_last_days": None,
        "gap_log_mean": None,
        "orders_30d": 0,
        "orders_90d": 0,
        "orders_180d": 1,
        "orders_365d": 1,
        "revenue_30d": 0.0,
        "revenue_90d": 0.0,
        "revenue_180d": 100.0,
        "revenue_365d": 100.0,
        "orders_trend_30_90": None,
        "orders_trend_90_365": 0.0,
        "revenue_trend_30_90": None,
        "revenue_trend_90_365": 0.0,
        "q4_spend_share": 1.0,
        "refund_share": 0.0,
        "items_per_order": 1.0,
        "n_products": 1.0,
        "n_categories": 1.0,
        "top_category_share": 1.0,
    },
    "D": {
        # The cancelled o8 was placed on 02-01: a purchase (with its date and gap) at net 0.
        "recency_days": 0,
        "frequency": 1,
        "n_orders": 2,
        "monetary_mean": 10.0,  # net revenue per purchase: the refund-only r2 returns part of one
        "monetary_total": 20.0,  # 25 - 5 (refund-only r2); the cancelled o8 nets 0
        "tenure_days": 59,
        "first_order_value": 0.0,
        "btyd_frequency": 1,
        "btyd_recency": 59,
        "btyd_age": 59,
        "largest_order_value": 25.0,  # the cancelled o8 nets 0
        "largest_repeat_order_value": 25.0,
        "btyd_monetary": 20.0,  # the repeat day's 25, less r2's 5 (all her purchases' value is on that day)
        "gap_mean_days": 59.0,
        "gap_std_days": None,
        "gap_last_days": 59.0,
        "gap_log_mean": math.log(59),
        "orders_30d": 1,
        "orders_90d": 2,
        "orders_180d": 2,
        "orders_365d": 2,
        "revenue_30d": 20.0,
        "revenue_90d": 20.0,
        "revenue_180d": 20.0,
        "revenue_365d": 20.0,
        "orders_trend_30_90": 1.5,
        "orders_trend_90_365": 365 / 90,
        "revenue_trend_30_90": 3.0,
        "revenue_trend_90_365": 365 / 90,
        "q4_spend_share": 0.0,
        "refund_share": 45 / 65,
        "items_per_order": 1.0,
        "n_products": 1.0,
        "n_categories": 1.0,
        "top_category_share": 1.0,
    },
}


def log(rows=ROWS, drop: tuple[str, ...] = ()) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["customer_id", "timestamp", "amount", "order_id", "quantity", "product_id", "category"]
    )
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame["quantity"] = frame["quantity"].astype("float64")
    return frame.drop(columns=list(drop))


def features(frame: pd.DataFrame, as_of=D, backend=None, **tables) -> pd.DataFrame:
    """The feature table of `frame` (and optional events/customers frames) at `as_of`, indexed by customer;
    run by DuckDB, or by the Ibis `backend` given (Spark)."""
    memtables = {name: ibis.memtable(t) if t is not None else None for name, t in tables.items()}
    if backend is None:
        return compute_features(ibis.memtable(frame), as_of, **memtables).set_index("customer_id")
    expr = build_features(ibis.memtable(frame), as_of, **memtables)
    table = backend.to_pyarrow(expr).cast(expr.schema().to_pyarrow())
    return arrow_to_pandas(table).set_index("customer_id").sort_index()


@pytest.fixture(params=["duckdb", "spark"])
def backend(request):
    """None for the default engine, or the test run's Spark backend: the same definitions on both."""
    return request.getfixturevalue("spark_backend") if request.param == "spark" else None


def assert_row(row: pd.Series, expected: dict) -> None:
    for name, value in expected.items():
        if value is None:
            assert pd.isna(row[name]), f"{name}: expected null, got {row[name]}"
        else:
            assert row[name] == pytest.approx(value), f"{name}: expected {value}, got {row[name]}"


def test_values_by_hand(backend):
    table = features(log(), backend=backend)
    for customer in sorted(EXPECTED):
        assert_row(table.loc[customer], EXPECTED[customer])
    assert table.loc[customer, "as_of"] == pd.Timestamp(D)


def test_customers_without_a_purchase_are_rows_too():
    # C's only orders are free or refund-only: no purchase, but the shop knows her since 03-01.
    table = features(log())
    assert sorted(table.index) == ["A", "B", "C", "D"]
    assert_row(
        table.loc["C"],
        {
            "n_orders": 0,
            "frequency": 0,
            "recency_days": 30,
            "tenure_days": 30,
            "monetary_mean": 0.0,
            "monetary_total": -15.0,
            "first_order_value": 0.0,
            "btyd_frequency": 0,
            "btyd_recency": 0,
            "btyd_age": 30,
            "btyd_monetary": 0.0,
            "q4_spend_share": 0.0,
            "items_per_order": 0.0,
        },
    )


def test_column_set_and_dtypes_are_stable():
    full = features(log()).reset_index()
    bare = features(log(drop=("quantity", "product_id", "category"))).reset_index()
    for table in (full, bare):
        assert tuple(table.columns) == FEATURE_COLUMNS
    assert full.dtypes.equals(bare.dtypes)
    assert build_features(ibis.memtable(log()), D).schema() == ibis.schema(FEATURE_SCHEMA)
    assert "customer_id" not in NUMERIC_COLUMNS and "recency_days" in NUMERIC_COLUMNS
    assert FEATURES_VERSION


def test_without_optional_columns():
    table = features(log(drop=("quantity", "product_id", "category")))
    a = table.loc["A"]
    # items_per_order falls back to positive lines per purchase: o1 has 2, o2, o3, o4 have 1.
    assert a["items_per_order"] == pytest.approx(5 / 4)
    assert pd.isna(a["n_products"]) and pd.isna(a["n_categories"]) and pd.isna(a["top_category_share"])
    assert_row(
        a,
        {
            k: v
            for k, v in EXPECTED["A"].items()
            if k not in ("items_per_order", "n_products", "n_categories", "top_category_share")
        },
    )
    assert not table["has_events"].any()
    assert (
        table[["sessions_90d", "acquisition_channel", "country", "days_since_last_visit"]].isna().all().all()
    )


def test_day_boundary():
    # 23:30 on D is in (D's o7), 00:10 and 01:00 on D + 1 are out.
    table = features(log(ROWS + AFTER))
    assert table.loc["D", "n_orders"] == 2 and table.loc["D", "recency_days"] == 0  # o8 and o7
    assert table.loc["D", "monetary_mean"] == 10.0
    day_before = features(log(ROWS + AFTER), as_of=D - dt.timedelta(days=1))
    assert day_before.loc["D", "n_orders"] == 1  # o7 is at 23:30 on D, so not seen at D - 1


def test_refund_after_cutoff_does_not_change_features():
    # A's o3 is refunded in full on 04-02: at D it is a purchase of 60; from 04-02 a purchase at net 0.
    assert_row(features(log(ROWS + AFTER)).loc["A"], EXPECTED["A"])
    later = features(log(ROWS + AFTER), as_of=dt.date(2024, 4, 2)).loc["A"]
    assert later["n_orders"] == 4 and later["monetary_total"] == 100.0 and later["monetary_mean"] == 25.0


def test_a_return_is_worth_the_same_booked_on_its_order_or_as_a_credit_note(backend):
    """A customer who sends back half of each order is worth half per order, however the shop books the
    return: E returns on the order itself, F under an order id of its own ("O1-R", as the demo shop and
    many shops book credit notes). Booked the second way it once left her order value at the gross
    amount, so her expected order value stayed at what she bought, not what she kept."""
    rows = [
        ("E", "2024-01-10 10:00", 100.0, "o1", 1, "p1", "x"),
        ("E", "2024-01-20 10:00", -50.0, "o1", -1, "p1", "x"),
        ("E", "2024-02-10 10:00", 60.0, "o2", 1, "p1", "x"),
        ("E", "2024-02-20 10:00", -30.0, "o2", -1, "p1", "x"),
        ("F", "2024-01-10 10:00", 100.0, "o3", 1, "p1", "x"),
        ("F", "2024-01-20 10:00", -50.0, "o3-R", -1, "p1", "x"),
        ("F", "2024-02-10 10:00", 60.0, "o4", 1, "p1", "x"),
        ("F", "2024-02-20 10:00", -30.0, "o4-R", -1, "p1", "x"),
    ]
    table = features(log(rows), backend=backend)
    kept = ["n_orders", "monetary_total", "monetary_mean", "btyd_frequency", "btyd_monetary"]
    assert table.loc["E", kept].tolist() == [2, 80.0, 40.0, 1, 30.0]
    assert table.loc["F", kept].tolist() == table.loc["E", kept].tolist()


def test_cancelled_orders_stay_purchases_at_net_zero_and_refund_only_orders_are_not():
    d = features(log()).loc["D"]
    assert d["n_orders"] == 2  # o8 (placed, then cancelled) and o7; r2 (refund-only) is not a purchase
    assert d["monetary_mean"] == 10.0 and d["first_order_value"] == 0.0
    assert d["monetary_total"] == 20.0
    assert d["refund_share"] == pytest.approx(45 / 65)


def test_empty_windows_are_zero_not_null():
    table = features(log())
    b = table.loc["B"]
    assert b["orders_30d"] == 0 and b["revenue_90d"] == 0.0
    window_columns = [
        c for c in FEATURE_COLUMNS if c.startswith(("orders_", "revenue_")) and "trend" not in c
    ]
    assert not table[window_columns].isna().any().any()


def test_leakage_rows_after_cutoff_change_nothing(backend):
    """Arbitrary transactions and events after D (any customer, new ones too) leave features unchanged, on
    both engines."""
    events = pd.DataFrame(
        {
            "customer_id": ["A", "A", "B"],
            "timestamp": pd.to_datetime(["2024-03-20 10:00", "2024-03-29 10:00", "2024-03-10 08:00"]),
            "event_type": ["add_to_cart", "page_view", "email_open"],
        }
    )
    future_rows = [
        *AFTER,
        ("A", "2024-04-01 00:00", 999.0, "o11", 5, "p9", "w"),
        ("A", "2024-03-31 23:59", -1.0, "o4", -1, "p1", "x"),  # last instant of D: this one is seen
        ("E", "2024-06-01 10:00", 12.0, "o12", 1, "p1", "x"),
        ("B", "2025-01-01 10:00", -100.0, "o5", -1, "p2", "y"),
    ]
    future_events = pd.DataFrame(
        {
            "customer_id": ["A", "A", "E", "B"],
            "timestamp": pd.to_datetime(
                ["2024-04-01 00:00", "2024-03-31 00:10", "2024-04-05 10:00", "2024-05-01 10:00"]
            ),
            "event_type": ["page_view", "product_view", "session_start", "add_to_cart"],
        }
    )
    seen = [r for r in future_rows if pd.Timestamp(r[1]) < pd.Timestamp("2024-04-01")]
    base = features(log(ROWS + seen), backend=backend, events=pd.concat([events, future_events.iloc[[1]]]))
    leaked = features(log(ROWS + future_rows), backend=backend, events=pd.concat([events, future_events]))
    pd.testing.assert_frame_equal(base, leaked)
    assert base.loc["A", "product_views_30d"] == 1  # the 00:10-on-D event is inside


def test_rfm_subset_matches_the_full_table():
    rfm = build_rfm(ibis.memtable(log(ROWS + AFTER)), D).to_pandas().set_index("customer_id").sort_index()
    full = features(log(ROWS + AFTER))
    columns = [c for c in rfm.columns if c != "as_of"]
    pd.testing.assert_frame_equal(rfm[columns], full[columns], check_dtype=False)


def test_rejects_a_bad_as_of():
    with pytest.raises(TypeError):
        build_features(ibis.memtable(log()), 20240331)
