"""The model card: stored as plain values, read back the same, an incomplete one named, and the input it
records that scoring then requires (`training.loading.check_inputs`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from training.card import ModelCard, feature_inputs_of
from training.loading import LoadedModel, check_inputs

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
    trained_columns={"transactions": ["order_id", "category"], "customers": ["country"]},
    trained_event_types=["page_view", "email_open"],
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


def test_a_card_saved_before_the_trained_columns_were_recorded_loads_with_them_unknown():
    stored = CARD.to_dict()
    del stored["trained_columns"], stored["trained_event_types"]
    card = ModelCard.from_dict(stored)
    assert card.trained_columns is None and card.trained_event_types is None


def test_the_trained_columns_are_the_optional_columns_the_features_read():
    given = {
        "transactions": ("customer_id", "timestamp", "amount", "category", "channel", "quantity"),
        "customers": ("customer_id", "email"),
    }
    assert feature_inputs_of(given) == {"transactions": ["quantity", "category"], "customers": []}


ALL_COLUMNS = {
    "transactions": ("customer_id", "timestamp", "amount", "order_id", "category"),
    "customers": ("customer_id", "country"),
}


@pytest.mark.parametrize(
    ("table", "dropped"),
    [("transactions", "category"), ("transactions", "order_id"), ("customers", "country")],
)
def test_scoring_input_without_a_column_the_model_was_trained_with_is_refused_naming_it(table, dropped):
    model = LoadedModel(None, CARD, "models:/clv@champion", "3")
    given = {"events": True, "customers": True}
    check_inputs(model, given, "currency", ALL_COLUMNS)
    columns = {**ALL_COLUMNS, table: tuple(c for c in ALL_COLUMNS[table] if c != dropped)}
    with pytest.raises(ValueError) as caught:
        check_inputs(model, given, "currency", columns)
    message = str(caught.value)
    assert f"was trained with the {table} column {dropped}, which these {table} lack" in message
    assert f"Fix: give the {table} with the columns the model was trained with" in message
    assert "or score with a model trained on data like these" in message


def test_a_table_without_rows_and_a_card_without_trained_columns_lack_nothing():
    model = LoadedModel(None, CARD, "models:/clv@champion", "3")
    check_inputs(
        model, {"events": True, "customers": True}, "currency", {"transactions": ALL_COLUMNS["transactions"]}
    )
    older = LoadedModel(None, replace(CARD, trained_columns=None), "models:/clv/1", "1")
    check_inputs(older, {"events": True, "customers": True}, "currency", {"transactions": ("customer_id",)})


def test_events_without_a_type_the_model_was_trained_with_are_refused_unless_that_says_nothing():
    model = LoadedModel(None, CARD, "models:/clv@champion", "3")
    given = {"events": True, "customers": True}
    check_inputs(model, given, "currency", ALL_COLUMNS, ["page_view", "email_open", "review"])
    with pytest.raises(
        ValueError, match="trained with events of the type email_open, and these events have none"
    ):
        check_inputs(model, given, "currency", ALL_COLUMNS, ["page_view", "review"])
    # A request's events are one customer's: no email event there means she received none.
    check_inputs(model, given, "currency", ALL_COLUMNS, None)
