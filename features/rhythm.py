"""Purchase rhythm and recent activity, from the purchase sequence (`features.orders`).

- gap_mean_days, gap_std_days (sample, ddof=1), gap_last_days: days between consecutive purchase
  days. Null when undefined: mean and last need >= 2 purchase days, std needs >= 3.
- gap_log_mean: mean of ln(gap in days) over the same gaps (the log of their geometric mean), null
  below 2 purchase days. With btyd_frequency it gives the sum of log gaps, the statistic by which
  the likelihood of Erlang-k purchase timing tells regular buyers from Poisson ones
  (`models.regularity`). Summed as whole 1e-9 units so that every run gives the same value.
- orders_{N}d: purchases dated in the N days ending at D (order date in (D - N, D]);
  revenue_{N}d: net amount of all orders dated in that window (refunds are counted with their
  order's date). Windows are 30, 90, 180 and 365 days; empty windows give 0, never null.
- orders_trend_{S}_{L} = orders_{S}d / (orders_{L}d * S / L): the short window's rate relative to the
  long window's (1 = steady, > 1 = speeding up, 0 = nothing recent). Null when orders_{L}d == 0.
  revenue_trend_{S}_{L} likewise, null when revenue_{L}d <= 0; with refunds it can be negative or
  exceed L / S (the net long-window revenue can be small). Pairs (30, 90) and (90, 365).
  Without refunds both trends lie in [0, L / S].
- q4_spend_share: share of the purchases' net amount dated October to December (0 without a purchase).
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from features.orders import AMOUNT_TOLERANCE, as_of_value, ratio

WINDOWS = (30, 90, 180, 365)
LOG_UNITS = 1e9  # ln(gap) is summed in whole 1e-9 units (integers add up the same in any order)
TRENDS = ((30, 90), (90, 365))


def rhythm_aggregates(orders: ir.Table, as_of: dt.date) -> dict[str, ir.Scalar]:
    """Per-customer aggregates over `purchase_sequence(orders)`; `rhythm_columns` makes the features."""
    d = as_of_value(as_of)
    o = orders
    p = o.is_purchase
    aggregates = {
        "gap_mean_days": o.gap_days.mean(),
        # From exact integer sums (a parallel stddev merges partial results in a varying order).
        "gap_count": o.gap_days.count(),
        "gap_sum": o.gap_days.sum(),
        "gap_sum_squares": (o.gap_days * o.gap_days).sum(),
        "gap_log_units": (o.gap_days.cast("float64").ln() * LOG_UNITS).round().cast("int64").sum(),
        "gap_last_days": o.gap_days.sum(where=o.new_purchase_day & (o.order_date == o.last_purchase_date)),
        "q4_value": o.net_amount.sum(where=p & (o.order_date.month() >= 10)),
    }
    for n in WINDOWS:
        in_window = o.order_date > d - ibis.interval(days=n)
        aggregates[f"orders_{n}d"] = o.order_id.count(where=p & in_window)
        aggregates[f"revenue_{n}d"] = o.net_amount.sum(where=in_window)
    return aggregates


def rhythm_columns(customers: ir.Table) -> dict[str, ir.Value]:
    """The rhythm features from the columns `rhythm_aggregates` (and `rfm_aggregates`) produced."""
    c = customers
    columns = {
        "gap_mean_days": c.gap_mean_days.cast("float64"),
        "gap_std_days": _sample_std(c.gap_count, c.gap_sum, c.gap_sum_squares),
        "gap_last_days": c.gap_last_days.cast("float64"),
        "gap_log_mean": ibis.ifelse(
            c.gap_count > 0, c.gap_log_units.cast("float64") / LOG_UNITS / c.gap_count, ibis.null("float64")
        ),
    }
    for n in WINDOWS:
        columns[f"orders_{n}d"] = c[f"orders_{n}d"].fill_null(0).cast("int64")
        columns[f"revenue_{n}d"] = c[f"revenue_{n}d"].fill_null(0.0)
    for short, long in TRENDS:
        orders_s, orders_l = columns[f"orders_{short}d"], columns[f"orders_{long}d"]
        revenue_s, revenue_l = columns[f"revenue_{short}d"], columns[f"revenue_{long}d"]
        # In double: Spark SQL reads the literal as a decimal, and decimal products are rounded.
        scale = ibis.literal(short / long, "float64")
        columns[f"orders_trend_{short}_{long}"] = ibis.ifelse(
            orders_l > 0, ratio(orders_s, orders_l.cast("float64") * scale), ibis.null("float64")
        )
        columns[f"revenue_trend_{short}_{long}"] = ibis.ifelse(
            revenue_l > AMOUNT_TOLERANCE,
            ratio(revenue_s, revenue_l.cast("float64") * scale),
            ibis.null("float64"),
        )
    columns["q4_spend_share"] = ibis.ifelse(
        c.purchase_value > AMOUNT_TOLERANCE, ratio(c.q4_value.fill_null(0.0), c.purchase_value), 0.0
    )
    return columns


def _sample_std(n: ir.IntegerValue, total: ir.IntegerValue, squares: ir.IntegerValue) -> ir.FloatingValue:
    """Sample standard deviation from the count, sum and sum of squares of integers; null below 2 values.

    n * sum(x^2) - sum(x)^2 is computed in integers, so it is exact (0 for equal gaps) and the same in
    every run: sqrt((n S2 - S1^2) / (n (n - 1))).
    """
    numerator = (n * squares - total * total).cast("float64")
    return ibis.ifelse(n >= 2, (numerator / (n * (n - 1)).cast("float64")).sqrt(), ibis.null("float64"))
