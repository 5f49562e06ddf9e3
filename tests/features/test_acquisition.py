"""The spend file is checked like the data contract; cohorts are point in time."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pytest

from features.acquisition import cohort_months, read_spend
from features.engine import to_pandas


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("channel,spend\nads,3\n", "lacks the column(s) month"),
        ("channel,month,spend\nads,2025-01,3\nads,01/2025,4\n", "column 'month', row 2 (line 3)"),
        ("channel,month,spend\nads,2025-01,-3\n", "column 'spend', row 1 (line 2)"),
        ("channel,month,spend\n", "has no rows"),
        # Seen: "column 'month', row 1: '1' is not valid" for an unquoted 1,200, and "nan is not valid".
        ("channel,month,spend\npaid_search,2025-03,1,200\n", "row 1 has more fields than the header"),
        ("channel,month,spend\nads,2025-01,3\nads,2025-02,1,200\n", "Expected 3 fields in line 3, saw 4"),
        ("channel,month,spend\nads,2025-01,\n", "row 1 (line 2): an empty cell is not valid"),
    ],
)
def test_a_bad_spend_file_names_the_column_row_and_fix(tmp_path, text, words):
    path = tmp_path / "spend.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match="Fix:") as error:
        read_spend(path)
    assert words in str(error.value) and str(path) in str(error.value)


def test_spend_rows_of_one_channel_and_month_add_up_and_are_counted(tmp_path):
    path = tmp_path / "spend.csv"
    path.write_text("channel,month,spend\nads,2025-01,3\nads,2025-01,4.5\nseo,2025-02,0\nads,2025-01,1\n")
    spend = read_spend(path)
    assert spend.to_dict("records") == [
        {"channel": "ads", "month": pd.Period("2025-01", "M"), "spend": 8.5, "rows": 3},
        {"channel": "seo", "month": pd.Period("2025-02", "M"), "spend": 0.0, "rows": 1},
    ]


def test_a_parquet_spend_file_with_an_index_of_its_own_is_read(tmp_path):
    """The check for a CSV row with more fields than its header (pandas moves them to the index) must not
    refuse a Parquet file written from a frame with an index of its own."""
    frame = pd.DataFrame({"channel": ["ads"], "month": ["2025-01"], "spend": [3.0]}, index=pd.Index([7]))
    frame.to_parquet(tmp_path / "spend.parquet")
    assert read_spend(tmp_path / "spend.parquet")["spend"].tolist() == [3.0]


@pytest.mark.parametrize(
    "months",
    [
        pd.to_datetime(["2025-01-01", "2025-02-15"]),
        pd.to_datetime(["2025-01-01", "2025-02-15"]).tz_localize("UTC"),
        [dt.date(2025, 1, 1), dt.date(2025, 2, 15)],
    ],
)
def test_a_parquet_spend_file_may_hold_its_months_as_dates(tmp_path, months):
    """Seen refused: "column 'month', row 1: Timestamp('2025-01-01 00:00:00') is not valid"."""
    frame = pd.DataFrame({"channel": ["ads", "ads"], "month": months, "spend": [3.0, 4.0]})
    frame.to_parquet(tmp_path / "spend.parquet")
    spend = read_spend(tmp_path / "spend.parquet")
    assert spend["month"].astype(str).tolist() == ["2025-01", "2025-02"] and spend["spend"].tolist() == [
        3.0,
        4.0,
    ]


def test_cohorts_count_only_purchases_by_the_cut_off():
    frame = pd.DataFrame(
        {
            "customer_id": ["A", "A", "B", "B"],
            "timestamp": pd.to_datetime(["2025-01-10", "2025-03-02", "2025-01-20", "2025-07-01"]),
            "amount": [10.0, 20.0, 5.0, 99.0],
            "order_id": ["1", "2", "3", "4"],
        }
    )
    customers = ibis.memtable(pd.DataFrame({"customer_id": ["A"], "acquisition_channel": ["ads"]}))
    months = to_pandas(cohort_months(ibis.memtable(frame), dt.date(2025, 6, 30), customers))
    rows = {(r.acquisition_channel, r.month_offset): (r.customers, r.revenue) for r in months.itertuples()}
    assert rows == {("ads", 0): (1, 10.0), ("ads", 2): (1, 20.0), ("unknown", 0): (1, 5.0)}


def test_cohort_revenue_is_net_of_refunds_booked_as_their_own_orders():
    """A return under its own order id lowers its cohort's revenue in its month, as it lowers the
    customer's monetary_total in the score table (seen: demo refunds `O...-R` were left out, 3% too much)."""
    frame = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A"],
            "timestamp": pd.to_datetime(["2025-01-10", "2025-01-20", "2025-02-05"]),
            "amount": [100.0, -30.0, 50.0],
            "order_id": ["1", "1-R", "2"],
        }
    )
    months = to_pandas(cohort_months(ibis.memtable(frame), dt.date(2025, 6, 30)))
    rows = {r.month_offset: r.revenue for r in months.itertuples()}
    assert rows == {0: 70.0, 1: 50.0}
