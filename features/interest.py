"""What customers showed interest in and did not buy: viewed or carted items at a cut-off D.

Events may name what they were about (`product_id`, `category`: optional event columns,
`features.schema.EVENTS`). An event is about an item when it is a product_view, add_to_cart or
checkout_start whose column of the suggestions' items (`features.copurchase.item_column`) is set;
events without that column carry no items (`has_items` is False) and nothing here applies.

Point in time like every feature: only events and purchases with timestamp < D + 1 day are read.

- `interest_items(D)`: customer_id, item, carted, last_date: items a customer viewed or carted in
  the `days` days up to and including D and did not buy since (no purchase of the item after the
  event, by D). Only events after her last purchase of the item count, so a cart that she then
  bought is no evidence; `carted` is True when one of them was a cart or checkout, `last_date` is the
  date of her last cart of it (of her last view when she only viewed it).
- `interest_outcomes(S, D)`: customer_id, item, carted, bought_next: the interest at S of customers
  who bought by S (items they did not buy regularly by S), and whether they bought the item in
  (S, D]. The weight of interest in the suggestions is learned from this, before the cut-off.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from features.copurchase import bought_next, customer_items
from features.orders import as_of_value, day_start, rows_until

VIEW_EVENTS = ("product_view",)
CART_EVENTS = ("add_to_cart", "checkout_start")


def has_items(events: ir.Table | None, column: str | None) -> bool:
    """Whether `events` name their items in `column` (the transactions' item column)."""
    return events is not None and column is not None and column in events.columns


def interest_items(
    transactions: ir.Table, events: ir.Table, as_of: dt.date, column: str, days: int
) -> ir.Table:
    """customer_id, item, carted, last_date: viewed or carted in the `days` days up to `as_of`, not bought since.

    Raises ValueError when `days` < 1 (a window must hold at least the cut-off day).
    """
    if days < 1:
        raise ValueError(f"the interest window must be at least 1 day, got {days}")
    rows = rows_until(events, as_of)
    rows = rows.filter(
        rows.event_type.isin(VIEW_EVENTS + CART_EVENTS)
        & rows[column].notnull()
        & (rows.timestamp >= day_start(as_of_value(as_of), 1 - days))
    )
    rows = rows.select("customer_id", "timestamp", "event_type", item=rows[column])
    bought = rows_until(transactions, as_of)
    bought = bought.filter((bought.amount > 0) & bought[column].notnull())
    last_buy = bought.group_by("customer_id", item=bought[column]).agg(last_buy=bought.timestamp.max())
    rows = rows.left_join(last_buy, ["customer_id", "item"]).select(rows, "last_buy")
    rows = rows.filter(rows.last_buy.isnull() | (rows.timestamp > rows.last_buy))
    is_cart = rows.event_type.isin(CART_EVENTS)
    found = rows.group_by("customer_id", "item").agg(
        last_cart=rows.timestamp.max(where=is_cart), last_view=rows.timestamp.max()
    )
    return found.select(
        "customer_id",
        "item",
        carted=found.last_cart.notnull(),
        last_date=ibis.coalesce(found.last_cart, found.last_view).date(),
    )


def interest_outcomes(
    transactions: ir.Table,
    events: ir.Table,
    start: dt.date,
    end: dt.date,
    column: str,
    days: int,
    regular_orders: int,
) -> ir.Table:
    """customer_id, item, carted, bought_next: interest at `start` of customers who bought by `start`
    (items they did not buy regularly by then), and whether they bought it in (start, end]."""
    before = customer_items(transactions, start, column)
    interest = interest_items(transactions, events, start, column, days)
    interest = interest.semi_join(before, "customer_id")
    regular = before.filter(before.n_orders >= regular_orders).select("customer_id", "item")
    interest = interest.anti_join(regular, ["customer_id", "item"])
    later = bought_next(transactions, start, end, column, regular_orders)
    later = later.select("customer_id", item=later.other, bought_next=ibis.literal(True))
    joined = interest.left_join(later, ["customer_id", "item"]).select(interest, "bought_next")
    return joined.select("customer_id", "item", "carted", bought_next=joined.bought_next.fill_null(False))
