"""A shop's canonical tables as Ibis expressions, on either engine: what training, backtests and scoring read.

`ShopData.from_shop` takes a shop loaded by `features.contract` (DuckDB) or `features.spark`; every
query it runs (features, labelled snapshots, the span of the log) executes where the tables live.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import pandas as pd

from features.contract import Shop
from features.engine import to_pandas
from features.labels import attach_labels
from features.orders import check_cutoff
from features.pipeline import build_features, compute_features
from features.snapshots import make_snapshots
from features.spark import SparkShop
from training.windows import WindowPlan


@dataclass(frozen=True)
class ShopData:
    """The shop's canonical tables as Ibis expressions, and the span of its transactions."""

    transactions: ir.Table
    events: ir.Table | None
    customers: ir.Table | None
    first_date: dt.date
    last_date: dt.date
    # "currency", or "orders" for a log without amounts (features.contract.ValidationReport.value_unit).
    value_unit: str = "currency"
    # Table name -> the contract columns its file has (features.contract.ValidationReport.columns).
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_shop(cls, shop: Shop | SparkShop) -> ShopData:
        """The tables of a shop loaded on either engine (`features.contract` or `features.spark`)."""
        tables = shop.tables()
        first, last = _date_range(tables["transactions"])
        return cls(
            tables["transactions"],
            tables["events"],
            tables["customers"],
            first,
            last,
            shop.report.value_unit,
            shop.report.columns,
        )

    def since(self, start: dt.date) -> ShopData:
        """The same shop with its history starting at `start` (for short-history experiments)."""
        begin = ibis.timestamp(dt.datetime.combine(start, dt.time()))
        events = None if self.events is None else self.events.filter(self.events.timestamp >= begin)
        return ShopData(
            self.transactions.filter(self.transactions.timestamp >= begin),
            events,
            self.customers,
            start,
            self.last_date,
            self.value_unit,
            self.columns,
        )

    def repeat_buyers(self, as_of: dt.date) -> tuple[int, int]:
        """(customers with a purchase up to `as_of`, those of them who bought on two different days)."""
        t = self.transactions
        day = t.timestamp.date()
        bought = t.filter((day <= as_of) & (t.amount > 0))
        days = bought.group_by("customer_id").aggregate(n_days=bought.timestamp.date().nunique())
        counts = days.aggregate(buyers=days.count(), repeaters=(days.n_days >= 2).sum()).to_pyarrow()
        return int(counts["buyers"][0].as_py() or 0), int(counts["repeaters"][0].as_py() or 0)

    def untrainable(self, as_of: dt.date) -> str | None:
        """Why `clv train` cannot learn repeat buying from this log at `as_of` (a phrase), None when it can
        as far as these two checks tell: every transaction on one day, nobody who bought on two days."""
        if self.first_date == self.last_date:
            return f"every transaction is on one day ({self.first_date})"
        buyers, repeaters = self.repeat_buyers(as_of)
        if repeaters == 0:
            return (
                f"none of the {buyers:,} customers who bought up to {as_of} has bought on two different days"
            )
        return None

    def check_cutoff(self, as_of: dt.date, horizon_days: int) -> str | None:
        """`features.orders.check_cutoff` on this log's span: ValueError for an `as_of` before the first
        transaction, a warning for one more than `horizon_days` after the last, None otherwise."""
        return check_cutoff(as_of, self.first_date, self.last_date, horizon_days)

    def event_types(self) -> list[str]:
        """The distinct event types of the events table, sorted (empty without one): a small query."""
        if self.events is None:
            return []
        kinds = self.events.select("event_type").distinct().to_pyarrow()["event_type"].to_pylist()
        return sorted(k for k in kinds if k is not None)

    def features(self, as_of: dt.date) -> pd.DataFrame:
        return compute_features(self.transactions, as_of, self.events, self.customers)

    def features_with_labels(self, as_of: dt.date, label_days: int) -> pd.DataFrame:
        table = build_features(self.transactions, as_of, self.events, self.customers)
        labelled = attach_labels(table, self.transactions, as_of, label_days)
        return to_pandas(labelled.order_by("customer_id"))

    def snapshots(self, plan: WindowPlan) -> pd.DataFrame:
        return to_pandas(
            make_snapshots(self.transactions, plan.cutoffs, plan.label_days, self.events, self.customers)
        )


def _date_range(transactions: ir.Table) -> tuple[dt.date, dt.date]:
    """(first, last) transaction date: executes a small query on the transactions' backend."""
    result = transactions.aggregate(
        first=transactions.timestamp.min().date(), last=transactions.timestamp.max().date()
    ).to_pyarrow()
    first, last = result["first"][0].as_py(), result["last"][0].as_py()
    if first is None:
        raise ValueError("the transactions table is empty")
    return first, last
