"""Labels (the H days after the cut-off) and rolling-origin snapshots."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest

from features.labels import LABEL_COLUMNS, build_labels
from features.pipeline import FEATURE_COLUMNS, compute_features
from features.snapshots import make_snapshots

D = dt.date(2024, 3, 31)
ROWS = [
    ("A", "2024-01-10 10:00", 50.0, "o1"),
    ("A", "2024-02-09 09:00", 40.0, "o2"),
    ("A", "2024-03-30 12:00", 60.0, "o3"),
    ("A", "2024-03-30 18:00", 20.0, "o4"),
    ("A", "2024-04-02 09:00", -60.0, "o3"),  # refund of o3 inside the label window
    ("B", "2023-11-15 08:00", 100.0, "o5"),
    ("B", "2024-05-15 10:00", 80.0, "o10"),
    ("C", "2024-04-03 10:00", 70.0, "o11"),  # new customer after D: not in the population
    ("D", "2024-02-01 10:00", 40.0, "o8"),
    ("D", "2024-02-01 11:00", -40.0, "o8"),
    ("D", "2024-03-31 23:30", 25.0, "o7"),
    ("D", "2024-04-01 00:10", 35.0, "o9"),
    ("D", "2024-04-01 01:00", 10.0, "o7"),  # late line of an order placed on D: revenue, not a purchase
    ("D", "2024-04-05 10:00", 30.0, "o12"),
    ("D", "2024-04-06 10:00", -30.0, "o12"),  # cancelled inside the window: not a purchase
]


def transactions(rows=ROWS) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "order_id"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame


def labels(label_days: int, as_of=D) -> pd.DataFrame:
    return build_labels(ibis.memtable(transactions()), as_of, label_days).to_pandas().set_index("customer_id")


def test_labels_by_hand():
    table = labels(30)
    assert sorted(table.index) == ["A", "B", "D"]
    assert tuple(table.columns) == ("as_of", *LABEL_COLUMNS)
    assert table.loc["A", LABEL_COLUMNS].tolist() == [-60.0, 0, True]  # net, not clipped
    assert table.loc["B", LABEL_COLUMNS].tolist() == [0.0, 0, True]  # no activity: 0 / 0 / True
    assert table.loc["D", LABEL_COLUMNS].tolist() == [45.0, 1, False]  # 35 + 10 + 30 - 30; only o9
    assert (table["as_of"] == pd.Timestamp(D)).all()


def test_label_window_edges():
    # A 45-day window ends at 00:00 on 05-16, so B's order at 10:00 on 05-15 is in; 44 days end before it.
    assert labels(45).loc["B", ["label_revenue", "label_orders"]].tolist() == [80.0, 1]
    assert labels(44).loc["B", ["label_revenue", "label_orders"]].tolist() == [0.0, 0]


def test_labels_ignore_rows_after_the_window():
    extra = transactions(
        ROWS + [("A", "2024-05-01 00:00", 500.0, "o13"), ("B", "2024-05-01 09:00", -9.0, "o5")]
    )
    table = build_labels(ibis.memtable(extra), D, 30).to_pandas().set_index("customer_id")
    pd.testing.assert_frame_equal(table.sort_index(), labels(30).sort_index())


def test_labels_for_a_given_population():
    population = ibis.memtable(pd.DataFrame({"customer_id": ["B", "Z"]}))
    table = build_labels(ibis.memtable(transactions()), D, 45, population=population).to_pandas()
    assert table.set_index("customer_id").loc["Z", LABEL_COLUMNS].tolist() == [0.0, 0, True]


def test_label_days_must_be_positive():
    with pytest.raises(ValueError):
        build_labels(ibis.memtable(transactions()), D, 0)


def random_shop(seed: int = 3, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    orders = rng.integers(0, n // 2, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i % 40}" for i in orders],
            "timestamp": pd.Timestamp("2023-01-01")
            + pd.to_timedelta(rng.integers(0, 500 * 86400, n), unit="s"),
            "amount": np.round(rng.normal(40, 30, n), 2),
            "order_id": [f"o{i}" for i in orders],
        }
    )
    return frame


def test_snapshots_stack_features_and_disjoint_label_windows():
    frame = random_shop()
    tx = ibis.memtable(frame)
    cutoffs = [dt.date(2023, 6, 30), dt.date(2023, 9, 30), dt.date(2023, 12, 31)]
    label_days = 60
    stacked = make_snapshots(tx, cutoffs, label_days).to_pandas()
    assert tuple(stacked.columns) == FEATURE_COLUMNS + LABEL_COLUMNS
    assert sorted(stacked["as_of"].unique()) == [pd.Timestamp(c) for c in cutoffs]
    for cutoff in cutoffs:
        part = (
            stacked[stacked["as_of"] == pd.Timestamp(cutoff)]
            .sort_values("customer_id")
            .reset_index(drop=True)
        )
        features = compute_features(tx, cutoff)
        pd.testing.assert_frame_equal(part[list(FEATURE_COLUMNS)], features)
        # Labels equal a pandas sum over [cutoff + 1 day, cutoff + 1 + L days): the rows features never saw.
        start = pd.Timestamp(cutoff) + pd.Timedelta(days=1)
        window = frame[(frame.timestamp >= start) & (frame.timestamp < start + pd.Timedelta(days=label_days))]
        revenue = window.groupby("customer_id")["amount"].sum().reindex(part["customer_id"]).fillna(0.0)
        np.testing.assert_allclose(part["label_revenue"].to_numpy(), revenue.to_numpy())
        assert (part["label_churned"] == (part["label_orders"] == 0)).all()
        assert frame[frame.timestamp < start].customer_id.nunique() >= len(part)
