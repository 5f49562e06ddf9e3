"""The spend model's outlier fence: one customer's extreme orders set neither her own order value nor anyone
else's (case 15's kind, on a repeat buyer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.order_value import OrderValue
from models.outliers import capped_mean, upper_fence


def test_the_fence_leaves_an_ordinary_spread_alone_and_needs_enough_values():
    values = np.random.default_rng(1).lognormal(4.0, 0.5, 1000)
    assert upper_fence(values) > values.max()
    assert upper_fence(values[:9]) == np.inf
    assert upper_fence(np.full(50, 60.0)) == np.inf


def test_one_extreme_order_counts_at_the_fence_and_an_ordinary_mean_is_left_as_it_is():
    fence = 300.0
    # Nine orders of 50 and one of 2.5e9; a mean under the fence with a large order among 40; two extreme
    # orders among three; an extreme order refunded by a credit note of its own.
    mean = np.array(
        [(450 + 2.5e9) / 10, (39 * 60 + 400) / 40, (50 + 5e9) / 3, (450 + 2.5e9 - 2.5e9) / 10 + 2.5e8]
    )
    count = np.array([10, 40, 3, 10])
    largest = np.array([2.5e9, 400, 2.5e9, 2.5e9])
    got = capped_mean(mean, count, largest, fence)
    assert got[0] == pytest.approx(75.0)
    assert got[1] == mean[1]
    assert got[2] == fence
    assert 0 <= got[3] <= fence
    assert capped_mean(mean, count, largest, np.inf).tolist() == mean.tolist()
    # Customers without a purchase (count 0) pass through without a warning.
    with np.errstate(all="raise"):
        assert capped_mean(np.zeros(2), np.zeros(2), np.zeros(2), fence).tolist() == [0.0, 0.0]


def buyers(n: int, seed: int) -> pd.DataFrame:
    """Repeat buyers of a shop where everyone spends alike (orders about 60): the feature columns the
    spend model reads, each buyer's largest order a little above her mean."""
    rng = np.random.default_rng(seed)
    orders = rng.integers(2, 12, n)
    mean = rng.gamma(4.0 * orders, 60.0 / (4.0 * orders))
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "n_orders": orders,
            "btyd_frequency": orders - 1,
            "monetary_mean": mean,
            "btyd_monetary": mean,
            "largest_order_value": 1.5 * mean,
            "largest_repeat_order_value": 1.5 * mean,
        }
    )


@pytest.mark.parametrize("extreme_orders", [1, 2])
def test_a_repeat_buyers_extreme_orders_move_no_other_customers_order_value(extreme_orders):
    shop = buyers(300, seed=15)
    # Her 46 orders of about 60, of which `extreme_orders` are worth 2.5e9 each.
    spent = 44 * 60.0 + extreme_orders * 2.5e9 + (2 - extreme_orders) * 60.0
    her = pd.DataFrame(
        {
            "customer_id": ["BIG"],
            "n_orders": [46],
            "btyd_frequency": [45],
            "monetary_mean": [spent / 46],
            "btyd_monetary": [(spent - 60.0) / 45],
            "largest_order_value": [2.5e9],
            "largest_repeat_order_value": [2.5e9],
        }
    )
    before = OrderValue(shop)
    after = OrderValue(pd.concat([shop, her], ignore_index=True))
    others = before.predict(shop)
    assert after.predict(shop) == pytest.approx(others, rel=0.01)
    value = after.predict(her)[0]
    if extreme_orders == 1:
        assert value == pytest.approx(np.median(others), rel=0.2), value
    else:
        assert value <= after.fence_
