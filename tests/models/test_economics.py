"""Acquisition economics: CLV:CAC, payback and profit CLV of a cohort, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.economics import (
    ECONOMICS_COLUMNS,
    acquisition_economics,
    cohort_curves,
    cohorts_without_spend,
    unpriced_channels,
)

JAN, FEB = pd.Period("2025-01", "M"), pd.Period("2025-02", "M")


def months_of(channels, cohorts, offsets, customers, revenue) -> pd.DataFrame:
    """A cohort_months table (features.acquisition), one row per channel, cohort and month offset."""
    return pd.DataFrame(
        {
            "acquisition_channel": channels,
            "cohort": cohorts,
            "month_offset": offsets,
            "customers": customers,
            "revenue": revenue,
        }
    )


def test_a_cohort_by_hand():
    months = months_of(
        ["ads", "ads", "ads", "seo"],
        [JAN, JAN, JAN, FEB],
        [0, 1, 3, 0],
        [4, 4, 4, 2],
        [200.0, 100.0, 300.0, 50.0],
    )
    predicted = pd.DataFrame(
        {"acquisition_channel": ["ads", "seo"], "cohort": [JAN, FEB], "predicted_clv": [400.0, 10.0]}
    )
    spend = pd.DataFrame(
        {"channel": ["ads", "ads", "seo"], "month": [JAN, FEB, JAN], "spend": [120.0, 80.0, 0.0]}
    )
    by_cohort, by_channel = acquisition_economics(months, predicted, spend, margin=0.5, retention_cost=5.0)
    jan = by_cohort.set_index(["acquisition_channel", "cohort"]).loc[("ads", JAN)]
    assert jan["customers"] == 4 and jan["cac"] == 30.0
    assert jan["clv"] == (600.0 + 400.0) / 4  # past revenue and predicted value per customer
    assert jan["clv_to_cac"] == 250.0 * 0.5 / 30.0
    assert jan["payback_months"] == 1.0  # 200 x 0.5 < 120 <= 300 x 0.5
    assert jan["profit_clv"] == 250.0 * 0.5 - 30.0 - 5.0
    feb_ads = by_cohort.set_index(["acquisition_channel", "cohort"]).loc[("ads", FEB)]
    assert feb_ads["customers"] == 0 and np.isnan(feb_ads["cac"])  # spend that bought nobody stays visible
    seo = by_channel.set_index("acquisition_channel").loc["seo"]
    # Listed, with no row for February: nothing spent then, so nothing to pay back.
    assert seo["spend"] == 0 and np.isnan(seo["clv_to_cac"]) and seo["payback_months"] == 0.0
    ads = by_channel.set_index("acquisition_channel").loc["ads"]
    # January's cohort, 60% of the channel's spend, paid back in month 1; February's spend bought nobody.
    assert ads["cac"] == 200.0 / 4 and ads["payback_months"] == 1.0
    assert list(by_channel.columns) == ["acquisition_channel", *ECONOMICS_COLUMNS]


def test_a_channel_the_spend_file_does_not_list_has_an_unknown_cost_not_a_free_one():
    months = months_of(
        ["ads", "ads", "referral"], [JAN, FEB, JAN], [0, 0, 0], [4, 2, 5], [200.0, 60.0, 500.0]
    )
    predicted = pd.DataFrame(
        {"acquisition_channel": ["ads", "referral"], "cohort": [JAN, JAN], "predicted_clv": [40.0, 100.0]}
    )
    spend = pd.DataFrame({"channel": ["ads"], "month": [JAN], "spend": [100.0]})
    by_cohort, by_channel = acquisition_economics(months, predicted, spend, margin=1.0, retention_cost=1.0)
    referral = by_channel.set_index("acquisition_channel").loc["referral"]
    assert referral["customers"] == 5 and referral["clv"] == 600.0 / 5  # what the customers did is known
    spent = ["spend", "cac", "clv_to_cac", "payback_months", "profit_clv"]
    assert referral[spent].isna().all(), referral  # not cac 0, payback 0 and the whole clv as profit
    cohort = by_cohort.set_index(["acquisition_channel", "cohort"]).loc[("referral", JAN)]
    assert cohort[spent].isna().all(), cohort
    ads = by_channel.set_index("acquisition_channel").loc["ads"]
    assert ads["spend"] == 100.0 and ads["cac"] == 100.0 / 6  # February: listed channel, no row, spent 0
    assert unpriced_channels(by_channel) == ["referral"]


def test_cohort_curves_average_only_the_cohorts_that_had_the_month():
    months = months_of(
        ["ads"] * 4, [JAN, JAN, JAN, FEB], [0, 1, 2, 0], [2, 2, 2, 8], [100.0, 20.0, 10.0, 400.0]
    )
    curves = cohort_curves(months, pd.Period("2025-03", "M")).set_index("month_offset")
    # Month 0: both cohorts, (100 + 400) / 10. Month 1: both reached it (Feb's second month is March):
    # (120 + 400) / 10. Month 2: only January, 130 / 2; February's customers must not dilute it.
    assert curves["revenue_per_customer"].tolist() == [50.0, 52.0, 65.0]
    assert curves["customers"].tolist() == [10, 10, 2]
    assert cohort_curves(months.iloc[:0], pd.Period("2025-03", "M")).empty


def test_spend_after_the_as_of_month_counts_for_no_cohort():
    """Seen: scores as of 2024-12-31 with a spend file to 2025-12 divided a year of later spend over the
    2024 cohorts (paid_social CAC 120.81 instead of ~59) and made 2025 cohorts of no one."""
    months = months_of(["ads"], [JAN], [0], [4], [200.0])
    predicted = pd.DataFrame({"acquisition_channel": ["ads"], "cohort": [JAN], "predicted_clv": [40.0]})
    spend = pd.DataFrame({"channel": ["ads", "ads"], "month": [JAN, FEB], "spend": [100.0, 900.0]})
    by_cohort, by_channel = acquisition_economics(months, predicted, spend, margin=None, last_month=JAN)
    assert by_cohort["cohort"].tolist() == [JAN]  # no cohort after the as_of month
    ads = by_channel.set_index("acquisition_channel").loc["ads"]
    assert ads["spend"] == 100.0 and ads["cac"] == 25.0 and ads["clv_to_cac"] == 60.0 / 25.0


def test_a_channels_payback_is_its_cohorts_spend_weighted_median_not_a_pooled_curve():
    """Seen on the demo shop: affiliate read "payback 0 months" while cohorts holding 54% of its spend had not
    paid back in their first month: pooled, the old cohorts' surplus paid for the young ones."""
    months = months_of(
        ["ads"] * 5,
        [JAN, JAN, JAN, FEB, FEB],
        [0, 1, 2, 0, 1],
        [1, 1, 1, 1, 1],
        [500.0, 0.0, 0.0, 10.0, 10.0],
    )
    predicted = pd.DataFrame({"acquisition_channel": ["ads"] * 2, "cohort": [JAN, FEB], "predicted_clv": 0.0})
    spend = pd.DataFrame({"channel": ["ads", "ads"], "month": [JAN, FEB], "spend": [100.0, 150.0]})
    by_cohort, by_channel = acquisition_economics(months, predicted, spend, margin=None)
    paybacks = by_cohort.set_index("cohort")["payback_months"]
    assert paybacks[JAN] == 0.0 and np.isnan(paybacks[FEB])  # February (60% of the spend) has not paid back
    assert np.isnan(by_channel.loc[0, "payback_months"])  # pooled, 510 >= 250 read "0 months"
    # Once cohorts holding half the spend have paid back, the channel's payback is the month they had.
    cheap = spend.assign(spend=[200.0, 150.0])
    assert acquisition_economics(months, predicted, cheap, margin=None)[1].loc[0, "payback_months"] == 0.0


