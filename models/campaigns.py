"""Lifecycle campaign lists: who enters each campaign, when, with what, and how much a contact may cost.

Pure functions of the score table (one row per customer, `features.schema.SCORE_COLUMNS`) and the
customers' lifecycle moments (`features.lifecycle`); no I/O. Rules, with windows from `[campaigns]`:

| campaign | who | trigger_date |
|---|---|---|
| welcome | next_best_action welcome_series (segment new, not lapsed) | first order date |
| birthday | birthday in the `upcoming_days` after as_of (customers table) | the birthday |
| anniversary | anniversary of the first purchase in the `upcoming_days` after as_of | the anniversary |
| abandoned_cart | cart or checkout event, no order after it, `cart_days` before as_of at most (events) | its date |
| win_back | next_best_action win_back (valuable, likely lapsed), unless in abandoned_cart | last order (or empty) |
| upsell | next_best_action upsell | next order date (as_of + 1 when empty) |
| cross_sell | next_best_action cross_sell (it always has a suggestion) | next order date (as_of + 1 when empty) |
| promo | next_best_action nurture (the contract has no discount column to find discount responders) | as_of + 1 |

The welcome list takes the segment `new` itself rather than a window of its own: with two windows (60
days for the segment, 30 for the list) a customer 45 days in was told `welcome_series` on her score row and
was missing from the welcome list. The segment's line is the model's (`models.targeting`, fixed at training),
so the list follows whatever line scored the table.
The action `review` (segment `no_purchase`: no purchase in the log) enters no list, nor does such a
customer enter a list by dates (`features.lifecycle` dates purchases only), so no list treats her as a buyer.
A `cross_sell` row without a suggestion, in a score table written before `models.targeting.settle_cross_sell`
made it `nurture`, is settled here the same way, so every customer with one of these actions is in its list.

Each row: customer_id, predicted_clv, churn_prob, trigger_date, suggestion (cross_sell: the
suggestions; abandoned_cart: the carted item, `last_cart_item`, when events name it),
max_spend, expected_value, reason, value_unit (the score table's, as in every export: "orders" when
the log has no amounts; empty for a table that does not state it). The value of a contact is the
margin of the order it may bring: expected_value = response_rate[campaign] x p_alive x expected_aov x
margin (margin 1 without one: then values are revenue; where p_alive is empty because the log shows no
drop-out, its lower bound 1 - churn_prob, with a note); max_spend = min(spend_share x predicted_clv x
margin, expected_value), the most a contact may cost: a share of the customer's predicted margin, and
never more than the contact is expected to bring. Left empty (NaN, with a note) when the values are in
orders, as a cost is money. Lists are ranked by
expected_value (then customer_id). A campaign whose input is missing (no events, no birth dates) is absent, with a note.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from config import CAMPAIGN_NAMES as CAMPAIGNS
from models.targeting import settle_cross_sell

CAMPAIGN_COLUMNS = (
    "customer_id",
    "predicted_clv",
    "churn_prob",
    "trigger_date",
    "suggestion",
    "max_spend",
    "expected_value",
    "reason",
    "value_unit",
)
SCORE_INPUTS = ("customer_id", "predicted_clv", "churn_prob", "p_alive", "expected_aov", "next_best_action")


def next_yearly(dates: pd.Series, after: dt.date) -> pd.Series:
    """The first anniversary of each date strictly after `after` (29 February -> 28 February in other years)."""
    out = []
    for value in dates:
        if value is None or pd.isna(value):
            out.append(None)
            continue
        value = pd.Timestamp(value).date()
        for year in (after.year, after.year + 1):
            day = 28 if (value.month, value.day) == (2, 29) and not _leap(year) else value.day
            candidate = dt.date(year, value.month, day)
            if candidate > after:
                out.append(candidate)
                break
    return pd.Series(out, index=dates.index, dtype=object)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def build_campaigns(
    scores: pd.DataFrame,
    moments: pd.DataFrame | None,
    as_of: dt.date,
    rules: dict,
    margin: float | None,
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """({campaign: ranked list with CAMPAIGN_COLUMNS}, notes on what was left out and why: a campaign, or max_spend).

    `scores`: the score table (needs SCORE_INPUTS, and cross_sell, next_order_date, reason when present);
    `moments`: `features.lifecycle.lifecycle_table` at `as_of` (None: no transactions to read, so the
    campaigns that need dates are left out); `rules`: the `[campaigns]` settings as a dict.
    """
    missing = [c for c in SCORE_INPUTS if c not in scores.columns]
    if missing:
        raise ValueError(f"the score table lacks {', '.join(missing)}. Fix: write it with `clv score`.")
    frame = scores.copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    for column, absent in (("cross_sell", ""), ("cross_sell_reason", "the score table has no suggestions")):
        if column not in frame:
            frame[column] = absent
    frame = settle_cross_sell(frame)
    if moments is not None:
        dates = moments.assign(customer_id=moments["customer_id"].astype(str))
        frame = frame.merge(dates, on="customer_id", how="left")
    tomorrow = as_of + dt.timedelta(days=1)
    next_order = (
        pd.to_datetime(frame["next_order_date"]).dt.date
        if "next_order_date" in frame
        else pd.Series(None, index=frame.index, dtype=object)
    )
    due = next_order.where(next_order.notna(), tomorrow)
    why = frame["reason"].astype(str) if "reason" in frame else pd.Series("", index=frame.index)
    picks: dict[str, tuple[pd.Series, pd.Series, pd.Series]] = {}
    notes: list[str] = []
    action = frame["next_best_action"]
    last = frame["last_order_date"] if "last_order_date" in frame else pd.Series(None, index=frame.index)
    # Without the log her last order date is not known: an empty date, not as_of (a list once dated every
    # lapsed customer's last order "2025-12-31", the day of the scores).
    picks["win_back"] = (action == "win_back", _dates(last, None), "win-back: " + why)
    picks["upsell"] = (action == "upsell", due, "upsell: " + why)
    suggestion = frame["cross_sell"].fillna("").astype(str)
    suggestions: dict[str, pd.Series] = {}  # campaign -> its suggestion column (empty for the others)
    if not (suggestion != "").any():
        notes.append(
            "cross_sell: left out, no customer has a suggestion (the log has no category or product column); "
            "the customers it would take are nurtured (promo)"
        )
    else:
        picks["cross_sell"] = (action == "cross_sell", due, "cross-sell: " + why)
        suggestions["cross_sell"] = suggestion
    picks["promo"] = (
        action == "nurture",
        pd.Series(tomorrow, index=frame.index),
        (
            "promo (next best action nurture; the log has no discount column to find discount responders): "
            + why
        ),
    )
    if moments is None:
        notes.append("welcome, birthday, anniversary, abandoned_cart: left out, no transactions were given")
        notes.append(
            "win_back: trigger_date (the last order date) left empty and carts not checked, no transactions "
            "were given: a lapsed customer who carted days ago may be in it. Fix: give the transactions and "
            "events (`clv campaigns --transactions --events`; `[data]` in clv.toml for the service)"
        )
    else:
        first = _dates(frame["first_order_date"], None)
        picks["welcome"] = (action == "welcome_series", first, "welcome: " + why)
        horizon = as_of + dt.timedelta(days=rules["upcoming_days"])
        yearly = next_yearly(first, as_of)
        years = pd.Series(
            [y.year - f.year if y and f else 0 for y, f in zip(yearly, first, strict=True)], index=frame.index
        )
        upcoming = pd.Series([bool(y) and y <= horizon for y in yearly], index=frame.index)
        picks["anniversary"] = (
            upcoming & (years >= 1),
            yearly,
            years.astype(str)
            + np.where(years == 1, " year", " years")
            + " since the first order on "
            + first.astype(str),
        )
        if frame["birth_date"].notna().any():
            birthday = next_yearly(frame["birth_date"], as_of)
            soon = pd.Series([bool(b) and b <= horizon for b in birthday], index=frame.index)
            picks["birthday"] = (soon, birthday, "birthday on " + birthday.astype(str))
        else:
            notes.append(
                "birthday: left out, no birth dates (the customers table or its birth_date column is missing)"
            )
        if frame["last_cart_date"].notna().any():
            cart = _dates(frame["last_cart_date"], None)
            recent = pd.Series(
                [bool(c) and (as_of - c).days <= rules["cart_days"] for c in cart], index=frame.index
            )
            item = frame.get("last_cart_item", pd.Series(None, index=frame.index)).fillna("").astype(str)
            suggestions["abandoned_cart"] = item
            picks["abandoned_cart"] = (
                recent,
                cart,
                "cart or checkout on "
                + cart.astype(str)
                + np.where(item != "", " of " + item, "")
                + " with no order after it",
            )
            # "We miss you" to someone who carted days ago contradicts the cart: she gets the cart's contact.
            win_back, trigger, reason = picks["win_back"]
            both = win_back.fillna(False) & recent
            picks["win_back"] = (win_back & ~both, trigger, reason)
            if both.any():
                n = int(both.sum())
                notes.append(
                    f"win_back: {n:,} lapsed valuable {'customer' if n == 1 else 'customers'} with a cart or "
                    f"checkout in the last {rules['cart_days']} days {'is' if n == 1 else 'are'} in abandoned_cart "
                    "instead"
                )
        else:
            notes.append(
                "abandoned_cart: left out, no cart or checkout events without a later order (events missing?); "
                "so win_back was not checked for recent carts either"
            )
    unit_margin = 1.0 if margin is None else float(margin)
    p_alive, unknown = _p_alive_or_bound(frame)
    if unknown:
        notes.append(
            f"expected_value: p_alive is empty on {unknown:,} {'row' if unknown == 1 else 'rows'} (the log shows "
            "no drop-out: see the model's notes), so there a response is counted only from a customer who "
            "would order within the horizon anyway, 1 - churn_prob: a lower bound of the contact's value"
        )
    aov = frame["expected_aov"].to_numpy(float)
    max_spend = rules["spend_share"] * frame["predicted_clv"].to_numpy(float) * unit_margin
    if "value_unit" in frame and (frame["value_unit"] == "orders").all():
        # A contact costs money, and without amounts a share of the predicted value is a share of orders:
        # a grocery upsell list read "max_spend 3.78", which a marketer takes for a budget.
        max_spend = np.full(len(frame), np.nan)
        notes.append(
            "max_spend: left empty, the log has no amounts: values are counted in orders, and what a contact "
            "may cost is money. Fix: score a log with an amount per order"
        )
    lists = {}
    for name in CAMPAIGNS:
        if name not in picks:
            continue
        keep, trigger, reason = picks[name]
        keep = keep.fillna(False).to_numpy(bool)
        value = rules["response_rates"][name] * p_alive * aov * unit_margin
        chosen = pd.DataFrame(
            {
                "customer_id": frame["customer_id"].to_numpy(),
                "predicted_clv": frame["predicted_clv"].to_numpy(float),
                "churn_prob": frame["churn_prob"].to_numpy(float),
                "trigger_date": pd.Series(trigger, index=frame.index).to_numpy(object),
                "suggestion": suggestions[name].to_numpy(object) if name in suggestions else "",
                # More than the contact's expected value loses money on it in expectation: seen, an upsell
                # row with max_spend 654 beside an expected value of 77 (and 98% of win_back rows above it).
                "max_spend": np.minimum(max_spend, value),
                "expected_value": value,
                "reason": pd.Series(reason, index=frame.index).to_numpy(object),
                "value_unit": frame["value_unit"].to_numpy(object) if "value_unit" in frame else None,
            }
        )[keep]
        lists[name] = chosen.sort_values(
            ["expected_value", "customer_id"], ascending=[False, True], kind="stable"
        ).reset_index(drop=True)
    return lists, notes


def _p_alive_or_bound(frame: pd.DataFrame) -> tuple[np.ndarray, int]:
    """(p_alive per row, with 1 - churn_prob where it is empty; how many rows were empty). A customer who
    has left cannot order, so P(alive) >= 1 - churn_prob (`models.predictor`, `coherent`)."""
    p_alive = frame["p_alive"].to_numpy(float)
    unknown = np.isnan(p_alive)
    return np.where(unknown, 1 - frame["churn_prob"].to_numpy(float), p_alive), int(unknown.sum())


def _dates(values: pd.Series, fallback: dt.date | None) -> pd.Series:
    """A column of datetime.date (None where missing, or `fallback`)."""
    out = pd.to_datetime(values).dt.date
    return out.where(out.notna(), fallback).astype(object)
