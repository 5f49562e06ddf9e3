"""Targeting rules: base-relative thresholds, precedence, and stability for single customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from clv.config import TargetingSettings
from models.targeting import ACTIONS, SEGMENTS, TargetingRules


@pytest.fixture
def base() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 1000
    return pd.DataFrame(
        {
            "predicted_clv": rng.gamma(0.8, 200, n),
            "churn_prob": rng.uniform(0, 1, n),
            "p_alive": rng.uniform(0, 1, n),
            "tenure_days": rng.integers(0, 1000, n),
            "monetary_total": rng.gamma(1.0, 300, n),
        }
    )


def customer(**values) -> pd.DataFrame:
    row = {
        "predicted_clv": 10.0,
        "churn_prob": 0.5,
        "p_alive": 0.5,
        "tenure_days": 400,
        "monetary_total": 100.0,
    }
    return pd.DataFrame([{**row, **values}])


def test_settings_and_rules_agree_on_parameter_names():
    rules = TargetingRules(**TargetingSettings().model_dump())
    assert rules.get_params() == TargetingSettings().model_dump()


def test_thresholds_are_quantiles_of_the_base(base):
    rules = TargetingRules().fit(base)
    assert rules.high_value_ == pytest.approx(np.quantile(base.predicted_clv, 0.8))
    assert rules.at_risk_ == pytest.approx(np.quantile(base.churn_prob, 0.6))
    out = rules.apply(base)
    assert set(out.segment) <= set(SEGMENTS) and set(out.next_best_action) <= set(ACTIONS)
    # Deciles split the base evenly and rise with value.
    counts = out.value_decile.value_counts().sort_index()
    assert list(counts.index) == list(range(1, 11)) and counts.between(90, 110).all()
    means = base.predicted_clv.groupby(out.value_decile).mean()
    assert means.is_monotonic_increasing


def test_each_segment_by_hand(base):
    rules = TargetingRules().fit(base)
    top = rules.high_value_ * 2
    cases = {
        "new": customer(tenure_days=10, predicted_clv=top),
        "vip": customer(predicted_clv=top, churn_prob=0.0),
        "high_value_at_risk": customer(predicted_clv=top, churn_prob=0.99),
        "lapsed_valuable": customer(
            monetary_total=rules.valuable_history_ * 2, p_alive=0.05, churn_prob=0.99
        ),
        "active_low_value": customer(predicted_clv=0.0, churn_prob=0.0),
        "nurture": customer(predicted_clv=(rules.low_value_ + rules.high_value_) / 2, churn_prob=0.0),
    }
    expected_action = {
        "new": "welcome_series",
        "vip": "upsell",
        "high_value_at_risk": "retention_offer",
        "lapsed_valuable": "win_back",
        "active_low_value": "cross_sell",
        "nurture": "nurture",
    }
    for segment, frame in cases.items():
        row = rules.apply(frame).iloc[0]
        assert row.segment == segment, (segment, row.reason)
        assert row.next_best_action == expected_action[segment]
        assert row.reason


def test_single_customer_gets_the_same_answer_as_in_the_batch(base):
    rules = TargetingRules().fit(base)
    batch = rules.apply(base)
    for i in (0, 17, 999):
        alone = rules.apply(base.iloc[[i]])
        assert alone.iloc[0].to_dict() == batch.iloc[i].to_dict()


def test_contracts(base):
    with pytest.raises(NotFittedError):
        TargetingRules().apply(base)
    assert clone(TargetingRules(lapsed_p_alive=0.2)).lapsed_p_alive == 0.2
    with pytest.raises(ValueError, match="churn_prob"):
        TargetingRules().fit(base.drop(columns="churn_prob"))
    with pytest.raises(ValueError, match="low_value_quantile"):
        TargetingRules(low_value_quantile=0.9, high_value_quantile=0.8).fit(base)
