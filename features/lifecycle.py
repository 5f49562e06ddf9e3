"""Lifecycle moments of each customer at a cut-off D, for campaign lists (`models.campaigns`).

Point in time like every feature: only transactions and events at or before D (timestamp < D + 1 day).

- first_order_date, last_order_date: dates of the customer's first and last purchase by D;
- birth_date: from the customers table (null without the table or the column; the first row's value);
- last_cart_date: date of the customer's last add_to_cart or checkout_start event by D that no
  purchase followed (no order at or after it by D); null without events or without such an event;
- last_cart_item: what that cart or checkout was about, when events name it (optional event columns
  `product_id`, `category`): "P0162 (fashion)" with both, else the one given; null otherwise. Of
  several such events in its last second, the first item in text order (engines agree on it).
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from features.orders import order_table, rows_until

CART_EVENTS = ("add_to_cart", "checkout_start")


def lifecycle_table(
    transactions: ir.Table, as_of: dt.date, events: ir.Table | None = None, customers: ir.Table | None = None
) -> ir.Table:
    """customer_id and the columns of the module docstring, one row per customer with a purchase by D."""
    orders = order_table(transactions, as_of)
    bought = orders.filter(orders.is_purchase)
    table = bought.group_by("customer_id").agg(
        first_order_date=bought.order_ts.min().date(),
        last_order_ts=bought.order_ts.max(),
    )
    if events is not None:
        seen = rows_until(events, as_of)
        carts = seen.filter(seen.event_type.isin(CART_EVENTS))
        last_cart = carts.group_by("customer_id").agg(last_cart_ts=carts.timestamp.max())
        last_cart = last_cart.left_join(_cart_items(carts), "customer_id").select(last_cart, "last_cart_item")
        table = table.left_join(last_cart, "customer_id").drop("customer_id_right")
        abandoned = table.last_cart_ts > table.last_order_ts
        table = table.mutate(
            last_cart_date=ibis.ifelse(abandoned, table.last_cart_ts.date(), ibis.null("date")),
            last_cart_item=ibis.ifelse(abandoned, table.last_cart_item, ibis.null("string")),
        ).drop("last_cart_ts")
    else:
        table = table.mutate(last_cart_date=ibis.null("date"), last_cart_item=ibis.null("string"))
    if customers is not None and "birth_date" in customers.columns:
        births = customers.group_by("customer_id").agg(birth_date=customers.birth_date.cast("date").min())
        table = table.left_join(births, "customer_id").drop("customer_id_right")
    else:
        table = table.mutate(birth_date=ibis.null("date"))
    return table.mutate(last_order_date=table.last_order_ts.date()).select(
        "customer_id", "first_order_date", "last_order_date", "birth_date", "last_cart_date", "last_cart_item"
    )


def _cart_items(carts: ir.Table) -> ir.Table:
    """customer_id, last_cart_item: the item of each customer's last cart or checkout (null without one)."""
    product = carts.product_id.cast("string") if "product_id" in carts.columns else ibis.null("string")
    category = carts.category.cast("string") if "category" in carts.columns else ibis.null("string")
    label = ibis.coalesce(product + " (" + category + ")", product, category)
    last = carts.mutate(
        label=label, is_last=carts.timestamp == carts.timestamp.max().over(group_by="customer_id")
    )
    last = last.filter(last.is_last)
    return last.group_by("customer_id").agg(last_cart_item=last.label.min())
