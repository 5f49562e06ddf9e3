"""Which buy-till-you-die models form the base (the default pair, or MBG/CNBD-k for regular buyers),
and how it values an order (Gamma-Gamma, or the shop's mean).

The base (`models.btyd_features`) is what every prediction starts from and what is served alone when
nothing beats it. It is MBG/NBD and Pareto/NBD, both of which treat the gaps between a customer's
purchases as memoryless. Where customers buy at a steady rhythm (groceries, refills), that throws away
the clearest sign of a lost customer, a silence longer than her rhythm. On a young shop it costs most:
13 weeks into the online grocery cohort, both models saw too few silences to estimate drop-out and
predicted the next year at 94% over its real total.

The choice, made on data up to the cut-off only:
1. MBG/CNBD-k (`models.mbgcnbd`) is fitted for k = 1, 2, ... on the buyers at the cut-off, and k is
   the one of highest likelihood, kept above 1 only when it beats MBG/NBD (k = 1) by more than the
   Bayesian information criterion's price of a parameter (`fit_regularity`). With k = 1 the base
   stays the default pair.
2. With k > 1 the two bases forecast a hold-in window inside the history: both are fitted at its
   start and predict each customer's orders in it (`training.windows.holdin_window`: as long as the
   horizon up to half the history). MBG/CNBD-k becomes the base when its Poisson deviance there is
   lower beyond noise (a proper score for expected counts, which judges the ranking and the level
   of the predictions; the paired gain per customer must be above 0 in 95% of bootstrap resamples,
   the rule of `models.stacking`). A better likelihood alone is not enough: on the grocery cohort
   with a year of history k = 2 fits far better, but its forecasts of the next year rank worse than
   the pair's (Spearman -0.017, churn AUC -0.015); its hold-in deviance was lower by 0.05, within
   noise (the 5% quantile of the gain was -0.11), so the pair stays. At 13 weeks the gain, 0.031,
   is beyond noise (5% quantile 0.004), and MBG/CNBD-k cuts the next year's total error from 94%
   to 11%.
3. The order value (`models.order_value`): Gamma-Gamma and the shop's mean order value, both
   fitted at the hold-in window's start, value the orders each customer placed in the window; the
   shop's mean is used when its absolute error of their revenue there is lower beyond noise (same
   bootstrap rule). On the apparel cohort it is (gain 1.1 to 6.5 per customer, 5% quantile above 0
   at four of five cut-offs), and the model's Spearman on the next year rose by 0.02 to 0.22; on the
   demo shop, whose customers spend at their own level, Gamma-Gamma wins by 17 to 26 per customer.
Without a hold-in window (or one with too few customers) the default pair and Gamma-Gamma stay.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models import metrics
from models.btyd_features import (
    BASE_MODELS,
    REGULAR,
    BTYDFeatures,
    NoRepeatPurchases,
    describe_base,
    read_no_purchase,
)
from models.mbgcnbd import fit_regularity
from models.order_value import OWN_SPEND, SHOP_SPEND, OrderValue
from models.stacking import BOOTSTRAP

# Fewer customers than this in the hold-in window cannot tell the two bases apart.
MIN_HOLDIN_CUSTOMERS = 50


@dataclass(frozen=True)
class BaseChoice:
    """The base's models, MBG/CNBD-k's k (1: not fitted) and the order-value rule, with why."""

    regularity_k: int = 1
    models: tuple[str, ...] = BASE_MODELS
    spend: str = OWN_SPEND
    note: str = ""


def choose_base(
    reference: pd.DataFrame,
    holdin: Callable[[], pd.DataFrame] | None = None,
    holdin_days: int = 0,
    seed: int = 0,
) -> BaseChoice:
    """The base for a model fitted at `reference`'s cut-off (module docstring).

    `reference`: the feature table at the cut-off (`features.pipeline`, with `gap_log_mean`);
    `holdin`: returns the features at the hold-in window's start with labels over its `holdin_days`
    (`features.labels`), called at most once and only when a check needs it; None when the history
    has no room for the window. `seed` of the bootstrap.
    """
    buyers = reference[reference["n_orders"] > 0]
    if not (buyers["btyd_frequency"] > 0).any():
        return BaseChoice()
    # The hold-in table is read as the predictor reads every table, customers without a purchase from the
    # log's start, so the two bases are compared on the histories they will score.
    window = (
        functools.cache(lambda: None if (table := holdin()) is None else read_no_purchase(table))
        if holdin is not None
        else lambda: None
    )
    k, models, purchases = _choose_purchases(buyers, window, holdin_days, seed)
    spend, spend_note = _choose_spend(buyers, window, seed)
    return BaseChoice(k, models, spend, "; ".join(note for note in (purchases, spend_note) if note))


def _choose_purchases(
    buyers: pd.DataFrame, holdin: Callable[[], pd.DataFrame | None], holdin_days: int, seed: int
) -> tuple[int, tuple[str, ...], str]:
    """(k, the base's purchase models, why): MBG/CNBD-k where it forecasts the hold-in better."""
    regular = fit_regularity(buyers)
    if regular.k == 1:
        return 1, BASE_MODELS, ""
    k = regular.k
    found = (
        f"the gaps between purchases are regular (MBG/CNBD-k with k = {k} fits the history better than "
        f"MBG/NBD: log-likelihood {regular.log_likelihoods_[k]:,.1f} vs {regular.log_likelihoods_[1]:,.1f})"
    )
    stays = f"the base stays {describe_base(BASE_MODELS)}"
    window = holdin()
    if window is None or len(window) < MIN_HOLDIN_CUSTOMERS:
        return k, BASE_MODELS, f"{found}, but the history is too short to check its forecasts: {stays}"
    try:
        both = BTYDFeatures(window, regularity_k=k)
    except NoRepeatPurchases:
        return k, BASE_MODELS, f"{found}, but nobody had bought twice before the hold-in window: {stays}"
    orders = window["label_orders"].to_numpy(float)
    default = metrics.poisson_deviances(orders, both.base_orders(window, holdin_days))
    regular_deviance = metrics.poisson_deviances(
        orders, both.purchases[REGULAR].expected_purchases(window, holdin_days)
    )
    gain = default - regular_deviance
    low = metrics.low_mean_gain(gain, seed, BOOTSTRAP)
    scores = (
        f"mean Poisson deviance of the orders in the {holdin_days} days before the cut-off "
        f"{regular_deviance.mean():.4f} vs {default.mean():.4f} for {describe_base(BASE_MODELS)}, "
        f"gain {gain.mean():+.4f} with 5% bootstrap quantile {low:+.4f}"
    )
    if gain.mean() > 0 and low > 0:
        return k, (REGULAR,), f"{found}; the base is MBG/CNBD-k ({scores})"
    return k, BASE_MODELS, f"{found}; {stays}, MBG/CNBD-k is not better beyond noise ({scores})"


def _choose_spend(
    buyers: pd.DataFrame, holdin: Callable[[], pd.DataFrame | None], seed: int
) -> tuple[str, str]:
    """(the order-value rule, why): the shop's mean where it predicted the hold-in's orders better."""
    at_cutoff = OrderValue(buyers)
    if at_cutoff.gamma_gamma_ is None:  # no amounts, or too few repeat buyers to fit Gamma-Gamma
        return OWN_SPEND, ""
    window = holdin()
    if window is None:
        return OWN_SPEND, ""
    orders = window["label_orders"].to_numpy(float)
    rows = (orders > 0) & (window["n_orders"].to_numpy() > 0)
    spend = OrderValue(window[window["n_orders"] > 0])
    if rows.sum() < MIN_HOLDIN_CUSTOMERS or spend.gamma_gamma_ is None:
        return OWN_SPEND, ""
    # The error of each buyer's hold-in revenue given her orders there: only the order value differs.
    revenue = np.clip(window["label_revenue"].to_numpy(float)[rows], 0, None)
    own = np.abs(orders[rows] * spend.own_values(window[rows]) - revenue)
    shop = np.abs(orders[rows] * spend.shop_value() - revenue)
    gain = own - shop
    low = metrics.low_mean_gain(gain, seed, BOOTSTRAP)
    scores = (
        f"mean absolute error of the revenue of the {int(rows.sum()):,} customers who bought in the hold-in "
        f"window {shop.mean():,.2f} vs {own.mean():,.2f} for Gamma-Gamma, gain {gain.mean():+,.2f} "
        f"with 5% bootstrap quantile {low:+,.2f}"
    )
    if gain.mean() > 0 and low > 0:
        return SHOP_SPEND, (
            f"a customer's own spend did not predict her next orders' value, so every order is valued at "
            f"the shop's mean ({scores})"
        )
    return OWN_SPEND, ""
