"""The model's retention what-if: retention up N points, customer by customer (models/retention.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.retention import P_ALIVE_FLOOR, retention_what_if


def scores(clv, p_alive) -> pd.DataFrame:
    return pd.DataFrame({"predicted_clv": clv, "p_alive": p_alive})


BASE = scores([100.0, 40.0, 0.0, 250.0], [0.5, 0.8, 0.0, 1.0])


def test_no_lift_changes_nothing():
    result = retention_what_if(BASE, 0, margin=0.3, retention_cost=2.0)
    assert result["value_after"] == result["value_before"] == 390.0
    assert result["contacted"] == 0 and result["retention_spend"] == 0 and result["profit_change"] == 0
    assert result["profit_after"] == result["profit_before"] == pytest.approx(390.0 * 0.3)


def test_a_lift_by_hand_with_margin_and_retention_cost():
    # 100 / 0.5 = 200 if alive, x 0.6 = 120; 40 / 0.8 = 50, x 0.9 = 45; p_alive 0 stays worth 0
    # (nothing predicted if alive); p_alive 1 gains nothing and is not reached.
    result = retention_what_if(BASE, 10, margin=0.5, retention_cost=3.0)
    assert result["value_after"] == pytest.approx(120.0 + 45.0 + 0.0 + 250.0)
    assert result["value_change"] == pytest.approx(25.0)
    assert result["contacted"] == 3 and result["retention_spend"] == 9.0
    assert result["profit_change"] == pytest.approx(25.0 * 0.5 - 9.0)
    assert result["profit_after"] == pytest.approx(415.0 * 0.5 - 9.0)


def test_value_rises_with_the_lift_and_never_past_everyone_alive():
    rng = np.random.default_rng(0)
    p_alive = rng.uniform(0, 1, 500)
    table = scores(rng.gamma(2.0, 50.0, 500) * p_alive, p_alive)
    values = [retention_what_if(table, lift, margin=None)["value_after"] for lift in range(0, 101, 5)]
    assert all(b > a for a, b in zip(values, values[1:], strict=False)), values
    everyone_alive = (table["predicted_clv"] / np.maximum(table["p_alive"], P_ALIVE_FLOOR)).sum()
    assert values[-1] == pytest.approx(everyone_alive)


def test_customers_certainly_alive_gain_nothing_and_a_fall_is_not_paid_for():
    alive = scores([80.0, 20.0], [1.0, 1.0])
    result = retention_what_if(alive, 25, margin=0.4, retention_cost=5.0)
    assert result["value_change"] == 0 and result["contacted"] == 0 and result["retention_spend"] == 0
    down = retention_what_if(BASE, -10, margin=1.0, retention_cost=5.0)
    assert down["value_change"] < 0 and down["retention_spend"] == 0


def test_a_nearly_lapsed_customer_is_not_blown_up():
    # p_alive 1e-6 with value 0.01 would be worth 10,000 if alive by the bare ratio; the floor keeps it at 1.
    result = retention_what_if(scores([0.01], [1e-6]), 50, margin=None)
    assert result["value_after"] == pytest.approx(0.01 / P_ALIVE_FLOOR * 0.500001)


@pytest.mark.parametrize("lift", [-101, 100.5, float("nan")])
def test_a_lift_outside_the_points_is_refused(lift):
    with pytest.raises(ValueError, match="-100 to 100"):
        retention_what_if(BASE, lift, margin=None)


def test_a_table_without_p_alive_says_to_re_score():
    with pytest.raises(ValueError, match="p_alive.*clv score"):
        retention_what_if(pd.DataFrame({"predicted_clv": [1.0]}), 5, margin=None)


def test_customers_with_an_empty_p_alive_are_not_reached():
    """Where the log shows no drop-out p_alive is empty (models/predictor.py): whether she is still a customer,
    and so what keeping her adds, is not known. Her value stays as predicted and she is counted apart."""
    table = scores([100.0, 40.0, 60.0], [0.5, np.nan, np.nan])
    result = retention_what_if(table, 10, margin=None, retention_cost=1.0)
    assert result["contacted"] == 1 and result["p_alive_unknown"] == 2
    assert result["value_after"] == pytest.approx(120.0 + 40.0 + 60.0) and result["retention_spend"] == 1.0
    nobody = retention_what_if(scores([40.0, 60.0], [np.nan, np.nan]), 25, margin=None, retention_cost=1.0)
    assert nobody["contacted"] == 0 and nobody["value_change"] == 0 and nobody["profit_change"] == 0
