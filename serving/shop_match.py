"""Whether a score table belongs to the shop it is combined with (`clv campaigns`, `clv economics`,
`POST /campaigns`, `GET /economics`): one check, so the command line and the service refuse alike.

A score table written by `clv score` holds exactly the customers with an order in the log by its
as_of, in the log's value unit. Combined with another shop's log, its values were summed with the
other shop's revenue and its campaign dates taken from the other shop's customers (ids such as 1, 2,
3... are shared by unrelated shops). So the table must state the log's unit (`value_unit`), and most
customers must be on both sides: of the table's customers, the share with an order in the log by
as_of, and of the log's customers by as_of, the share in the table. Below `OTHER_SHOP` either way the
table is refused; below `SAME_SHOP` it is used with a warning.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from features.contract import Shop
from features.engine import to_pandas
from features.orders import rows_until

# A table scored from this log has 100% both ways; customers removed from the log since, or orders that
# arrived late, cost a few percent. Under half, the two are other shops (or other parts of one).
OTHER_SHOP = 0.5
SAME_SHOP = 0.9
FIX = (
    "Fix: score this shop with `clv score` (the same --transactions and --customers) and pass that "
    "table (--scores; for the service, [serve] scores), or pass the log the scores were made from."
)


def check_same_shop(scores: pd.DataFrame, as_of: dt.date, shop: Shop) -> list[str]:
    """Warnings when `scores` (as of `as_of`) shares under `SAME_SHOP` of its customers with `shop`'s log
    either way; ValueError, naming the cause and the fix, when it was not made from that log: another
    value unit (or none stated), or under `OTHER_SHOP` in common either way."""
    unit = shop.report.value_unit
    stated = set(scores["value_unit"].dropna().astype(str)) if "value_unit" in scores else set()
    if stated != {unit}:
        said = f"values in {', '.join(sorted(stated))}" if stated else "no value_unit column"
        raise ValueError(
            f"the score table has {said}, but the transactions' values are in {unit} "
            f"({'they have no amount column' if unit == 'orders' else 'they have amounts'}): adding the two "
            f"would mix orders with money. {FIX}"
        )
    buyers = log_customers(shop, as_of)
    scored = set(scores["customer_id"].astype(str))
    common = len(buyers & scored)
    in_log = common / len(scored) if scored else 1.0
    in_scores = common / len(buyers) if buyers else 1.0
    shares = (
        f"{in_log:.0%} of its {len(scored):,} customers have an order in the transactions by then, and "
        f"{in_scores:.0%} of the log's {len(buyers):,} customers by then have a score"
    )
    if min(in_log, in_scores) < OTHER_SHOP:
        raise ValueError(
            f"the score table (as_of {as_of}) is not this log's: {shares} (at least {OTHER_SHOP:.0%} each "
            f"way are needed). {FIX}"
        )
    if min(in_log, in_scores) < SAME_SHOP:
        return [
            f"the score table (as_of {as_of}) differs from this log: {shares}; the customers on one side only "
            f"count no predicted value or get no dates. {FIX}"
        ]
    return []


def log_customers(shop: Shop, as_of: dt.date) -> set[str]:
    """The ids (as text) of the customers with a row in `shop`'s transactions at or before `as_of`."""
    rows = rows_until(shop.tables()["transactions"], as_of)
    return set(to_pandas(rows.select("customer_id").distinct())["customer_id"].astype(str))
