"""What acquisition economics read: the spend file, and each cohort's revenue month by month, point in time.

- spend file (CSV or Parquet, `read_spend`): one row per acquisition channel and month: `channel`
  (text, as in the customers table's `acquisition_channel`), `month` (`YYYY-MM`, or a date in a
  Parquet file), `spend` (>= 0, in the shop's currency);
- `customer_cohorts(D)`: customer_id, acquisition_channel ("unknown" without a customers table or
  value), cohort_index (month of the first purchase as year x 12 + month - 1), for purchases by D
  (timestamp < D + 1 day);
- `cohort_months(D)`: acquisition_channel, cohort_index, month_offset (0 = the cohort's month),
  customers (of the cohort, in every row), revenue (net revenue of the cohort's orders in that
  month, refunds included), for rows by D.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd

from features.orders import order_table

SPEND_COLUMNS = ("channel", "month", "spend")
UNKNOWN_CHANNEL = "unknown"


def _months(values: pd.Series) -> pd.Series:
    """The month each value names, as timestamps (NaT where none): YYYY-MM text, or a date of the month,
    which a Parquet file holds as a date or timestamp column (seen refused as "Timestamp('2025-01-01
    00:00:00') is not valid")."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize(None) if values.dt.tz is not None else values
    dates = pd.Series(
        [pd.Timestamp(v) if isinstance(v, dt.date) else pd.NaT for v in values], index=values.index
    )
    return pd.to_datetime(values.astype(str), format="%Y-%m", errors="coerce").fillna(dates)


def read_spend(path: Path | str) -> pd.DataFrame:
    """channel, month (Period[M]), spend (float), rows (int): the spend file, checked, one row per channel
    and month, the spend of a month's rows summed and `rows` how many there were (a row entered twice is
    told apart from parts of one month's spend by the caller's note). ValueError names the file, column,
    row (and its line in a CSV) and fix."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"spend file {path} does not exist. Fix: pass --spend with a CSV of {', '.join(SPEND_COLUMNS)}."
        )
    is_csv = path.suffix.lower() != ".parquet"
    try:
        frame = pd.read_csv(path, dtype=str) if is_csv else pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any reader error means the file cannot be read
        raise ValueError(
            f"spend file {path} cannot be read: {str(exc).strip()}. Fix: a CSV or Parquet file with columns "
            f"{', '.join(SPEND_COLUMNS)}, numbers without a thousands separator (1200, not 1,200)."
        ) from None
    if is_csv and not isinstance(frame.index, pd.RangeIndex):
        # When the first row has more fields than the header, pandas moves the extra ones to the index (a
        # later such row is a parser error, above): an unquoted 1,200 made "paid_search,2025-03,1,200" read
        # as month '1'.
        raise ValueError(
            f"spend file {path}: row 1 has more fields than the header ({', '.join(map(str, frame.columns))}). "
            "Fix: write numbers without a thousands separator (1200, not 1,200), or quote cells that hold a comma."
        )
    missing = [c for c in SPEND_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"spend file {path} lacks the column(s) {', '.join(missing)}. Fix: one row per channel and month with "
            f"columns {', '.join(SPEND_COLUMNS)} (e.g. paid_search,2025-03,1200)."
        )
    if frame.empty:
        # Seen: a header-only file gave every channel cac 0.00 and payback 0 months, as if nothing was spent.
        raise ValueError(
            f"spend file {path} has no rows. Fix: one row per channel and month with columns "
            f"{', '.join(SPEND_COLUMNS)} (e.g. paid_search,2025-03,1200)."
        )
    month = _months(frame["month"])
    spend = pd.to_numeric(frame["spend"], errors="coerce")
    for column, bad, fix in (
        ("month", month.isna(), "months are YYYY-MM, e.g. 2025-03"),
        ("spend", spend.isna() | (spend < 0) | ~spend.abs().lt(1e12), "spend is a number from 0 to 1e12"),
        ("channel", frame["channel"].isna(), "every row names its channel"),
    ):
        if bad.any():
            row = int(bad.to_numpy().argmax())
            value = frame[column].iloc[row]
            where = f"row {row + 1} (line {row + 2})" if is_csv else f"row {row + 1}"
            raise ValueError(
                f"spend file {path}, column {column!r}, {where}: "
                f"{'an empty cell' if pd.isna(value) else repr(value)} is not valid. "
                f"Fix: {fix}."
            )
    out = pd.DataFrame(
        {
            "channel": frame["channel"].astype(str),
            "month": month.dt.to_period("M"),
            "spend": spend.astype(float),
        }
    )
    return out.groupby(["channel", "month"], as_index=False).agg(
        spend=("spend", "sum"), rows=("spend", "size")
    )


def customer_cohorts(transactions: ir.Table, as_of: dt.date, customers: ir.Table | None = None) -> ir.Table:
    """customer_id, acquisition_channel, cohort_index (module docstring)."""
    orders = order_table(transactions, as_of)
    bought = orders.filter(orders.is_purchase)
    first = bought.group_by("customer_id").agg(first_date=bought.order_date.min())
    if customers is not None and "acquisition_channel" in customers.columns:
        channels = customers.group_by("customer_id").agg(
            acquisition_channel=customers.acquisition_channel.min()
        )
        first = first.left_join(channels, "customer_id").drop("customer_id_right")
        first = first.mutate(acquisition_channel=first.acquisition_channel.fill_null(UNKNOWN_CHANNEL))
    else:
        first = first.mutate(acquisition_channel=ibis.literal(UNKNOWN_CHANNEL))
    first = first.mutate(cohort_index=first.first_date.year() * 12 + first.first_date.month() - 1)
    return first.select("customer_id", "acquisition_channel", "cohort_index")


def cohort_months(transactions: ir.Table, as_of: dt.date, customers: ir.Table | None = None) -> ir.Table:
    """acquisition_channel, cohort_index, month_offset, customers, revenue (module docstring)."""
    # Every order counts, refund-only ones too (a return booked under its own order id), so a
    # cohort's revenue is net of its refunds like the score table's monetary_total; a refund dated
    # before its customer's first purchase counts in the cohort's first month.
    orders = order_table(transactions, as_of)
    first = customer_cohorts(transactions, as_of, customers)
    sizes = first.group_by("acquisition_channel", "cohort_index").agg(customers=first.count())
    rows = orders.join(first, "customer_id")
    offset = rows.order_date.year() * 12 + rows.order_date.month() - 1 - rows.cohort_index
    rows = rows.mutate(
        month_offset=ibis.greatest(offset, 0),
        revenue=rows.net_amount.cast("float64"),
    )
    monthly = rows.group_by("acquisition_channel", "cohort_index", "month_offset").agg(
        revenue=rows.revenue.sum()
    )
    out = monthly.join(sizes, ["acquisition_channel", "cohort_index"])
    return out.select("acquisition_channel", "cohort_index", "month_offset", "customers", "revenue")
