"""The model card: stored as plain values, read back the same, and an incomplete one named."""

from __future__ import annotations

import datetime as dt

import pytest

from training.card import ModelCard

CARD = ModelCard(
    horizon_days=180,
    value_unit="currency",
    served_model="hybrid",
    base_models=["mbgnbd", "pareto"],
    notes=["a note"],
    as_of=dt.date(2025, 6, 30),
    features_version="1.3",
    model_format=4,
    trained_with={"events": True, "customers": False},
    plan="6 windows",
    trained_at=dt.datetime(2025, 7, 1, 12, 0, 5, tzinfo=dt.UTC),
    data_first_date=dt.date(2023, 1, 2),
    data_last_date=dt.date(2025, 6, 30),
    targeting_thresholds={"at_risk_churn_prob": 0.5},
    margin=None,
    discount_rate=0.0,
    backtest={"spearman": 0.61},
    textbook_base={"customers": 10.0},
    baselines={"bgnbd_gg": {"spearman": 0.55}},
    backtest_cutoff=dt.date(2024, 12, 31),
    backtest_horizon_days=180,
    customer_sketch=["a", "b"],
    role="scoring",
)


def test_the_stored_card_is_plain_values_under_the_keys_models_carry():
    stored = CARD.to_dict()
    assert stored["as_of"] == "2025-06-30" and stored["backtest_cutoff"] == "2024-12-31"
    assert stored["trained_at"] == "2025-07-01T12:00:05+00:00"
    assert stored["horizon_days"] == 180 and stored["baselines"] == {"bgnbd_gg": {"spearman": 0.55}}
    assert ModelCard.from_dict(stored) == CARD


def test_an_incomplete_card_names_what_it_lacks():
    stored = CARD.to_dict()
    del stored["backtest_cutoff"], stored["plan"]
    with pytest.raises(ValueError, match="lacks backtest_cutoff, plan"):
        ModelCard.from_dict(stored)
