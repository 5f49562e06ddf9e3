"""The outlier fence on money amounts, one limit for `clv validate` and the models alike.

An amount far above what the shop's customers usually spend (a price typed in cents, an order id in
the amount column, one exceptional B2B order) would otherwise dominate every mean, sum and fitted
parameter it enters: the Gamma-Gamma spend model, the value calibration and its total level. Models
read such amounts through the fence (`models.outliers`), and `clv validate` names the orders above the
same fence (`features.contract`): it warned only above 1,000 times the median order, so orders 700-800
times it were capped without a word.

`upper_fence` is a limit on the log scale (amounts are roughly log-normal): median + k robust
standard deviations, the robust standard deviation being 1.4826 x the median absolute deviation
(Hampel 1974; Leys et al. 2013, "Detecting outliers: do not use standard deviation around the mean, use
absolute deviation around the median", JESP 49(4)). With k = 8 an ordinary spread of values is not
touched: no order of the demo shop, the apparel log or the shared cases' ordinary customers is above the
fence over their largest orders (`spend_fence`), while the 2.5e9 order of a shop whose orders are worth
about 60 is far above it.
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


def spend_fence(features: pd.DataFrame) -> float:
    """The shop's fence on single orders, in currency: `upper_fence` over its buyers' largest orders
    (largest_order_value where n_orders > 0). `features`: rows of the feature table at a cut-off
    (`features.pipeline`, or `features.rfm.build_rfm`); inf when `upper_fence` is.

    Single orders are compared with single orders: a fence over the customers' mean orders, which vary less
    than orders do, put a shop whose 80 customers each bought about 50 orders of about 33 at 49, above which
    were 331 ordinary orders, every customer's largest (and so every repeat buyer out of the Gamma-Gamma fit,
    `models.order_value`); over the largest orders it is 256, with none above it."""
    buyers = features[features["n_orders"].to_numpy() > 0]
    return upper_fence(buyers["largest_order_value"].to_numpy(float))