@pytest.mark.parametrize(("order", "exact"), [(0.07, "9.0"), (450_000.07, "22500009.0")])
def test_money_sums_carry_no_float_noise(order, exact):
    """Seen in `clv economics --out`: revenue_to_date 39053.77999999999 for a sum of amounts in cents, at any
    size (rounded to 9 decimals, 2296267502.2799997 stayed so)."""
    revenue = [order, 0.11] * 50
    months = months_of(["ads"] * 100, [JAN] * 100, range(100), [1] * 100, revenue)
    predicted = pd.DataFrame({"acquisition_channel": ["ads"], "cohort": [JAN], "predicted_clv": [0.0]})
    spend = pd.DataFrame({"channel": ["ads"] * 3, "month": [JAN] * 3, "spend": [0.1, 0.2, 0.3]})
    by_cohort, by_channel = acquisition_economics(
        months, predicted, spend.groupby(["channel", "month"], as_index=False).sum(), margin=None
    )
    assert repr(sum(revenue)) != exact  # the floats' own sum carries the noise
    assert repr(float(by_cohort.loc[0, "revenue_to_date"])) == repr(
        float(by_channel.loc[0, "revenue_to_date"])
    )
    assert repr(float(by_channel.loc[0, "revenue_to_date"])) == exact
    assert repr(float(by_cohort.loc[0, "spend"])) == repr(float(by_channel.loc[0, "spend"])) == "0.6"


