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
from models.economics import acquisition_economics, cohort_curves, spend_after, unpriced_channels
from models.retention import retention_what_if
from serving.campaigns import scores_as_of
from serving.messages import ECONOMICS_NEEDS_AMOUNTS
from serving.scores import json_records
from serving.shop_match import check_same_shop


class ValuesInOrders(LookupError):
    """The shop's log has no amounts, so there are no economics to compute (`ECONOMICS_NEEDS_AMOUNTS`); a
    LookupError, as a missing input is to `GET /economics` (404)."""


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


def _late_spend_note(spend: pd.DataFrame, last_month: pd.Period, as_of: dt.date) -> list[str]:
    late = spend[spend_after(spend, last_month)]
    if late.empty:
        return []
    rows = "row" if len(late) == 1 else "rows"
    were = "was" if len(late) == 1 else "were"
    return [
        f"{len(late):,} spend {rows} after the scores' as_of {as_of} ({late['month'].min()} to "
        f"{late['month'].max()}) {were} left out: that spend bought customers the scores do not know yet."
    ]


def _unpriced_note(channel: str) -> str:
    fix = (
        "give these customers their acquisition_channel in the customers table"
        if channel == UNKNOWN_CHANNEL
        else "add its months to the spend file (spend 0 for a channel that costs nothing, such as organic)"
    )
    return (
        f"the channel {channel!r} is not in the spend file: its spend, CAC, CLV:CAC, payback and profit CLV "
        f"are unknown (empty in a written table), not 0. Fix: {fix}."
    )


def economics(scores: pd.DataFrame, shop: Shop, spend_path: Path, settings: Settings) -> Economics:
    """CLV:CAC, payback and profit CLV per channel and cohort, and the cohort curves, at the scores' as_of.

    Spend counts up to the as_of month. ValuesInOrders (`ECONOMICS_NEEDS_AMOUNTS`) when the shop's log has no
    amounts: its values are in orders, which cannot be set against money spent. ValueError when the score
    table is not the shop's (`serving.shop_match`)."""
    if shop.report.value_unit == "orders":
        raise ValuesInOrders(ECONOMICS_NEEDS_AMOUNTS)
    spend = read_spend(spend_path)
    as_of = scores_as_of(scores)
    warnings = check_same_shop(scores, as_of, shop)
    last_month = pd.Period(as_of, "M")
    tables = shop.tables()
    t, customers = tables["transactions"], tables["customers"]
    months = to_pandas(cohort_months(t, as_of, customers))
    months["cohort"] = _as_period(months["cohort_index"]).to_numpy()
    members = to_pandas(customer_cohorts(t, as_of, customers))
    members["cohort"] = _as_period(members["cohort_index"]).to_numpy()
    members = members.assign(customer_id=members["customer_id"].astype(str))
    values = scores[["customer_id", "predicted_clv"]].assign(customer_id=scores["customer_id"].astype(str))
    scored = members.merge(values, on="customer_id")
    predicted = scored.groupby(["acquisition_channel", "cohort"], as_index=False)["predicted_clv"].sum()
    by_cohort, by_channel = acquisition_economics(
        months, predicted, spend, settings.train.margin, settings.economics.retention_cost, last_month
    )
    curves = cohort_curves(months, last_month)
    by_cohort["cohort"] = by_cohort["cohort"].astype(str)
    # The shop's channels, scored or not: a channel is misspelt only if no customer of the shop has it.
    known = set(members["acquisition_channel"])
    # A misspelt channel in the spend file would silently become a cohort of no one.
    notes = _late_spend_note(spend, last_month, as_of) + [
        f"the spend file's channel {channel!r} has no customers (their channels: {', '.join(sorted(known))}); "
        "its spend counts for no one. Fix: spell it as the customers table does."
        for channel in sorted(set(spend["channel"]) - known)
    ]
    notes += [_unpriced_note(channel) for channel in unpriced_channels(by_channel)]
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
