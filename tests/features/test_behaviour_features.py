"""Behavioural features on hand-made events: windows, sessions, abandoned carts and their cut-off rule."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pytest

from features.behaviour import BEHAVIOUR_COUNT_COLUMNS
from features.pipeline import compute_features

D = dt.date(2024, 3, 31)  # 30-day window: 03-02..03-31; 90-day window: 01-02..03-31

ORDERS = [
    ("A", "2024-01-10 10:00", 50.0, "o1"),
    ("A", "2024-02-09 09:00", 40.0, "o2"),
    ("A", "2024-03-30 12:00", 60.0, "o3"),
    ("A", "2024-03-30 18:00", 20.0, "o4"),
    ("B", "2023-11-15 08:00", 100.0, "o5"),
    ("C", "2024-03-31 23:30", 25.0, "o7"),
    ("C", "2024-04-01 00:10", 35.0, "o9"),  # after D
]

EVENTS = [
    # A's carts
    ("A", "2024-03-29 13:00", "add_to_cart"),  # o3 23 h later: bought
    ("A", "2024-03-20 10:00", "add_to_cart"),  # abandoned (30d)
    ("A", "2024-02-08 10:00", "add_to_cart"),  # o2 23 h later: bought
    ("A", "2024-02-01 10:00", "add_to_cart"),  # abandoned (90d only)
    ("A", "2024-03-30 20:00", "add_to_cart"),  # abandoned: its 24 h end before the cut-off
    ("A", "2024-03-31 00:00", "add_to_cart"),  # its 24 h end exactly at the cut-off: not counted
    ("A", "2024-03-31 08:00", "add_to_cart"),  # window still open at the cut-off: not counted
    # B's visits: sessions split by > 30 minutes of inactivity
    ("B", "2024-03-10 10:00", "page_view"),
    ("B", "2024-03-10 10:10", "product_view"),
    ("B", "2024-03-10 10:20", "checkout_start"),
    ("B", "2024-03-10 10:45", "page_view"),
    ("B", "2024-03-10 11:20", "page_view"),  # new session
    ("B", "2024-03-20 09:00", "session_start"),
    ("B", "2024-03-20 09:05", "page_view"),
    ("B", "2024-01-15 10:00", "page_view"),  # 90d only
    ("B", "2023-12-01 10:00", "page_view"),  # outside both windows
    ("B", "2024-03-25 07:00", "email_open"),  # not a visit
    ("B", "2024-02-10 07:00", "email_open"),
    ("B", "2024-03-25 07:01", "email_click"),
    ("B", "2024-02-15 12:00", "support_ticket"),
    ("B", "2024-03-21 12:00", "review_request"),  # unknown types are ignored
    # C: a cart bought 23 h 50 min later, at 23:30 on D
    ("C", "2024-03-30 23:40", "add_to_cart"),
    # E never buys: not in the table
    ("E", "2024-03-30 10:00", "page_view"),
    # after D
    ("A", "2024-04-01 00:00", "page_view"),
    ("B", "2024-04-02 10:00", "add_to_cart"),
]

EXPECTED = {
    "A": {
        "sessions_30d": 5,
        "sessions_90d": 7,
        "add_to_cart_30d": 5,
        "add_to_cart_90d": 7,
        "abandoned_carts_30d": 2,
        "abandoned_carts_90d": 3,
        "product_views_30d": 0,
        "days_since_last_visit": 0,
    },
    "B": {
        "sessions_30d": 3,
        "sessions_90d": 4,
        "product_views_30d": 1,
        "product_views_90d": 1,
        "add_to_cart_30d": 0,
        "abandoned_carts_90d": 0,
        "checkout_starts_90d": 1,
        "email_opens_30d": 1,
        "email_opens_90d": 2,
        "email_clicks_30d": 1,
        "email_clicks_90d": 1,
        "support_tickets_90d": 1,
        "days_since_last_visit": 11,
    },
    "C": {
        "sessions_30d": 1,
        "add_to_cart_30d": 1,
        "abandoned_carts_30d": 0,
        "abandoned_carts_90d": 0,
        "days_since_last_visit": 1,
    },
}


def frames(orders=ORDERS, events=EVENTS) -> tuple[pd.DataFrame, pd.DataFrame]:
    tx = pd.DataFrame(orders, columns=["customer_id", "timestamp", "amount", "order_id"])
    ev = pd.DataFrame(events, columns=["customer_id", "timestamp", "event_type"])
    for frame in (tx, ev):
        frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return tx, ev


def features(tx: pd.DataFrame, ev: pd.DataFrame | None) -> pd.DataFrame:
    events = ibis.memtable(ev) if ev is not None else None
    return compute_features(ibis.memtable(tx), D, events=events).set_index("customer_id")


@pytest.mark.parametrize("customer", sorted(EXPECTED))
def test_behaviour_by_hand(customer):
    row = features(*frames()).loc[customer]
    assert row["has_events"]
    for name, value in EXPECTED[customer].items():
        assert row[name] == value, f"{customer}.{name}: expected {value}, got {row[name]}"


def test_counts_are_zero_without_matching_events_and_last_visit_null():
    tx, ev = frames()
    table = features(tx, ev[ev.customer_id == "A"])
    b = table.loc["B"]
    assert (b[list(BEHAVIOUR_COUNT_COLUMNS)] == 0).all()
    assert pd.isna(b["days_since_last_visit"])
    assert "E" not in table.index


def test_without_events_the_columns_are_null_and_flagged():
    table = features(frames()[0], None)
    assert not table["has_events"].any()
    assert table[list(BEHAVIOUR_COUNT_COLUMNS)].isna().all().all()


def test_abandoned_carts_do_not_look_past_the_cutoff():
    """A purchase after D cannot rescue a cart, and a cart whose 24 h are still open is not counted."""
    tx, ev = frames()
    later = pd.DataFrame(
        {
            "customer_id": ["A"],
            "timestamp": pd.to_datetime(["2024-04-01 07:00"]),
            "amount": [5.0],
            "order_id": ["o99"],
        }
    )
    base = features(tx, ev)
    with_future_purchase = features(pd.concat([tx, later]), ev)
    pd.testing.assert_frame_equal(base, with_future_purchase)
