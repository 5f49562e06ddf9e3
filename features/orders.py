"""The cut-off and the order-level tables every feature group shares.

Cut-off semantics. `as_of` is a date D. Features see only rows with `timestamp < D + 1 day`, so the
whole day D is included (an order at 23:30 on D counts, one at 00:10 on D + 1 does not). Timestamps
are naive UTC (the contract converts them).

Orders. Rows are filtered to the cut-off first and then grouped by (customer_id, order_id), so a
refund after D does not change an order as seen at D. An order's time is the time of its earliest
row and its date is that time's date. Its net amount is the sum of its rows (refund rows are
negative). A *purchase* is an order the customer placed: one with at least one sale line (gross
amount > 0). A refund or cancellation changes its net amount, never whether or when it was placed,
so the purchase days, counts and gaps that every model of order counts reads are the same with or
without returns, and a return only lowers the money features (an order cancelled in full counts at
its net amount, 0). That is why a refund or cancellation cannot raise predicted orders or value
(README, "What the numbers mean"); when cancelled orders were not purchases, cancelling the first of
three orders left a "younger" customer with 2.5 times the predicted orders. Refund-only and free
orders (no positive row) are not purchases; their amounts still count in net revenue. "> 0" means
above `AMOUNT_TOLERANCE` (a millionth of a currency unit).

Exact sums. Money is summed as DECIMAL(38, 9) (`exact_amount`): a parallel engine adds floats in an
order that changes from run to run, so two runs on the same log gave features differing in the last
bits, and backtest Spearman 0.6991 vs 0.6980 once XGBoost split on them. Sums of decimals are exact
whatever the order; every feature is cast to its float64 type at the end (`features.pipeline`).

Purchase days. A *purchase day* is a date with at least one purchase of the customer; the BTYD and
rhythm features work on purchase days, as lifetimes does. `purchase_sequence` finds them with one
window over each customer's purchases ordered by time, which every feature group then aggregates.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.datatypes as dt_
import ibis.expr.types as ir

# Net amounts at or below this (a millionth of a currency unit) count as zero.
AMOUNT_TOLERANCE = 1e-6
# Amounts up to the contract's 1e12 with 9 decimals: sums of billions of them still fit in 38 digits.
EXACT = dt_.Decimal(38, 9)


def exact_amount(amount: ir.NumericValue) -> ir.DecimalValue:
    """An amount column as DECIMAL(38, 9), whose sums do not depend on the order of addition."""
    return amount.cast(EXACT)


def ratio(numerator: ir.NumericValue, denominator: ir.NumericValue) -> ir.FloatingValue:
    """numerator / denominator in float64, the same on every engine.

    A decimal divided by a decimal is a DOUBLE in DuckDB but a DECIMAL rounded to 6 places in Spark,
    so money shares and trends differed between the engines in the 6th digit; doubles divide alike.
    """
    return numerator.cast("float64") / denominator.cast("float64")


def as_of_date(as_of: dt.date | dt.datetime | str) -> dt.date:
    """Normalise a cut-off given as a date, a datetime (its date is used) or an ISO string."""
    if isinstance(as_of, str):
        as_of = dt.date.fromisoformat(as_of[:10])
    if isinstance(as_of, dt.datetime):
        return as_of.date()
    if isinstance(as_of, dt.date):
        return as_of
    raise TypeError(f"as_of must be a date, got {type(as_of).__name__}")


def check_cutoff(
    as_of: dt.date, first_date: dt.date, last_date: dt.date, horizon_days: int | None = None
) -> str | None:
    """Whether `as_of` suits a log whose transactions run from `first_date` to `last_date`: every command
    that takes --as-of asks here (`clv features`, `clv train`, `clv score`).

    Raises ValueError, naming the log's dates and the fix, when `as_of` is before `first_date`: no
    transaction is at or before the cut-off, so every feature would be empty. Returns a warning when
    `as_of` lies more than `horizon_days` after `last_date`, None otherwise (and without a horizon).
    The horizon is the line because past it even the latest buyer has been silent for longer than the
    window the model predicts, so every customer reads as lapsed; that is more often a log that stops
    early (an incomplete export) than a shop where nobody has bought since.
    """
    if as_of < first_date:
        raise ValueError(
            f"--as-of {as_of} is before the first transaction ({first_date}): no transaction is at or before "
            f"the cut-off, so there is nothing to compute from. Fix: use an --as-of from {first_date} to "
            f"{last_date} (without --as-of, the last transaction date is used)."
        )
    gap = (as_of - last_date).days
    if horizon_days is None or gap <= horizon_days:
        return None
    return (
        f"--as-of {as_of} is {gap:,} days after the last transaction ({last_date}), more than the "
        f"{horizon_days}-day horizon: every customer has bought nothing for longer than the model predicts "
        "ahead, so all of them look lapsed. Fix: check that the log reaches up to the cut-off, or use an "
        f"--as-of closer to {last_date}."
    )


def as_of_value(as_of: dt.date) -> ir.DateScalar:
    """The cut-off date as an Ibis literal."""
    return ibis.literal(as_of_date(as_of), type="date")


def day_start(date: ir.DateValue, days: int = 0) -> ir.TimestampValue:
    """Midnight at the start of `date + days` as a timestamp (for comparisons with `timestamp`)."""
    if days:
        date = date + ibis.interval(days=days)
    return date.cast("timestamp")


def cutoff_end(as_of: dt.date) -> ir.TimestampValue:
    """The first instant features may not see: midnight starting D + 1 day."""
    return day_start(as_of_value(as_of), 1)


def rows_until(table: ir.Table, as_of: dt.date) -> ir.Table:
    """Rows of `table` visible at cut-off `as_of` (timestamp < D + 1 day)."""
    return table.filter(table.timestamp < cutoff_end(as_of))


def order_table(transactions: ir.Table, as_of: dt.date) -> ir.Table:
    """One row per (customer_id, order_id) seen by the cut-off.

    Columns: customer_id, order_id, order_ts (earliest row), order_date, net_amount (sum of rows),
    gross_amount (sum of positive rows, 0 if none), refund_amount (minus the sum of negative rows,
    >= 0), n_lines (positive rows), n_items (sum of quantity over positive rows; only when the
    transactions have `quantity`), is_purchase (gross_amount > 0: placed; see `AMOUNT_TOLERANCE`).
    """
    rows = rows_until(transactions, as_of)
    positive = rows.amount > 0
    amount = exact_amount(rows.amount)
    aggregates = {
        "order_ts": rows.timestamp.min(),
        "net_amount": amount.sum(),
        "gross_amount": amount.sum(where=positive),
        "refund_amount": amount.sum(where=rows.amount < 0),
        "n_lines": rows.amount.count(where=positive),
    }
    if "quantity" in rows.columns:
        aggregates["n_items"] = rows.quantity.sum(where=positive)
    orders = rows.group_by("customer_id", "order_id").agg(**aggregates)
    return orders.mutate(
        order_date=orders.order_ts.date(),
        gross_amount=orders.gross_amount.fill_null(0.0),
        refund_amount=-orders.refund_amount.fill_null(0.0),
        is_purchase=orders.gross_amount.fill_null(0.0) > AMOUNT_TOLERANCE,
    )


def purchase_sequence(orders: ir.Table) -> ir.Table:
    """The order table with each purchase placed in its customer's sequence of purchases.

    Purchases are ordered by (order_ts, net_amount): purchases tied on both are interchangeable for
    every feature, so results are deterministic without sorting on the order_id string.
    Added columns, meaningful on purchases only (null or unspecified on other orders):
    prev_purchase_date (date of the previous purchase, null for the first), first_purchase_date,
    last_purchase_date (the customer's first / last purchase date by the cut-off),
    new_purchase_day (the first purchase of a purchase day: False on non-purchases),
    gap_days (days since the previous purchase day, on new_purchase_day rows except the first).
    """
    # Non-purchases form their own partition, so the neighbours of a purchase are purchases.
    window = ibis.window(
        group_by=[orders.customer_id, orders.is_purchase], order_by=[orders.order_ts, orders.net_amount]
    )
    seq = orders.mutate(
        prev_purchase_date=orders.order_date.lag().over(window),
        first_purchase_date=orders.order_date.first().over(window),
        last_purchase_date=orders.order_date.last().over(window),
    )
    new_day = seq.is_purchase & (seq.prev_purchase_date.isnull() | (seq.prev_purchase_date != seq.order_date))
    return seq.mutate(
        new_purchase_day=new_day,
        gap_days=ibis.ifelse(
            new_day, seq.order_date.delta(seq.prev_purchase_date, unit="day"), ibis.null("int64")
        ),
    )