def test_a_paid_channels_month_with_customers_but_no_spend_row_is_found_not_an_organic_one():
    """Seen: a paid channel's forgotten month counted as spend 0 and its CAC read low, silently. A paused
    channel is real, so the month still counts 0; `cohorts_without_spend` finds it for a note."""
    mar, apr = pd.Period("2025-03", "M"), pd.Period("2025-04", "M")
    months = months_of(
        ["ads", "ads", "ads", "ads", "seo", "ads"],
        [JAN, FEB, mar, apr, FEB, pd.Period("2024-12", "M")],
        [0] * 6,
        [4, 2, 3, 1, 5, 7],
        [10.0] * 6,
    )
    predicted = months[["acquisition_channel", "cohort"]].assign(predicted_clv=0.0)
    # ads: January priced, February a row of 0 (paused), March and April forgotten, May after the as_of.
    # seo: 0 in every listed month (organic), so its months without a row change nothing.
    spend = pd.DataFrame(
        {
            "channel": ["ads", "ads", "ads", "seo"],
            "month": [JAN, FEB, pd.Period("2025-05", "M"), JAN],
            "spend": [100.0, 0.0, 50.0, 0.0],
        }
    )
    by_cohort, by_channel = acquisition_economics(months, predicted, spend, margin=None, last_month=apr)
    missing = cohorts_without_spend(by_cohort, spend, last_month=apr)
    # December 2024, before the spend file's first month, bought customers too: its CAC misses that spend.
    assert missing["acquisition_channel"].tolist() == ["ads", "ads", "ads"]
    assert missing["cohort"].tolist() == [pd.Period("2024-12", "M"), mar, apr]
    assert missing["customers"].tolist() == [7, 3, 1]
    # Still counted as 0 (the note says the CAC may be too low, the number itself is unchanged).
    assert by_channel.set_index("acquisition_channel").loc["ads", "cac"] == 100.0 / (4 + 2 + 3 + 1 + 7)
    assert cohorts_without_spend(by_cohort, spend.iloc[:0]).empty


def test_customers_without_a_channel_are_in_no_other_channels_cac():
    """Customers without a channel are their own channel, 'unknown' (features.acquisition): the spend of ads
    is divided by ads' own customers only, so they neither dilute nor inflate its CAC."""
    months = months_of(["ads", "unknown"], [JAN, JAN], [0, 0], [4, 6], [100.0, 300.0])
    predicted = months[["acquisition_channel", "cohort"]].assign(predicted_clv=0.0)
    spend = pd.DataFrame({"channel": ["ads"], "month": [JAN], "spend": [100.0]})
    by_channel = acquisition_economics(months, predicted, spend, margin=None)[1].set_index(
        "acquisition_channel"
    )
    assert by_channel.loc["ads", "customers"] == 4 and by_channel.loc["ads", "cac"] == 25.0
    assert by_channel.loc["unknown", "customers"] == 6 and np.isnan(by_channel.loc["unknown", "cac"])
