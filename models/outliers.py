"""Money amounts read through the shop's outlier fence (`features.fence`), so one extreme customer cannot
set everyone else's numbers.

A customer's mean order is read through `capped_mean`, which counts her largest order at the fence
before it caps the mean: capping only the mean left a repeat buyer with one order of 2.5e9 among 45
of about 60 valued at the fence, five times the shop's mean, and that one customer spread every other
customer's Gamma-Gamma order value from 63.5 to between 29 and 103 (and their CLV by up to 61%).
Capping her largest order only when her mean was above the fence left one order of 10,000 among 46
(a mean of 280, under the fence of 296) in full, with the same effect, and made the value fall as
the order grew (an order of 15,000 crossed the line and was capped).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def capped(values, fence: float) -> np.ndarray:
    """`values` with everything above `fence` set to `fence` (winsorised from above)."""
    return np.minimum(np.asarray(values, dtype=float), fence)


def capped_mean(features: pd.DataFrame, fence: float, repeat: bool = False) -> np.ndarray:
    """Each customer's mean order value with no single order counted above `fence`, shape (n,), in currency
    per order: mean - u / count, where u is what her largest order exceeds the fence by, less her refunds
    (a refund is taken to return that excess first: a large order and a credit note returning it leave her
    mean as it is), kept at 0 or more, and never above the fence (two extreme orders leave it there).

    `features`: rows of the feature table (`features.pipeline`); the mean, count and largest order are
    monetary_mean, n_orders and largest_order_value, or with `repeat` btyd_monetary, btyd_frequency and
    largest_repeat_order_value (the repeat purchase days Gamma-Gamma reads); her refunds come from
    monetary_total and refund_share (refunds / gross amount). Only the largest order is known per
    customer, so a second order above the fence counts in full until the mean reaches the fence.
    """
    mean_column, count_column = (
        ("btyd_monetary", "btyd_frequency") if repeat else ("monetary_mean", "n_orders")
    )
    mean = features[mean_column].to_numpy(float)
    if not np.isfinite(fence):
        return mean
    count = features[count_column].to_numpy(float)
    unreturned = excess_over_fence(features, fence, repeat)
    with np.errstate(divide="ignore", invalid="ignore"):
        trimmed = np.where(unreturned > 0, np.clip(mean - unreturned / count, 0, None), mean)
    return np.minimum(trimmed, fence)


def excess_over_fence(features: pd.DataFrame, fence: float, repeat: bool = False) -> np.ndarray:
    """What each customer's largest order exceeds `fence` by, less her refunds, at least 0, shape (n,), in
    currency; above 0 exactly where `capped_mean` caps her (same columns and `repeat` as there)."""
    largest = features["largest_repeat_order_value" if repeat else "largest_order_value"].to_numpy(float)
    if not np.isfinite(fence):
        return np.zeros(len(largest))
    share = features["refund_share"].to_numpy(float)
    total = features["monetary_total"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        # gross = net + refunds and refunds = share x gross, so refunds = net x share / (1 - share); with
        # refunds at or above her purchases (share >= 1) her net is 0 or less and nothing is above the fence.
        refunds = np.where(share < 1, np.clip(total, 0, None) * share / (1 - share), np.inf)
    excess = np.clip(largest - fence, 0, None)
    return np.clip(excess - np.nan_to_num(refunds, nan=0.0), 0, None)
