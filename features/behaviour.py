"""Behavioural features from the optional events table (customer_id, timestamp, event_type).

Events obey the same cut-off as transactions (timestamp < D + 1 day). A window of N days ending at
D holds the events dated D - N + 1 to D. Counts are 0, never null, when a customer has no such
event; without an events table every column here is null and `has_events` is False.

- sessions_{30,90}d: visits started in the window. A visit is a run of on-site events
  (`ON_SITE_EVENTS`) of one customer with no gap over 30 minutes, so it works whether or not the
  shop logs `session_start` (a run's first event inside the 90-day window starts a visit).
- product_views_{30,90}d, add_to_cart_{30,90}d, checkout_starts_90d, email_opens_{30,90}d,
  email_clicks_{30,90}d, support_tickets_90d: events of that type in the window.
- abandoned_carts_{30,90}d: add_to_cart events in the window not followed by a purchase of the
  same customer within 24 hours (order time in [t, t + 24h]). Only carts whose 24 hours ended
  before the cut-off are counted (t + 24h < D + 1 day, i.e. carts added before 00:00 on D), so
  the answer never depends on orders after the cut-off.
- days_since_last_visit: D - date of the last on-site event by D; null when there is none.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from features.orders import as_of_value, day_start, rows_until

ON_SITE_EVENTS = ("session_start", "page_view", "product_view", "add_to_cart", "checkout_start", "review")
SESSION_GAP_MINUTES = 30
CART_WINDOW_HOURS = 24

# feature name -> (event type, windows in days)
EVENT_COUNTS = {
    "product_views": ("product_view", (30, 90)),
    "add_to_cart": ("add_to_cart", (30, 90)),
    "checkout_starts": ("checkout_start", (90,)),
    "email_opens": ("email_open", (30, 90)),
    "email_clicks": ("email_click", (30, 90)),
    "support_tickets": ("support_ticket", (90,)),
}

# Every event type a feature reads. Scored on an events table without one of them (a feed that stopped
# sending emails, say), a model trained with it would read "none" for every customer
# (`training.loading.check_inputs`).
FEATURE_EVENT_TYPES = tuple(dict.fromkeys([*ON_SITE_EVENTS, *(kind for kind, _ in EVENT_COUNTS.values())]))

BEHAVIOUR_COUNT_COLUMNS = (
    "sessions_30d",
    "sessions_90d",
    "product_views_30d",
    "product_views_90d",
    "add_to_cart_30d",
    "add_to_cart_90d",
    "abandoned_carts_30d",
    "abandoned_carts_90d",
    "checkout_starts_90d",
    "email_opens_30d",
    "email_opens_90d",
    "email_clicks_30d",
    "email_clicks_90d",
    "support_tickets_90d",
)
BEHAVIOUR_COLUMNS = (*BEHAVIOUR_COUNT_COLUMNS, "days_since_last_visit")


def behaviour_tables(events: ir.Table, orders: ir.Table, as_of: dt.date) -> list[ir.Table]:
    """Tables keyed by customer_id that together hold `BEHAVIOUR_COLUMNS` (counts may be null = 0).

    `orders` is the order table at the same cut-off (`features.orders.order_table`).
    """
    d = as_of_value(as_of)
    rows = rows_until(events, as_of)
    return [_event_counts(rows, d), _sessions(rows, d), _abandoned_carts(rows, orders, d)]


def _since(rows: ir.Table, d: ir.DateScalar, days: int) -> ir.BooleanValue:
    """Events dated in the `days` days ending at D."""
    return rows.timestamp >= day_start(d, 1 - days)


def _event_counts(rows: ir.Table, d: ir.DateScalar) -> ir.Table:
    counts = {
        f"{name}_{n}d": rows.event_type.count(where=(rows.event_type == event_type) & _since(rows, d, n))
        for name, (event_type, windows) in EVENT_COUNTS.items()
        for n in windows
    }
    counts["last_visit"] = rows.timestamp.max(where=rows.event_type.isin(ON_SITE_EVENTS))
    table = rows.group_by("customer_id").agg(**counts)
    return table.mutate(days_since_last_visit=d.delta(table.last_visit.date(), unit="day")).drop("last_visit")


def _sessions(rows: ir.Table, d: ir.DateScalar) -> ir.Table:
    visits = rows.filter(rows.event_type.isin(ON_SITE_EVENTS) & _since(rows, d, 90))
    window = ibis.window(group_by=visits.customer_id, order_by=visits.timestamp)
    visits = visits.mutate(previous=visits.timestamp.lag().over(window))
    gap = ibis.interval(minutes=SESSION_GAP_MINUTES)
    visits = visits.mutate(starts=visits.previous.isnull() | (visits.previous + gap < visits.timestamp))
    return visits.group_by("customer_id").agg(
        sessions_30d=visits.starts.sum(where=_since(visits, d, 30)),
        sessions_90d=visits.starts.sum(),
    )


def _abandoned_carts(rows: ir.Table, orders: ir.Table, d: ir.DateScalar) -> ir.Table:
    carts = rows.filter(
        (rows.event_type == "add_to_cart") & _since(rows, d, 90) & (rows.timestamp < day_start(d))
    ).select("customer_id", "timestamp")
    purchases = orders.filter(orders.is_purchase & (orders.order_ts >= day_start(d, -89))).select(
        "customer_id", "order_ts"
    )
    abandoned = carts.anti_join(
        purchases,
        [
            carts.customer_id == purchases.customer_id,
            purchases.order_ts >= carts.timestamp,
            purchases.order_ts <= carts.timestamp + ibis.interval(hours=CART_WINDOW_HOURS),
        ],
    )
    return abandoned.group_by("customer_id").agg(
        abandoned_carts_30d=abandoned.timestamp.count(where=_since(abandoned, d, 30)),
        abandoned_carts_90d=abandoned.timestamp.count(),
    )
