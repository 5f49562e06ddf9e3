"""Training snapshots: features and labels at several cut-offs (rolling origin), stacked.

A snapshot at cut-off D holds the feature table at D (rows up to the end of day D) joined with
the labels for the L days after D (`features.labels`), so within a snapshot the label window
never overlaps what the features saw. Across snapshots windows may overlap (cut-offs spaced by
less than L): that is the rolling origin, and why a backtest must hold out the last window.
Which cut-offs and which L is training's choice (`training.windows.plan_windows`).
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
