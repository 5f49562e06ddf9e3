"""Customer attributes from the optional customers table (static: not versioned in time).

- acquisition_channel, country: as given; null without a customers table or column.
- days_since_signup: D - signup_date; null when unknown or when signup_date is after D (a
  signup recorded after the cut-off is information from the future).

A customer listed twice gets the smallest value of each column, so the feature table keeps one
row per customer (files and requests never get here with one: the contract keeps her first row).
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from features.orders import as_of_value


def attribute_table(customers: ir.Table, as_of: dt.date) -> ir.Table | None:
    """customer_id plus whichever of the attribute columns above the customers table can provide (None: none)."""
    d = as_of_value(as_of)
    aggregates = {
        name: customers[name].min()
        for name in ("acquisition_channel", "country")
        if name in customers.columns
    }
    if "signup_date" in customers.columns:
        signup = customers.signup_date.cast("date")
        aggregates["days_since_signup"] = ibis.ifelse(
            signup <= d, d.delta(signup, unit="day"), ibis.null("int64")
        ).min()
    return customers.group_by("customer_id").agg(**aggregates) if aggregates else None
