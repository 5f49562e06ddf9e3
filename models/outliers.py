"""Robust limits for money amounts, so one extreme customer cannot set everyone else's numbers.

An amount far above what the shop's customers usually spend (a price typed in cents, an order id in
the amount column, one exceptional B2B order) would otherwise dominate every mean, sum and fitted
parameter it enters: the Gamma-Gamma spend model, the value calibration and its total level.
Models read such amounts through `upper_fence`, a limit on the log scale (amounts are roughly
log-normal): median + k robust standard deviations, the robust standard deviation being
1.4826 x the median absolute deviation (Hampel 1974; Leys et al. 2013, "Detecting outliers: do not
use standard deviation around the mean, use absolute deviation around the median", JESP 49(4)).
With k = 8 an ordinary spread of values is not touched: on the demo shop and the apparel log the
largest per-customer order values sit 5-6 robust deviations above the median, while the 2.5e9 order
of a shop whose orders are worth about 60 sits 26 deviations above it.

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

FENCE_DEVIATIONS = 8.0
MIN_VALUES = 10


def upper_fence(values, deviations: float = FENCE_DEVIATIONS) -> float:
    """exp(median + k x 1.4826 x MAD) of log(values) over the positive values; inf with fewer than
    `MIN_VALUES` positive values (too few to call anything extreme) or no spread at all."""
    values = np.asarray(values, dtype=float)
    logs = np.log(values[np.isfinite(values) & (values > 0)])
    if logs.size < MIN_VALUES:
        return float("inf")
    centre = np.median(logs)
    spread = 1.4826 * np.median(np.abs(logs - centre))
    if spread <= 0:
        return float("inf")
    return float(np.exp(centre + deviations * spread))


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
    mean_column, count_column, largest_column = (
        ("btyd_monetary", "btyd_frequency", "largest_repeat_order_value")
        if repeat
        else ("monetary_mean", "n_orders", "largest_order_value")
    )
    mean = features[mean_column].to_numpy(float)
    if not np.isfinite(fence):
        return mean
    count = features[count_column].to_numpy(float)
    share = features["refund_share"].to_numpy(float)
    total = features["monetary_total"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        # gross = net + refunds and refunds = share x gross, so refunds = net x share / (1 - share); with
        # refunds at or above her purchases (share >= 1) her net is 0 or less and nothing is above the fence.
        refunds = np.where(share < 1, np.clip(total, 0, None) * share / (1 - share), np.inf)
        excess = np.clip(features[largest_column].to_numpy(float) - fence, 0, None)
        unreturned = np.clip(excess - np.nan_to_num(refunds, nan=0.0), 0, None)
        trimmed = np.where(unreturned > 0, np.clip(mean - unreturned / count, 0, None), mean)
    return np.minimum(trimmed, fence)
