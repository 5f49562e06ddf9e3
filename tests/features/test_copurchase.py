"""Co-purchase counts, interest (viewed or carted, not bought) and lifecycle moments are point in time:
nothing after the cut-off changes them."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd

from features import copurchase, interest
from features.engine import to_pandas
from features.labels import item_label, next_order_label
from features.lifecycle import lifecycle_table

D = dt.date(2024, 6, 30)


def table(rows, columns=("customer_id", "timestamp", "amount", "order_id", "category", "product_id")):
    frame = pd.DataFrame(rows, columns=list(columns))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return ibis.memtable(frame)


BEFORE = [
    ("A", "2024-01-05 10:00", 10.0, "o1", "electronics", "P1"),
    ("A", "2024-01-05 10:00", 5.0, "o1", "accessories", "P2"),
    ("A", "2024-03-01 09:00", 12.0, "o2", "electronics", "P1"),
    ("B", "2024-02-01 08:00", 8.0, "o3", "electronics", "P3"),
    ("B", "2024-06-30 23:59", 4.0, "o4", "books", "P4"),  # the last second of the cut-off day counts
    ("C", "2024-05-01 12:00", -3.0, "o5", "toys", "P5"),  # a refund row is not a purchase
]
AFTER = [
    ("A", "2024-07-01 00:00", 9.0, "o6", "toys", "P5"),
    ("B", "2024-08-01 10:00", 7.0, "o7", "accessories", "P2"),
    ("C", "2024-07-02 10:00", 20.0, "o8", "electronics", "P1"),
]


def counts(transactions) -> dict[str, pd.DataFrame]:
    start = D - dt.timedelta(days=120)
    out = {
        "items": copurchase.customer_items(transactions, D, "category"),
        "item_counts": copurchase.item_counts(transactions, D, "category"),
        "next_items": copurchase.next_items(transactions, start, D, "category", 2),
        "next_pairs": copurchase.next_pairs(transactions, start, D, "category", 2),
        "products": copurchase.top_products(transactions, D),
    }
    return {name: to_pandas(t).sort_values(list(t.columns)).reset_index(drop=True) for name, t in out.items()}


def test_counts_at_the_cut_off_ignore_everything_after_it():
    only_before = counts(table(BEFORE))
    with_after = counts(table(BEFORE + AFTER))
    for name, frame in only_before.items():
        pd.testing.assert_frame_equal(frame, with_after[name], obj=name)
    items = only_before["items"].set_index(["customer_id", "item"])
    assert items.loc[("A", "electronics"), "n_orders"] == 2
    assert ("C", "toys") not in items.index  # refunds are not purchases
    assert pd.Timestamp(items.loc[("B", "books"), "last_date"]).date() == D


def test_next_pairs_count_what_followed_and_skip_what_was_already_regular():
    pairs = counts(table(BEFORE))["next_pairs"]
    # B had electronics by the start (2024-03-02) and bought books after it.
    assert {"item": "electronics", "other": "books", "n_customers": 1} in pairs.to_dict("records")
    # A bought electronics regularly (2 orders) only after the start, so none of her rows is "next" for it.
    assert not ((pairs["other"] == "electronics") & (pairs["n_customers"] > 1)).any()


def test_labels_read_only_the_window_after_the_cut_off():
    t = table(BEFORE + AFTER)
    nxt = to_pandas(next_order_label(t, D, 30)).set_index("customer_id")["days_to_next_order"]
    assert nxt.to_dict() == {"A": 1, "C": 2}  # B's order is after the 30-day window
    bought = to_pandas(item_label(t, D, 60, "category"))
    assert set(map(tuple, bought[["customer_id", "item"]].to_numpy())) == {
        ("A", "toys"),
        ("B", "accessories"),
        ("C", "electronics"),
    }


def test_a_log_without_category_or_product_has_no_items():
    plain = table([r[:4] for r in BEFORE], columns=("customer_id", "timestamp", "amount", "order_id"))
    assert copurchase.item_column(plain) is None
    assert copurchase.top_products(plain, D) is None


def test_lifecycle_moments_are_point_in_time():
    events = ibis.memtable(
        pd.DataFrame(
            {
                "customer_id": ["A", "B", "B"],
                "timestamp": pd.to_datetime(["2024-06-20 10:00", "2024-06-01 10:00", "2024-07-01 10:00"]),
                "event_type": ["add_to_cart", "checkout_start", "add_to_cart"],
            }
        )
    )
    customers = ibis.memtable(
        pd.DataFrame({"customer_id": ["A", "B"], "birth_date": pd.to_datetime(["1990-07-04", "1985-02-28"])})
    )

    def moments(transactions):
        frame = to_pandas(lifecycle_table(transactions, D, events, customers)).set_index("customer_id")
        return frame.sort_index().apply(lambda column: pd.to_datetime(column).dt.date)

    before, after = moments(table(BEFORE)), moments(table(BEFORE + AFTER))
    pd.testing.assert_frame_equal(before, after)
    assert before.loc["A", "first_order_date"] == dt.date(2024, 1, 5)
    assert before.loc["A", "last_cart_date"] == dt.date(2024, 6, 20)  # no order after her cart
    assert pd.isna(
        before.loc["B", "last_cart_date"]
    )  # she ordered after her checkout; the later cart is after D
    assert before.loc["B", "birth_date"] == dt.date(1985, 2, 28)
    assert "C" not in before.index  # no purchase by D


def events(rows) -> ibis.Table:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "event_type", "category"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return ibis.memtable(frame)


EVENTS_BEFORE = [
    ("A", "2024-06-20 10:00", "add_to_cart", "toys"),
    ("A", "2024-06-21 10:00", "product_view", "toys"),  # a later view: still carted, dated by the cart
    ("A", "2024-05-01 10:00", "add_to_cart", "books"),  # before the 30 days
    ("A", "2024-06-25 10:00", "checkout_start", "electronics"),  # after her last electronics order
    ("B", "2024-06-29 10:00", "product_view", "accessories"),
    ("B", "2024-06-30 10:00", "add_to_cart", "books"),  # bought at 23:59 the same day
    ("C", "2024-06-29 10:00", "page_view", "kitchen"),  # a page view is about no item
    ("C", "2024-06-29 10:00", "product_view", None),
]
EVENTS_AFTER = [
    ("A", "2024-07-01 00:00", "add_to_cart", "kitchen"),
    ("B", "2024-07-02 00:00", "add_to_cart", "shoes"),
]


def test_interest_is_what_was_viewed_or_carted_lately_and_not_bought_since():
    def seen(transactions, log):
        frame = to_pandas(interest.interest_items(transactions, events(log), D, "category", 30))
        frame["last_date"] = pd.to_datetime(frame["last_date"]).dt.date
        return frame.sort_values(["customer_id", "item"]).reset_index(drop=True)

    before = seen(table(BEFORE), EVENTS_BEFORE)
    # Events and purchases after the cut-off change nothing.
    pd.testing.assert_frame_equal(before, seen(table(BEFORE + AFTER), EVENTS_BEFORE + EVENTS_AFTER))
    assert before.to_dict("records") == [
        {"customer_id": "A", "item": "electronics", "carted": True, "last_date": dt.date(2024, 6, 25)},
        {"customer_id": "A", "item": "toys", "carted": True, "last_date": dt.date(2024, 6, 20)},
        {"customer_id": "B", "item": "accessories", "carted": False, "last_date": dt.date(2024, 6, 29)},
    ]


def test_interest_outcomes_say_what_was_bought_next_but_skip_regular_items():
    log = events(EVENTS_BEFORE)
    out = to_pandas(
        interest.interest_outcomes(
            table(BEFORE + AFTER), log, D, D + dt.timedelta(days=60), "category", 30, 2
        )
    )
    got = {(r.customer_id, r.item): (r.carted, r.bought_next) for r in out.itertuples()}
    # A buys electronics regularly (2 orders by D): no outcome for it. Toys and accessories were bought next.
    assert got == {("A", "toys"): (True, True), ("B", "accessories"): (False, True)}


def test_events_without_the_item_column_have_no_items():
    assert interest.has_items(events(EVENTS_BEFORE), "category")
    assert not interest.has_items(events(EVENTS_BEFORE).drop("category"), "category")
    assert not interest.has_items(None, "category") and not interest.has_items(events(EVENTS_BEFORE), None)


def test_the_abandoned_cart_names_its_item_when_events_carry_one():
    log = events(
        [
            ("A", "2024-06-20 10:00", "add_to_cart", "toys"),
            ("A", "2024-06-20 10:00", "checkout_start", "books"),
        ]
    )
    frame = to_pandas(lifecycle_table(table(BEFORE), D, log)).set_index("customer_id")
    assert frame.loc["A", "last_cart_item"] == "books"  # two in her last second: the first in text order
    assert pd.isna(frame.loc["B", "last_cart_item"])
    plain = to_pandas(lifecycle_table(table(BEFORE), D, log.drop("category"))).set_index("customer_id")
    assert plain["last_cart_item"].isna().all()
    assert pd.Timestamp(plain.loc["A", "last_cart_date"]).date() == dt.date(2024, 6, 20)
