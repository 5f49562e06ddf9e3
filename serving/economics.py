"""Acquisition economics for `clv economics` and `GET /economics`: the score table, the shop's log and the
spend file in, tables by channel and by monthly cohort and the cohort curves out (`models.economics`);
the retention what-if from the score table (`models.retention`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from config import Settings
from features.acquisition import UNKNOWN_CHANNEL, cohort_months, customer_cohorts, read_spend
from features.contract import Shop
from features.engine import to_pandas
from models.economics import (
    acquisition_economics,
    cohort_curves,
    cohorts_without_spend,
    spend_after,
    unpriced_channels,
)
from models.retention import retention_what_if
from serving.campaigns import scores_as_of
from serving.messages import ECONOMICS_NEEDS_AMOUNTS
from serving.scores import json_records
from serving.shop_match import check_same_shop, log_customers


class ValuesInOrders(LookupError):
    """The shop's log has no amounts, so there are no economics to compute (`ECONOMICS_NEEDS_AMOUNTS`); a
    LookupError, as a missing input is to `GET /economics` (404)."""


class NoChannels(LookupError):
    """No customer of the log has an acquisition channel, so there is no channel to compute economics for: a
    missing input, like `ValuesInOrders` (exit code 1 on the command line, 404 from `GET /economics`)."""


# Months named in a note before "and N more": a paid channel with a forgotten year needs no 12 dates.
SHOWN_MONTHS = 4


@dataclass
class Economics:
    as_of: dt.date
    by_channel: pd.DataFrame
    by_cohort: pd.DataFrame
    curves: pd.DataFrame  # models.economics.cohort_curves
    margin: float | None
    notes: list[str]
    warnings: list[str]  # results that may mislead, e.g. few customers scored


def _as_period(index: pd.Series) -> pd.Series:
    """cohort_index (year x 12 + month - 1) as a monthly Period."""
    index = index.astype(int)
    return (
        pd.PeriodIndex.from_fields(year=index // 12, month=index % 12 + 1, freq="M")
        .to_series()
        .reset_index(drop=True)
    )


def _listed(items: list[str]) -> str:
    """The items as "a, b and c", or the first SHOWN_MONTHS of them and "and N more"."""
    shown, more = items[:SHOWN_MONTHS], len(items) - SHOWN_MONTHS
    if more > 0:
        return f"{', '.join(shown)} and {more:,} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"


def _late_spend_note(spend: pd.DataFrame, last_month: pd.Period, as_of: dt.date) -> list[str]:
    """The spend rows after the as_of month, counted as written (a month of two rows counts two)."""
    late = spend[spend_after(spend, last_month)]
    if late.empty:
        return []
    count = int(late["rows"].sum())
    rows = "row" if count == 1 else "rows"
    were = "was" if count == 1 else "were"
    first, last = late["month"].min(), late["month"].max()
    months = f"{first}" if first == last else f"{first} to {last}"
    return [
        f"{count:,} spend {rows} after the scores' as_of {as_of} ({months}) {were} left out: that spend "
        "bought customers the scores do not know yet."
    ]


def _unpriced_note(channel: str) -> str:
    return (
        f"the channel {channel!r} is not in the spend file: its spend, CAC, CLV:CAC, payback and profit CLV "
        "are unknown (empty in a written table), not 0. Fix: add its months to the spend file (spend 0 for a "
        "channel that costs nothing, such as organic)."
    )


def _repeated_notes(spend: pd.DataFrame, last_month: pd.Period) -> list[str]:
    """A note per channel with more than one row for a month up to the as_of month (later rows count for
    nothing, `spend_after`): `read_spend` summed them, which is right for parts of one month's spend and
    doubles it for a row entered twice."""
    repeated = spend[~spend_after(spend, last_month) & (spend["rows"] > 1)].sort_values(["channel", "month"])
    return [
        f"the spend file has more than one row for channel {channel!r} in "
        f"{_listed([f'{m} ({n} rows)' for m, n in zip(group['month'], group['rows'], strict=True)])}: "
        "each month's rows were summed into its spend. Fix: one row per month and channel (remove a row "
        "entered twice)."
        for channel, group in repeated.groupby("channel", sort=True)
    ]


def _unspent_notes(by_cohort: pd.DataFrame, spend: pd.DataFrame, last_month: pd.Period) -> list[str]:
    """A note per paid channel with customers acquired in a month its spend file has no row for
    (`models.economics.cohorts_without_spend`): counted as spend 0, its CAC may read too low."""
    missing = cohorts_without_spend(by_cohort, spend, last_month)
    notes = []
    for channel, group in missing.groupby("acquisition_channel", sort=True):
        months = [str(m) for m in sorted(group["cohort"])]
        those = "that month" if len(months) == 1 else "those months"
        customers = int(group["customers"].sum())
        notes.append(
            f"paid channel {channel!r} has {customers:,} {_plural(customers, 'customer')} acquired in "
            f"{_listed(months)} but no spend row for {those}: counted as 0 spend, so its CAC may be too "
            f"low. Fix: add rows for {those} (spend 0 if it really spent nothing)."
        )
    return notes


def _check_channels(customers, members: pd.DataFrame) -> None:
    """NoChannels, naming what is missing, when no customer has an acquisition channel: every customer would
    be one channel, 'unknown', and every spend row a channel of no one."""
    if customers is None:
        missing, fix = (
            "no customers table was given",
            "pass --customers PATH, a table of customer_id and acquisition_channel ([data] customers in "
            "clv.toml for the service)",
        )
    elif "acquisition_channel" not in customers.columns:
        missing, fix = (
            "the customers table has no acquisition_channel column",
            "add that column to the customers table (one of another name is mapped with --map "
            "acquisition_channel=COLUMN or [data] mapping)",
        )
    elif len(members) and (members["acquisition_channel"] == UNKNOWN_CHANNEL).all():
        missing, fix = (
            f"none of the log's {len(members):,} customers has one in the customers table (no row of "
            "theirs, or an empty acquisition_channel)",
            "fill acquisition_channel in the customers table, under the customer ids of the transactions log",
        )
    else:
        return
    raise NoChannels(
        f"no acquisition economics per channel: they need each customer's acquisition_channel, and {missing}. "
        f"Fix: {fix}."
    )


def _no_channel_note(members: pd.DataFrame, by_channel: pd.DataFrame, as_of: dt.date) -> list[str]:
    """Customers without an acquisition channel are a channel of their own, 'unknown' (`features.acquisition`):
    in no other channel's customers, so in no other channel's CAC (spend / its own customers)."""
    unknown = int((members["acquisition_channel"] == UNKNOWN_CHANNEL).sum())
    if not unknown:
        return []
    row = by_channel[by_channel["acquisition_channel"] == UNKNOWN_CHANNEL]
    cost = " (its spend, CAC, CLV:CAC, payback and profit CLV unknown)" if row["spend"].isna().all() else ""
    have = "has" if unknown == 1 else "have"
    return [
        f"{unknown:,} of the {len(members):,} customers who bought by {as_of} {have} no acquisition_channel (no "
        f"row in the customers table, or an empty cell): counted under 'unknown'{cost} and in no other "
        "channel, so no other channel's customers or CAC include them; if some came from a paid channel, its "
        "true CAC is lower than shown. Fix: give every customer its acquisition_channel in the customers table."
    ]


def _not_acquired_note(
    scores: pd.DataFrame, members: pd.DataFrame, in_log: set[str], as_of: dt.date
) -> list[str]:
    """Scored customers with rows in the log by as_of (`in_log`) but without a purchase (only refunds or free
    orders, segment no_purchase) were not acquired (`features.acquisition` dates a cohort by the first
    purchase), so no channel counts them."""
    # Only ids the log knows: a partial score table's strangers are `check_same_shop`'s to warn about.
    ids = scores["customer_id"].astype(str)
    outside = int((ids.isin(in_log) & ~ids.isin(members["customer_id"])).sum())
    if not outside:
        return []
    who, are = ("customer", "is") if outside == 1 else ("customers", "are")
    return [
        f"{outside:,} scored {who} without a purchase by {as_of} (only refunds or free orders: segment "
        f"no_purchase) {are} in no cohort: not acquired yet, so in no channel's customers, CLV or CAC"
    ]


def economics(scores: pd.DataFrame, shop: Shop, spend_path: Path, settings: Settings) -> Economics:
    """CLV:CAC, payback and profit CLV per channel and cohort, and the cohort curves, at the scores' as_of.

    Spend counts up to the as_of month. ValuesInOrders (`ECONOMICS_NEEDS_AMOUNTS`) when the shop's log has no
    amounts: its values are in orders, which cannot be set against money spent. NoChannels when no customer
    has an acquisition channel (no customers table, no such column, or no value for any customer of the
    log): every customer would be 'unknown'. ValueError when the score table is not the shop's
    (`serving.shop_match`)."""
    if shop.report.value_unit == "orders":
        raise ValuesInOrders(ECONOMICS_NEEDS_AMOUNTS)
    spend = read_spend(spend_path)
    as_of = scores_as_of(scores)
    warnings = check_same_shop(scores, as_of, shop)
    last_month = pd.Period(as_of, "M")
    tables = shop.tables()
    t, customers = tables["transactions"], tables["customers"]
    members = to_pandas(customer_cohorts(t, as_of, customers))
    _check_channels(customers, members)
    members["cohort"] = _as_period(members["cohort_index"]).to_numpy()
    months = to_pandas(cohort_months(t, as_of, customers))
    months["cohort"] = _as_period(months["cohort_index"]).to_numpy()
    members = members.assign(customer_id=members["customer_id"].astype(str))
    values = scores[["customer_id", "predicted_clv"]].assign(customer_id=scores["customer_id"].astype(str))
    scored = members.merge(values, on="customer_id")
    predicted = scored.groupby(["acquisition_channel", "cohort"], as_index=False)["predicted_clv"].sum()
    by_cohort, by_channel = acquisition_economics(
        months, predicted, spend, settings.train.margin, settings.economics.retention_cost, last_month
    )
    curves = cohort_curves(months, last_month)
    # The shop's channels, scored or not: a channel is misspelt only if no customer of the shop has it.
    known = set(members["acquisition_channel"])
    spelt = ", ".join(sorted(known - {UNKNOWN_CHANNEL}))  # 'unknown' is no spelling to copy
    # A misspelt channel in the spend file would silently become a cohort of no one.
    notes = _late_spend_note(spend, last_month, as_of) + _repeated_notes(spend, last_month)
    notes += [
        f"the spend file's channel {channel!r} has no customers (their channels: {spelt}); "
        "its spend counts for no one. Fix: spell it as the customers table does."
        for channel in sorted(set(spend["channel"]) - known)
    ]
    notes += _unspent_notes(by_cohort, spend, last_month)
    # Customers without a channel get a note of their own, which says what their 'unknown' row means.
    notes += [_unpriced_note(c) for c in unpriced_channels(by_channel) if c != UNKNOWN_CHANNEL]
    notes += _no_channel_note(members, by_channel, as_of)
    notes += _not_acquired_note(scores, members, log_customers(shop, as_of), as_of)
    by_cohort["cohort"] = by_cohort["cohort"].astype(str)
    return Economics(as_of, by_channel, by_cohort, curves, settings.train.margin, notes, warnings)


def what_if(scores: pd.DataFrame, lift_points: float, settings: Settings) -> dict:
    """The model's retention what-if for the score table (`models.retention.retention_what_if`) with
    `[train] margin` and `[economics] retention_cost`; JSON-ready (NaN as None)."""
    result = retention_what_if(scores, lift_points, settings.train.margin, settings.economics.retention_cost)
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in result.items()}


def service_economics(scores: pd.DataFrame, settings: Settings) -> dict:
    """JSON-ready economics for `GET /economics` from `[economics] spend` and `[data]`: as_of, margin,
    by_channel, by_cohort and curves (lists of rows; NaN as null). LookupError when either is not
    configured or the log has no amounts (`economics`), ValueError when a file cannot be read."""
    from features.contract import ContractError, load_shop

    data = settings.data
    if not settings.economics.spend or not data.configured:
        raise LookupError(
            "no acquisition economics: the service needs [economics] spend and [data] transactions (with "
            "customers for the channels) in clv.toml"
        )
    try:
        shop = load_shop(data.transactions, data.events, data.customers, data.mapping, data.timestamp_format)
    except ContractError as exc:
        raise ValueError(f"the configured data ([data] in clv.toml) cannot be read: {exc}") from None
    result = economics(scores, shop, Path(settings.economics.spend), settings)

    return {
        "as_of": str(result.as_of),
        "margin": result.margin,
        "notes": result.notes,
        "warnings": result.warnings,
        "by_channel": json_records(result.by_channel),
        "by_cohort": json_records(result.by_cohort),
        "curves": json_records(result.curves),
    }
