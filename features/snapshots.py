"""Training snapshots: features and labels at several cut-offs (rolling origin), stacked.

A snapshot at cut-off D holds the feature table at D (rows up to the end of day D) joined with
the labels for the L days after D (`features.labels`), so within a snapshot the label window
never overlaps what the features saw. Across snapshots windows may overlap (cut-offs spaced by
less than L): that is the rolling origin, and why a backtest must hold out the last window.

Choosing cut-offs: the last complete label window ends on the last transaction date, so the last
cut-off is `last_date - horizon_days`; earlier ones go back by `spacing_days`, keeping only cut-offs
with at least `min_history_days` days between the first transaction date and the cut-off.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from features.labels import attach_labels
from features.orders import as_of_date
from features.pipeline import build_features


def make_snapshots(
    transactions: ir.Table,
    cutoffs: list[dt.date],
    label_days: int,
    events: ir.Table | None = None,
    customers: ir.Table | None = None,
) -> ir.Table:
    """Features + labels over the `label_days` after each cut-off, stacked (the `as_of` column tells them
    apart).

    Columns: `features.pipeline.FEATURE_COLUMNS` then `features.labels.LABEL_COLUMNS`. Each
    cut-off's rows are the customers with an order by that cut-off.
    """
    if not cutoffs:
        raise ValueError("make_snapshots needs at least one cut-off")
    dates = sorted({as_of_date(c) for c in cutoffs})
    parts = [
        attach_labels(build_features(transactions, d, events, customers), transactions, d, label_days)
        for d in dates
    ]
    return ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]


def choose_cutoffs(
    first_date: dt.date,
    last_date: dt.date,
    horizon_days: int,
    spacing_days: int,
    n_snapshots: int | None = None,
    min_history_days: int = 0,
) -> list[dt.date]:
    """Cut-offs in ascending order, the last one leaving a complete `horizon_days` label window.

    The last cut-off is `last_date - horizon_days`; the others are spaced `spacing_days` apart going
    back, as long as `cutoff - first_date >= min_history_days`, at most `n_snapshots` of them
    (None: as many as fit). Empty when even the last cut-off has too little history.
    """
    if spacing_days < 1 or horizon_days < 1:
        raise ValueError("horizon_days and spacing_days must be >= 1")
    cutoffs = []
    cutoff = as_of_date(last_date) - dt.timedelta(days=horizon_days)
    first_date = as_of_date(first_date)
    while (cutoff - first_date).days >= min_history_days and (
        n_snapshots is None or len(cutoffs) < n_snapshots
    ):
        cutoffs.append(cutoff)
        cutoff -= dt.timedelta(days=spacing_days)
    return cutoffs[::-1]


def date_range(transactions: ir.Table) -> tuple[dt.date, dt.date]:
    """(first, last) transaction date: executes a small query on the transactions' backend."""
    result = transactions.aggregate(
        first=transactions.timestamp.min().date(), last=transactions.timestamp.max().date()
    ).to_pyarrow()
    first, last = result["first"][0].as_py(), result["last"][0].as_py()
    if first is None:
        raise ValueError("the transactions table is empty")
    return first, last


def last_transaction_date(transactions: ir.Table) -> dt.date:
    """The default cut-off (`--as-of`): the date of the last transaction."""
    return date_range(transactions)[1]


def snapshot_cutoffs(
    transactions: ir.Table,
    horizon_days: int,
    spacing_days: int,
    n_snapshots: int | None = None,
    min_history_days: int = 0,
) -> list[dt.date]:
    """`choose_cutoffs` over the transactions' own date range."""
    first, last = date_range(transactions)
    return choose_cutoffs(first, last, horizon_days, spacing_days, n_snapshots, min_history_days)
