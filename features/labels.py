"""What happened after the cut-off: the targets over a label window of L days.

The label window for cut-off D is D + 1 day <= timestamp < D + 1 + L days (the L whole days after D),
disjoint from what the features see (timestamp < D + 1 day). Rows after the window are never read.

- label_revenue: net revenue in the window: the sum of all rows in it, refunds included (also
  refunds of orders placed before D). It is kept net, so it can be negative; it is not clipped.
- label_orders: purchases in the window: orders whose date (earliest row) is in the window and
  whose net amount over the rows up to the window's end is > 0. An order placed by D with a line
  or refund inside the window is not a new purchase (its amounts do count in label_revenue).
- label_churned: label_orders == 0.
- next order (`next_order_label`, for the next-order backtest): days from D to the date of the first
  of those purchases, null when there is none in the window.
- items bought (`item_label`, for the cross-sell backtest): the items (`features.copurchase`) on
  purchase rows (amount > 0) in the window.

Labels are computed for a population (by default the customers with an order by D, i.e. those
in the feature table); customers without activity in the window get 0.0 / 0 / True.
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.types as ir

from features.orders import AMOUNT_TOLERANCE, as_of_value, day_start, exact_amount, order_table

LABEL_SCHEMA = {"label_revenue": "float64", "label_orders": "int64", "label_churned": "boolean"}
LABEL_COLUMNS = tuple(LABEL_SCHEMA)


def label_window(transactions: ir.Table, as_of: dt.date, label_days: int) -> ir.Table:
    """customer_id, label_revenue, label_orders for customers with rows in the label window."""
    _check_label_days(label_days)
    d = as_of_value(as_of)
    start, end = day_start(d, 1), day_start(d, 1 + label_days)
    rows = transactions.filter(transactions.timestamp < end)
    orders = rows.group_by("customer_id", "order_id").agg(
        order_ts=rows.timestamp.min(),
        net_amount=exact_amount(rows.amount).sum(),
        window_amount=exact_amount(rows.amount).sum(where=rows.timestamp >= start),
    )
    orders = orders.filter(orders.window_amount.notnull())
    return orders.group_by("customer_id").agg(
        label_revenue=orders.window_amount.sum(),
        label_orders=orders.order_id.count(
            where=(orders.order_ts >= start) & (orders.net_amount > AMOUNT_TOLERANCE)
        ),
    )


def next_order_label(transactions: ir.Table, as_of: dt.date, label_days: int) -> ir.Table:
    """customer_id, days_to_next_order (int64, 1..L: days from D to the first purchase in the window).

    Only customers with a purchase in the window (as `label_orders` counts them) have a row.
    """
    _check_label_days(label_days)
    d = as_of_value(as_of)
    start, end = day_start(d, 1), day_start(d, 1 + label_days)
    rows = transactions.filter(transactions.timestamp < end)
    orders = rows.group_by("customer_id", "order_id").agg(
        order_ts=rows.timestamp.min(), net_amount=exact_amount(rows.amount).sum()
    )
    placed = orders.filter((orders.order_ts >= start) & (orders.net_amount > AMOUNT_TOLERANCE))
    first = placed.group_by("customer_id").agg(first_date=placed.order_ts.min().date())
    return first.select("customer_id", days_to_next_order=first.first_date.delta(d, unit="day").cast("int64"))


def item_label(transactions: ir.Table, as_of: dt.date, label_days: int, column: str) -> ir.Table:
    """customer_id, item: the distinct values of `column` each customer bought in the window."""
    _check_label_days(label_days)
    d = as_of_value(as_of)
    start, end = day_start(d, 1), day_start(d, 1 + label_days)
    rows = transactions.filter(
        (transactions.timestamp >= start)
        & (transactions.timestamp < end)
        & (transactions.amount > 0)
        & transactions[column].notnull()
    )
    return rows.select("customer_id", item=rows[column]).distinct()


def attach_labels(table: ir.Table, transactions: ir.Table, as_of: dt.date, label_days: int) -> ir.Table:
    """`table` (one row per customer_id) with the label columns added; no activity -> 0, 0, True."""
    window = label_window(transactions, as_of, label_days)
    joined = table.left_join(window, table.customer_id == window.customer_id)
    orders = joined.label_orders.fill_null(0).cast("int64")
    return joined.select(
        *[joined[c] for c in table.columns],
        label_revenue=joined.label_revenue.fill_null(0.0).cast("float64"),
        label_orders=orders,
        label_churned=orders == 0,
    )


def build_labels(
    transactions: ir.Table, as_of: dt.date, label_days: int, population: ir.Table | None = None
) -> ir.Table:
    """customer_id, as_of, label_revenue, label_orders, label_churned for the population.

    `population` is any table with a customer_id column (one row per customer); by default the
    customers with at least one order by `as_of`, the rows of `build_features`.
    """
    if population is None:
        orders = order_table(transactions, as_of)
        population = orders.select("customer_id").distinct()
    else:
        population = population.select("customer_id")
    population = population.mutate(as_of=as_of_value(as_of))
    return attach_labels(population, transactions, as_of, label_days)


def _check_label_days(label_days: int) -> None:
    if int(label_days) != label_days or label_days < 1:
        raise ValueError(f"label_days must be a positive whole number of days, got {label_days!r}")
