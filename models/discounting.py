"""Discounting a horizon's value to the cut-off: one factor for the model and every baseline.

Purchases are spread over the horizon, so its value is discounted to the horizon's middle (the
mid-period convention of discounted cash flows): factor = (1 + r) ** -(horizon_days / 365 / 2), with r
the yearly discount rate. r = 0 gives 1, which backtests use: they compare with undiscounted revenue.
"""

from __future__ import annotations


def mid_horizon_factor(discount_rate: float, horizon_days: float) -> float:
    """The factor (0-1] that discounts value earned over `horizon_days` at the yearly `discount_rate`."""
    return (1 + discount_rate) ** (-(horizon_days / 365) / 2)
