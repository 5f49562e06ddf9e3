"""What customers buy: refunds, basket size and product/category mix.

- refund_share: refunded amount / gross positive amount, over all rows by D (0 = never refunds).
- items_per_order: mean over purchases of the quantity bought (positive rows) when the transactions
  have `quantity`; otherwise the mean number of positive rows (lines) per purchase; 0 without a purchase.
- n_products, n_categories: distinct product_id / category values on positive rows by D;
  null when the transactions have no such column.
- top_category_share: share of the gross positive spend that went to the customer's top category
  (rows without a category are left out); null without `category`.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from features.orders import AMOUNT_TOLERANCE, exact_amount, ratio, rows_until


def basket_aggregates(orders: ir.Table) -> dict[str, ir.Scalar]:
    """Per-customer aggregates over the order table; `basket_columns` turns them into features."""
    o = orders
    aggregates = {
        "gross_amount": o.gross_amount.sum(),
        "refund_amount": o.refund_amount.sum(),
        "purchase_lines": o.n_lines.sum(where=o.is_purchase),
    }
    if "n_items" in o.columns:
        aggregates["purchase_items"] = o.n_items.sum(where=o.is_purchase)
    return aggregates


def basket_columns(customers: ir.Table) -> dict[str, ir.Value]:
    """refund_share and items_per_order from `basket_aggregates` (and `rfm_aggregates`) columns."""
    c = customers
    items = c.purchase_items if "purchase_items" in c.columns else c.purchase_lines
    return {
        "refund_share": ibis.ifelse(
            c.gross_amount > AMOUNT_TOLERANCE, ratio(c.refund_amount, c.gross_amount), ibis.null("float64")
        ),
        "items_per_order": ibis.ifelse(c.n_orders > 0, items.cast("float64") / c.n_orders, 0.0),
    }


def mix_tables(transactions: ir.Table, as_of: dt.date) -> list[ir.Table]:
    """Tables keyed by customer_id holding n_products and/or n_categories + top_category_share.

    Empty when the transactions have neither `product_id` nor `category` (the columns are then null).
    Only these features need the rows again: product and category are not order attributes.
    """
    rows = rows_until(transactions, as_of)
    rows = rows.filter(rows.amount > 0)
    tables = []
    if "product_id" in rows.columns:
        # distinct-then-count is faster than count(DISTINCT) in DuckDB's grouped aggregation
        products = rows.filter(rows.product_id.notnull()).select("customer_id", "product_id").distinct()
        tables.append(products.group_by("customer_id").agg(n_products=products.count()))
    if "category" in rows.columns:
        named = rows.filter(rows.category.notnull())
        spend = named.group_by("customer_id", "category").agg(spend=exact_amount(named.amount).sum())
        tables.append(
            spend.group_by("customer_id").agg(
                n_categories=spend.category.count(),
                top_category_share=ratio(spend.spend.max(), spend.spend.sum()),
            )
        )
    return tables
