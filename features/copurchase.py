"""What customers buy, and what they buy next: the counts cross-sell suggestions are learned from.

An *item* is a category when the transactions have `category`, else a product (`product_id`); a log
with neither has no items (`item_column` returns None) and no suggestions can be made from it.
Only purchase rows (amount > 0) count, and each count is point in time: at a cut-off D only rows
with timestamp < D + 1 day are read.

- `customer_items(D)`: customer_id, item, n_orders (orders of the customer with the item by D),
  last_date (date of the last of them);
- `item_counts(D)`: item, n_customers (customers who bought it by D);
- what follows what, between a start S and an end D (S < D), for customers who bought by S; an
  item bought in (S, D] counts only for a customer who did not yet buy it regularly by S (in
  `regular_orders` orders or more), as a suggestion would exclude it:
  `next_items(S, D)`: item, n_customers (customers who bought it next);
  `next_pairs(S, D)`: item, other, n_customers (customers who had `item` by S and bought `other`
  next; `other` may be `item`: bought again), for the `max_items` items most customers bought;
- `top_products(D)`: category, product_id, n_customers (buyers of the product), for logs with both.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from features.orders import as_of_value, day_start, rows_until

MAX_ITEMS = 200


# The columns suggestions can be made of, the first present one is: `item_column`.
ITEM_COLUMNS = ("category", "product_id")


def item_column(transactions: ir.Table) -> str | None:
    """The column suggestions are made of: `category`, else `product_id`, else None."""
    for column in ITEM_COLUMNS:
        if column in transactions.columns:
            return column
    return None


def _bought(transactions: ir.Table, as_of: dt.date, column: str) -> ir.Table:
    rows = rows_until(transactions, as_of)
    return rows.filter((rows.amount > 0) & rows[column].notnull())


def customer_items(transactions: ir.Table, as_of: dt.date, column: str) -> ir.Table:
    """customer_id, item, n_orders, last_date: what each customer bought by `as_of`."""
    rows = _bought(transactions, as_of, column)
    return rows.group_by("customer_id", item=rows[column]).agg(
        n_orders=rows.order_id.nunique(), last_date=rows.timestamp.max().date()
    )


def item_counts(transactions: ir.Table, as_of: dt.date, column: str) -> ir.Table:
    """item, n_customers: how many customers bought each item by `as_of`."""
    bought = customer_items(transactions, as_of, column)
    return bought.group_by("item").agg(n_customers=bought.customer_id.count())


def bought_next(
    transactions: ir.Table, start: dt.date, end: dt.date, column: str, regular_orders: int
) -> ir.Table:
    """customer_id, other: items bought in (start, end] by customers who bought by start, not regular by then
    (also what `features.interest.interest_outcomes` checks interest against)."""
    before = customer_items(transactions, start, column)
    rows = _bought(transactions, end, column)
    rows = rows.filter(rows.timestamp >= day_start(as_of_value(start), 1))
    later = rows.select("customer_id", other=rows[column]).distinct()
    later = later.semi_join(before, "customer_id")
    regular = before.filter(before.n_orders >= regular_orders).select("customer_id", other=before.item)
    return later.anti_join(regular, ["customer_id", "other"])


def next_items(
    transactions: ir.Table, start: dt.date, end: dt.date, column: str, regular_orders: int
) -> ir.Table:
    """item, n_customers: customers who bought by `start` and bought the item in (start, end], not regularly before."""
    later = bought_next(transactions, start, end, column, regular_orders)
    return later.group_by(item=later.other).agg(n_customers=later.customer_id.count())


def next_pairs(
    transactions: ir.Table,
    start: dt.date,
    end: dt.date,
    column: str,
    regular_orders: int,
    max_items: int = MAX_ITEMS,
) -> ir.Table:
    """item, other, n_customers: customers who had `item` by `start` and bought `other` in (start, end]."""
    top = item_counts(transactions, end, column).order_by([ibis.desc("n_customers"), "item"]).limit(max_items)
    before = customer_items(transactions, start, column).select("customer_id", "item").semi_join(top, "item")
    later = bought_next(transactions, start, end, column, regular_orders)
    later = later.semi_join(top.select(other=top.item), "other")
    pairs = before.join(later, "customer_id")
    return pairs.group_by("item", "other").agg(n_customers=pairs.customer_id.count())


def top_products(transactions: ir.Table, as_of: dt.date) -> ir.Table | None:
    """category, product_id, n_customers by `as_of`; None without both columns."""
    if not {"category", "product_id"} <= set(transactions.columns):
        return None
    rows = _bought(transactions, as_of, "category")
    rows = rows.filter(rows.product_id.notnull())
    buyers = rows.select("category", "product_id", "customer_id").distinct()
    return buyers.group_by("category", "product_id").agg(n_customers=buyers.customer_id.count())
