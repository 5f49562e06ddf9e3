"""Acquisition economics per acquisition channel and monthly cohort: CLV:CAC, payback and profit CLV.

Pure functions of tables (`features.acquisition`, the score table, the spend file); no I/O. A cohort
is the customers of one channel whose first purchase fell in one month; its spend is that channel's
spend in that month. Per cohort (and per channel, summing its cohorts):
- cac = spend / customers (currency per customer);
- revenue_to_date: net revenue of the cohort's orders so far; predicted_clv: the sum of its
  customers' `predicted_clv` over the model's horizon; clv = (revenue_to_date + predicted_clv) /
  customers: value per customer, past and predicted;
- clv_to_cac = clv x margin / cac (margin 1 without `[train] margin`: then a revenue ratio);
- payback_months: months after the cohort's first month until its cumulative revenue x margin
  covered its spend (0 = within the first month, also when nothing was spent; empty when not yet);
  a channel's is the spend-weighted median of its cohorts' (`_median_payback`): cohorts holding half
  its spend had paid back within it, empty when half of it has not paid back yet;
- profit_clv = clv x margin - cac - retention_cost: the seeds' profit CLV, revenue x margin minus
  acquisition cost minus retention cost, per customer.

Only spend in months up to the as_of month counts (`spend_after`): spend of a later month bought
customers the cohorts cannot contain yet, and would raise the CAC and make cohorts of no one. A
channel the spend file does not list has an unknown spend: its spend-based columns are NaN, not 0. A
listed channel's month without a row counts as spend 0 (a paused channel is real); `cohorts_without_spend`
finds those of a paid channel that have customers, whose CAC may then read too low.

Cohort curves (`cohort_curves`): per channel, the cumulative net revenue per customer by months since
each cohort's first month, over the cohorts old enough to have had that month.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.targeting import significant

KEYS = ("acquisition_channel", "cohort")
MONEY = ["spend", "revenue_to_date"]
# Significant digits a double holds: the engine's exact sums (`features.orders.exact_amount`), summed again
# here as floats, wrote 39053.77999999999; rounded to them, a sum of cents prints as cents at any size.
MONEY_DIGITS = 15
ECONOMICS_COLUMNS = (
    "customers",
    "spend",
    "cac",
    "revenue_to_date",
    "predicted_clv",
    "clv",
    "clv_to_cac",
    "payback_months",
    "profit_clv",
)


def _payback(monthly: pd.DataFrame, spend: float, margin: float) -> float:
    """First month_offset at which cumulative revenue x margin >= spend (0 without spend, NaN if never or
    if the spend is not known)."""
    if spend != spend:
        return np.nan
    if not spend > 0:
        return 0.0
    by_month = monthly.groupby("month_offset")["revenue"].sum().sort_index()
    covered = np.flatnonzero(by_month.cumsum().to_numpy() * margin >= spend)
    return float(by_month.index[covered[0]]) if covered.size else np.nan


def _median_payback(cohorts: pd.DataFrame) -> float:
    """The spend-weighted median of the cohorts' `payback_months` (NaN, not yet paid back, counts as never):
    the first payback by which cohorts holding half the `spend` had paid back. 0 without spend.

    Not one pooled curve of the channel's revenue against its spend: there the old cohorts' surplus
    paid for the young ones, and a channel whose cohorts had mostly not paid back in their first month
    (17 of 36 had, holding 46% of the spend; one never did) read "payback 0 months". NaN when the
    channel's spend is not known."""
    spend = cohorts["spend"].to_numpy(float)
    if np.isnan(spend).any():
        return np.nan
    if not spend.sum() > 0:
        return 0.0
    months = np.nan_to_num(cohorts["payback_months"].to_numpy(float), nan=np.inf)
    order = np.argsort(months, kind="stable")
    half = np.flatnonzero(np.cumsum(spend[order]) >= spend.sum() / 2)[0]
    median = months[order][half]
    return float(median) if np.isfinite(median) else np.nan


