"""Recency, frequency, monetary value and the BTYD summary, from the purchase sequence (`features.orders`).

All day counts are whole days between dates; D is the cut-off date.

Every customer with at least one order by D has a row, also one whose orders are all refunds or
free (no sale line): such a customer has no purchase (n_orders 0), and her first order date stands
in for the first and last purchase dates (the day the shop first saw her). That date is a fact of
the log, not a purchase: the models read such a customer as a one-time buyer from the start of the
log and targeting calls her `no_purchase` (`models.predictor`, `models.targeting`).

Order-based (purchases = orders placed, with a sale line, refunded or cancelled or not; see
`features.orders`):
- recency_days: D - date of the last purchase (of the first order without a purchase).
- n_orders: number of purchases; frequency: n_orders - 1 (0 without a purchase).
- monetary_mean: net revenue per purchase, monetary_total / n_orders (0 without a purchase). A
  refund booked as an order of its own (a credit note, "O123-R") is part of it: it returns part of
  some purchase, and a customer who sends back half of what she buys is worth half of it per order
  (seen: a demo customer who bought 1,211 and returned 344 was valued at 947 per order). A
  cancelled purchase counts at its net amount, so the mean can be 0 or less.
- monetary_total: net revenue by D: every order's net amount, refund-only orders included (can be
  negative).
- tenure_days: D - date of the first purchase (of the first order without a purchase).
- first_order_value: net amount of the earliest purchase (by order time); 0 without a purchase.

BTYD summary, as lifetimes' `summary_data_from_transaction_data(freq="D")` on the purchases (Fader,
Hardie and Lee 2005; values net of refund-only orders, which lifetimes would count as purchases of
their own): the unit is the purchase day (a day with >= 1 purchase),
whose value is the sum of the net amounts of that day's purchases.
- btyd_frequency: purchase days - 1 (repeat purchase days); 0 without a purchase.
- btyd_recency: days from the first to the last purchase day (0 for one purchase day).
- btyd_age: days from the first purchase day to D (lifetimes' T; equals tenure_days).
- btyd_monetary: mean value of the repeat purchase days (the first purchase day excluded), net of
  her refund-only orders in proportion to each day's value: x monetary_total / (net value of her
  purchases) when that is > 0, and at least 0. Which purchase a credit note returns is not in the
  log; in proportion, a customer who returns the same share of every order gets the same value
  whichever way the shop books it. When refunds leave her purchases' net value at 0 or less, her
  refund-only orders return everything: x 0 (x 1 without any). The factor never rises with a
  refund: at 1 there, a full refund of a first order of 45 beside four repeat orders of 1 and a
  credit note of 0.1 raised her repeat mean from 0.998 to 1.0, and her predicted value with it.
  0 when btyd_frequency == 0. It can be 0 or less when refunds cancel those days' orders:
  Gamma-Gamma is fitted on the customers whose value is > 0 and reads the others at 0
  (`models.gamma_gamma`).

Largest single purchases, for the spend model's outlier cap (`models.outliers.capped_mean`): one order
of 2.5e9 in a shop of 60s makes a customer's mean order 5e7, and capping only the mean at the shop's
fence still leaves her five times the shop's mean, enough to move the population's Gamma-Gamma
parameters and so every other customer's order value. With her largest order the cap can count that
one order at the fence instead.
- largest_order_value: net amount of her largest purchase (0 without a purchase).
- largest_repeat_order_value: net amount of her largest purchase after her first purchase day, the
  orders `btyd_monetary` averages (0 when btyd_frequency == 0).
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from features.orders import AMOUNT_TOLERANCE, as_of_value, order_table, purchase_sequence, ratio


def rfm_aggregates(orders: ir.Table) -> dict[str, ir.Scalar]:
    """Per-customer aggregates over `purchase_sequence(orders)`; `rfm_columns` turns them into features."""
    o = orders
    p = o.is_purchase
    return {
        "n_orders": o.order_id.count(where=p),
        "n_purchase_days": o.order_id.count(where=o.new_purchase_day),
        "first_purchase_date": o.order_date.min(where=p),
        "last_purchase_date": o.order_date.max(where=p),
        "purchase_value": o.net_amount.sum(where=p),
        "first_day_value": o.net_amount.sum(where=p & (o.order_date == o.first_purchase_date)),
        "first_order_value": o.net_amount.sum(where=p & o.prev_purchase_date.isnull()),
        "largest_order": o.net_amount.max(where=p),
        "largest_repeat_order": o.net_amount.max(where=p & (o.order_date != o.first_purchase_date)),
        "monetary_total": o.net_amount.sum(),
        "first_order_date": o.order_date.min(),
    }


def rfm_columns(customers: ir.Table, as_of: dt.date) -> dict[str, ir.Value]:
    """The RFM and BTYD features from the columns `rfm_aggregates` produced."""
    d = as_of_value(as_of)
    c = customers
    btyd_frequency = ibis.greatest(c.n_purchase_days - 1, 0)
    first = c.first_purchase_date.fill_null(c.first_order_date)
    last = c.last_purchase_date.fill_null(c.first_order_date)
    return {
        "recency_days": d.delta(last, unit="day"),
        "frequency": ibis.greatest(c.n_orders - 1, 0),
        "n_orders": c.n_orders,
        "monetary_mean": ibis.ifelse(c.n_orders > 0, ratio(c.monetary_total, c.n_orders), 0.0),
        "monetary_total": c.monetary_total,
        "tenure_days": d.delta(first, unit="day"),
        "first_order_value": c.first_order_value.fill_null(0.0),
        "btyd_frequency": btyd_frequency,
        "btyd_recency": last.delta(first, unit="day"),
        "btyd_age": d.delta(first, unit="day"),
        "btyd_monetary": ibis.ifelse(
            btyd_frequency > 0,
            ratio(c.purchase_value - c.first_day_value, btyd_frequency)
            * ibis.ifelse(
                c.purchase_value > AMOUNT_TOLERANCE,
                ibis.greatest(ratio(c.monetary_total, c.purchase_value), 0.0),
                ibis.ifelse(c.monetary_total < c.purchase_value - AMOUNT_TOLERANCE, 0.0, 1.0),
            ),
            0.0,
        ),
        "largest_order_value": c.largest_order.fill_null(0.0),
        "largest_repeat_order_value": c.largest_repeat_order.fill_null(0.0),
    }


def build_rfm(transactions: ir.Table, as_of: dt.date) -> ir.Table:
    """Only the RFM/BTYD columns (customer_id, as_of, then `rfm_columns`), for the BTYD models.

    Same definitions and rows as `features.pipeline.build_features`, without the other groups.
    """
    orders = purchase_sequence(order_table(transactions, as_of))
    per_customer = orders.group_by("customer_id").agg(**rfm_aggregates(orders))
    return per_customer.select("customer_id", as_of=as_of_value(as_of), **rfm_columns(per_customer, as_of))
