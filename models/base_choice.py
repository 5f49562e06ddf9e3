"""Which buy-till-you-die models form the base: the default pair, or MBG/CNBD-k for regular buyers.

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
Without a hold-in window (or one with too few customers) the default pair stays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models import metrics
from models.btyd_features import BASE_MODELS, REGULAR, BTYDFeatures, NoRepeatPurchases, describe_base
from models.mbgcnbd import fit_regularity
from models.stacking import BOOTSTRAP

# Fewer customers than this in the hold-in window cannot tell the two bases apart.
MIN_HOLDIN_CUSTOMERS = 50


@dataclass(frozen=True)
class BaseChoice:
    """The base's models and MBG/CNBD-k's k (1: not fitted), and one line saying why."""

    regularity_k: int = 1
    models: tuple[str, ...] = BASE_MODELS
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
    (`features.labels`), called only when the buyers look regular; None when the history has no room
    for the window. `seed` of the bootstrap.
    """
    buyers = reference[reference["n_orders"] > 0]
    if not (buyers["btyd_frequency"] > 0).any():
        return BaseChoice()
    regular = fit_regularity(buyers)
    if regular.k == 1:
        return BaseChoice()
    k = regular.k
    found = (
        f"the gaps between purchases are regular (MBG/CNBD-k with k = {k} fits the history better than "
        f"MBG/NBD: log-likelihood {regular.log_likelihoods_[k]:,.1f} vs {regular.log_likelihoods_[1]:,.1f})"
    )
    stays = f"the base stays {describe_base(BASE_MODELS)}"
    holdin = None if holdin is None else holdin()
    if holdin is None or len(holdin) < MIN_HOLDIN_CUSTOMERS:
        return BaseChoice(
            k, BASE_MODELS, f"{found}, but the history is too short to check its forecasts: {stays}"
        )
    try:
        both = BTYDFeatures(holdin, regularity_k=k)
    except NoRepeatPurchases:
        return BaseChoice(
            k, BASE_MODELS, f"{found}, but nobody had bought twice before the hold-in window: {stays}"
        )
    orders = holdin["label_orders"].to_numpy(float)
    default = metrics.poisson_deviances(orders, both.base_orders(holdin, holdin_days))
    regular = both.purchases[REGULAR].expected_purchases(holdin, holdin_days)
    regular_deviance = metrics.poisson_deviances(orders, regular)
    gain = default - regular_deviance
    low = np.nanquantile(
        metrics.bootstrap_gains(lambda rows: gain[rows].mean(), len(gain), seed, BOOTSTRAP), 0.05
    )
    scores = (
        f"mean Poisson deviance of the orders in the {holdin_days} days before the cut-off "
        f"{regular_deviance.mean():.4f} vs {default.mean():.4f} for {describe_base(BASE_MODELS)}, "
        f"gain {gain.mean():+.4f} with 5% bootstrap quantile {low:+.4f}"
    )
    if gain.mean() > 0 and low > 0:
        return BaseChoice(k, (REGULAR,), f"{found}; the base is MBG/CNBD-k ({scores})")
    return BaseChoice(k, BASE_MODELS, f"{found}; {stays}, MBG/CNBD-k is not better beyond noise ({scores})")