def _ratios(frame: pd.DataFrame, margin: float, retention_cost: float) -> pd.DataFrame:
    customers = frame["customers"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        cac = np.where(customers > 0, frame["spend"] / customers, np.nan)
        clv = np.where(customers > 0, (frame["revenue_to_date"] + frame["predicted_clv"]) / customers, np.nan)
        ratio = np.where(cac > 0, clv * margin / cac, np.nan)
    # cac is NaN without customers (then so is clv) or without a known spend: profit_clv is NaN with it.
    return frame.assign(cac=cac, clv=clv, clv_to_cac=ratio, profit_clv=clv * margin - cac - retention_cost)


def spend_after(spend: pd.DataFrame, last_month: pd.Period) -> pd.Series:
    """Boolean mask of the spend rows (`month`: Period[M]) in a month after `last_month`, the as_of month."""
    return spend["month"] > last_month


def acquisition_economics(
    cohort_months: pd.DataFrame,
    predicted: pd.DataFrame,
    spend: pd.DataFrame,
    margin: float | None,
    retention_cost: float = 0.0,
    last_month: pd.Period | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(by cohort, by channel), each with KEYS (by channel: acquisition_channel) and ECONOMICS_COLUMNS.

    `cohort_months`: acquisition_channel, cohort (Period[M]), month_offset, customers, revenue;
    `predicted`: acquisition_channel, cohort, predicted_clv (summed per cohort); `spend`: channel,
    month (Period[M]), spend. Spend of a channel and month without customers is a cohort of 0 customers.
    A channel the spend file lists spent 0 in its months without a row; a channel it does not list at all
    has an unknown spend: spend, cac, clv_to_cac, payback_months and profit_clv are NaN for its cohorts
    and for it (`unpriced_channels` names them), never 0 as if its customers had come free. A channel's
    cac is its spend over its own customers: customers of another channel, 'unknown' included, never count.
    `last_month`: the as_of month; spend after it is left out (`spend_after`), None keeps all of it.
    """
    listed = set(spend["channel"])
    unit = 1.0 if margin is None else float(margin)
    if last_month is not None:
        spend = spend[~spend_after(spend, last_month)]
    sizes = cohort_months.groupby(list(KEYS), as_index=False).agg(
        customers=("customers", "first"), revenue_to_date=("revenue", "sum")
    )
    spent = spend.rename(columns={"channel": "acquisition_channel", "month": "cohort"})
    cohorts = sizes.merge(spent, on=list(KEYS), how="outer").merge(predicted, on=list(KEYS), how="left")
    cohorts = cohorts.fillna({"customers": 0, "revenue_to_date": 0.0, "predicted_clv": 0.0})
    cohorts["spend"] = cohorts["spend"].mask(
        cohorts["spend"].isna() & cohorts["acquisition_channel"].isin(listed), 0.0
    )
    cohorts[MONEY] = significant(cohorts[MONEY].to_numpy(float), MONEY_DIGITS)
    cohorts["payback_months"] = [
        _payback(
            cohort_months[
                (cohort_months["acquisition_channel"] == row.acquisition_channel)
                & (cohort_months["cohort"] == row.cohort)
            ],
            row.spend,
            unit,
        )
        for row in cohorts.itertuples()
    ]
    cohorts["customers"] = cohorts["customers"].astype(int)
    by_cohort = _ratios(cohorts, unit, retention_cost)
    # min_count: an unlisted channel's spend stays NaN (unknown), not a sum of nothing (0).
    channels = cohorts.groupby("acquisition_channel", as_index=False)[
        ["customers", "spend", "revenue_to_date", "predicted_clv"]
    ].sum(min_count=1)
    channels[MONEY] = significant(channels[MONEY].to_numpy(float), MONEY_DIGITS)
    channels["payback_months"] = [
        _median_payback(cohorts[cohorts["acquisition_channel"] == channel])
        for channel in channels["acquisition_channel"]
    ]
    by_channel = _ratios(channels, unit, retention_cost)
    order = ["acquisition_channel", "cohort"]
    return (
        by_cohort[[*KEYS, *ECONOMICS_COLUMNS]].sort_values(order, kind="stable").reset_index(drop=True),
        by_channel[["acquisition_channel", *ECONOMICS_COLUMNS]].reset_index(drop=True),
    )


def unpriced_channels(by_channel: pd.DataFrame) -> list[str]:
    """The channels of `acquisition_economics`' table by channel whose spend is unknown (not in the spend
    file), sorted."""
    return sorted(by_channel.loc[by_channel["spend"].isna(), "acquisition_channel"].astype(str))


def cohorts_without_spend(
    by_cohort: pd.DataFrame, spend: pd.DataFrame, last_month: pd.Period | None = None
) -> pd.DataFrame:
    """The rows of `acquisition_economics`' table by cohort (cohort: Period[M]) that have customers, belong to
    a channel the spend file prices above 0, and fall in a month up to `last_month` (the as_of month) for
    which the file has no row of that channel.

    `acquisition_economics` counts such a month as spend 0, as a paused channel really spent nothing; when
    the row was merely forgotten, or the file starts after the log (a year of spend beside five years of
    customers), the channel's CAC (currency per customer) reads too low, so the caller says so. A channel
    with spend 0 in every month (organic) is left out: its CAC is 0 either way."""
    if last_month is not None:
        spend = spend[~spend_after(spend, last_month)]
    if spend.empty:
        return by_cohort.iloc[:0]
    totals = spend.groupby("channel")["spend"].sum()
    rows = spend[["channel", "month"]].drop_duplicates()
    rows = rows.rename(columns={"channel": "acquisition_channel", "month": "cohort"})
    found = by_cohort.merge(rows, on=list(KEYS), how="left", indicator=True)["_merge"].to_numpy() == "both"
    missing = (
        (by_cohort["customers"] > 0)
        & by_cohort["acquisition_channel"].isin(totals.index[totals > 0])
        & ~found
    )
    return by_cohort[missing.to_numpy()]


def cohort_curves(cohort_months: pd.DataFrame, last_month: pd.Period) -> pd.DataFrame:
    """acquisition_channel, month_offset, customers, revenue_per_customer: per channel and month k since
    the cohort's first month (0 = that month), the cumulative net revenue by month k of the channel's
    cohorts that have reached month k by `last_month` (the as_of month, counted although not complete),
    divided by their customers. A young cohort leaves the later points, so a curve never drops because
    its newest cohorts have not had the time yet.

    `cohort_months` as for `acquisition_economics` (cohort: Period[M]). Sorted by channel and month_offset.
    """
    columns = ["acquisition_channel", "month_offset", "customers", "revenue_per_customer"]
    if cohort_months.empty:
        return pd.DataFrame(columns=columns)
    cohorts = cohort_months.groupby(list(KEYS), as_index=False).agg(customers=("customers", "first"))
    cohorts["age"] = [(last_month - c).n for c in cohorts["cohort"]]
    revenue = cohort_months.pivot_table(
        index=list(KEYS), columns="month_offset", values="revenue", aggfunc="sum", fill_value=0.0
    )
    offsets = np.arange(int(cohorts["age"].max()) + 1)
    cumulative = revenue.reindex(columns=offsets, fill_value=0.0).cumsum(axis=1)
    cumulative = cumulative.reindex(pd.MultiIndex.from_frame(cohorts[list(KEYS)])).to_numpy()
    reached = cohorts["age"].to_numpy()[:, None] >= offsets[None, :]
    rows = []
    for channel, index in cohorts.groupby("acquisition_channel").indices.items():
        customers = (reached[index] * cohorts["customers"].to_numpy()[index, None]).sum(axis=0)
        revenue_sum = (np.where(reached[index], cumulative[index], 0.0)).sum(axis=0)
        keep = customers > 0
        rows.append(
            pd.DataFrame(
                {
                    "acquisition_channel": channel,
                    "month_offset": offsets[keep],
                    "customers": customers[keep].astype(int),
                    "revenue_per_customer": revenue_sum[keep] / customers[keep],
                }
            )
        )
    return pd.concat(rows, ignore_index=True)[columns]
