"""The feature table: one row per customer with at least one order by the cut-off.

`build_features` assembles the feature groups into one Ibis expression (no engine-specific SQL):
- `features.orders`: the cut-off, the order table and the purchase sequence every group shares
  (one aggregation of the transactions, one window, one per-customer aggregation); the
  transactions are read again only for product/category mix;
- `features.rfm`: recency, frequency, monetary value, BTYD summary;
- `features.rhythm`: gaps between purchase days, 30/90/180/365-day windows, trends, Q4 share;
- `features.basket`: refunds, basket size, product and category mix;
- `features.behaviour`: events (sessions, views, carts, abandoned carts, emails, tickets);
- `features.attributes`: acquisition channel, country, days since signup.
Each module's docstring defines its features precisely.

The column set and types never depend on the input: columns that need an absent optional input
(quantity falls back to lines; product_id, category, events, customers) are null, and `has_events`
says whether behavioural columns were computed. `FEATURES_VERSION` changes whenever a definition
does, so models can record what they were trained on.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd

from features import engine
from features.attributes import attribute_table
from features.basket import basket_aggregates, basket_columns, mix_tables
from features.behaviour import BEHAVIOUR_COUNT_COLUMNS, behaviour_tables
from features.labels import LABEL_COLUMNS
from features.orders import as_of_date, as_of_value, order_table, purchase_sequence
from features.rfm import rfm_aggregates, rfm_columns
from features.rhythm import rhythm_aggregates, rhythm_columns
from features.spark import write_dataset

FEATURES_VERSION = "1.5"

FEATURE_SCHEMA: dict[str, str] = {
    "customer_id": "string",
    "as_of": "date",
    # features.rfm
    "recency_days": "int64",
    "frequency": "int64",
    "n_orders": "int64",
    "monetary_mean": "float64",
    "monetary_total": "float64",
    "tenure_days": "int64",
    "first_order_value": "float64",
    "btyd_frequency": "int64",
    "btyd_recency": "int64",
    "btyd_age": "int64",
    "btyd_monetary": "float64",
    "largest_order_value": "float64",
    "largest_repeat_order_value": "float64",
    # features.rhythm
    "gap_mean_days": "float64",
    "gap_std_days": "float64",
    "gap_last_days": "float64",
    "gap_log_mean": "float64",
    "orders_30d": "int64",
    "orders_90d": "int64",
    "orders_180d": "int64",
    "orders_365d": "int64",
    "revenue_30d": "float64",
    "revenue_90d": "float64",
    "revenue_180d": "float64",
    "revenue_365d": "float64",
    "orders_trend_30_90": "float64",
    "orders_trend_90_365": "float64",
    "revenue_trend_30_90": "float64",
    "revenue_trend_90_365": "float64",
    "q4_spend_share": "float64",
    # features.basket
    "refund_share": "float64",
    "items_per_order": "float64",
    "n_products": "float64",
    "n_categories": "float64",
    "top_category_share": "float64",
    # features.attributes
    "acquisition_channel": "string",
    "country": "string",
    "days_since_signup": "float64",
    # features.behaviour
    "has_events": "boolean",
    **{name: "float64" for name in BEHAVIOUR_COUNT_COLUMNS},
    "days_since_last_visit": "float64",
}
# Counts that may be null (absent input) are float64, so a column's dtype never depends on the data.

# Optional contract columns the feature definitions read, by table (`amount` aside: without it values are
# counted in orders, the model's value unit). Without one, features are null or computed otherwise
# (without order_id a customer-day is one order, without quantity a line is one item), so a model trained
# with it scores wrong without it (`training.loading.check_inputs`). Columns no feature reads (channel,
# birth_date, email) are not here: their absence changes no number.
FEATURE_INPUTS: dict[str, tuple[str, ...]] = {
    "transactions": ("order_id", "quantity", "product_id", "category"),
    "customers": ("signup_date", "acquisition_channel", "country"),
}

FEATURE_COLUMNS = tuple(FEATURE_SCHEMA)
ID_COLUMNS = ("customer_id", "as_of")
CATEGORICAL_COLUMNS = ("acquisition_channel", "country")
NUMERIC_COLUMNS = tuple(c for c in FEATURE_COLUMNS if c not in ID_COLUMNS and c not in CATEGORICAL_COLUMNS)
# Columns computed from money amounts (refunds move them); the boosted count and churn models leave them
# out, so a refund can never change how many orders a customer is expected to place, nor her churn.
MONEY_COLUMNS = (
    "monetary_mean",
    "monetary_total",
    "first_order_value",
    "btyd_monetary",
    "largest_order_value",
    "largest_repeat_order_value",
    *(f"revenue_{n}d" for n in (30, 90, 180, 365)),
    "revenue_trend_30_90",
    "revenue_trend_90_365",
    "q4_spend_share",
    "refund_share",
    "top_category_share",
)

__all__ = [
    "CATEGORICAL_COLUMNS",
    "FEATURES_VERSION",
    "FEATURE_COLUMNS",
    "FEATURE_INPUTS",
    "FEATURE_SCHEMA",
    "ID_COLUMNS",
    "LABEL_COLUMNS",
    "MONEY_COLUMNS",
    "NUMERIC_COLUMNS",
    "build_features",
    "compute_features",
    "write_features",
]


def build_features(
    transactions: ir.Table,
    as_of: dt.date,
    events: ir.Table | None = None,
    customers: ir.Table | None = None,
) -> ir.Table:
    """The feature table at cut-off `as_of` as a lazy Ibis expression with `FEATURE_SCHEMA`.

    Inputs are canonical tables (`features.schema`), already validated by `features.contract`:
    transactions always has order_id; its optional columns and the events/customers tables may be
    absent. Only rows with timestamp < as_of + 1 day are read. Row order is unspecified.
    """
    as_of = as_of_date(as_of)
    orders = order_table(transactions, as_of)
    sequence = purchase_sequence(orders)
    aggregates = {
        **rfm_aggregates(sequence),
        **rhythm_aggregates(sequence, as_of),
        **basket_aggregates(sequence),
    }
    per_customer = sequence.group_by("customer_id").agg(**aggregates)
    table = per_customer.select(
        "customer_id",
        **rfm_columns(per_customer, as_of),
        **rhythm_columns(per_customer),
        **basket_columns(per_customer),
    )
    extras = mix_tables(transactions, as_of)
    if events is not None:
        extras += behaviour_tables(events, orders, as_of)
    if customers is not None and (attributes := attribute_table(customers, as_of)) is not None:
        extras.append(attributes)
    for extra in extras:
        table = _left_join(table, extra)

    columns = {"as_of": as_of_value(as_of), "has_events": ibis.literal(events is not None)}
    for name, dtype in FEATURE_SCHEMA.items():
        value = columns.get(name)
        if value is None:
            value = table[name] if name in table.columns else ibis.null(dtype)
        if events is not None and name in BEHAVIOUR_COUNT_COLUMNS:
            value = value.fill_null(0)
        columns[name] = value.cast(dtype)
    return table.select(**{name: columns[name] for name in FEATURE_SCHEMA})


def compute_features(
    transactions: ir.Table,
    as_of: dt.date,
    events: ir.Table | None = None,
    customers: ir.Table | None = None,
) -> pd.DataFrame:
    """`build_features` executed to pandas, sorted by customer_id (columns in `FEATURE_COLUMNS` order)."""
    expr = build_features(transactions, as_of, events, customers)
    return engine.to_pandas(expr.order_by("customer_id"))


def write_features(
    out_path: Path | str,
    as_of: dt.date,
    transactions: ir.Table,
    events: ir.Table | None = None,
    customers: ir.Table | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Compute the feature table and write it to Parquet atomically; return a summary for the report.

    The summary: path, as_of, rows, columns, seconds, features_version. `progress` (optional)
    receives short status messages such as "computing features: 40%".
    """
    as_of = as_of_date(as_of)
    started = time.perf_counter()
    expr = build_features(transactions, as_of, events, customers)

    def report(message: str) -> None:
        if progress:
            progress(f"computing features at {as_of}: {message}")

    report("starting")
    write = write_dataset if engine.backend_name(expr) == "pyspark" else engine.write_parquet
    rows = write(expr, out_path, progress=report if progress else None)
    return {
        "path": str(out_path),
        "as_of": as_of,
        "rows": rows,
        "columns": len(FEATURE_COLUMNS),
        "seconds": round(time.perf_counter() - started, 3),
        "features_version": FEATURES_VERSION,
    }


def _left_join(left: ir.Table, right: ir.Table) -> ir.Table:
    """`left` with `right`'s columns added by customer_id (right has one row per customer)."""
    joined = left.left_join(right, left.customer_id == right.customer_id)
    return joined.select(
        *[left[c] for c in left.columns], *[right[c] for c in right.columns if c != "customer_id"]
    )
