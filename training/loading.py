"""A loaded model and scoring a feature table with it: what `clv score` and the service share.

Models are loaded, and refused when this code cannot run them, by `training.registry.Registry.load`.
Kept apart from `training.score` (the batch command, which reads a whole shop) so that the service
imports only what predicting needs: every module imported here is start-up time of every worker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import pandas as pd

from features.request import compute_features_for_request
from features.schema import SCORE_COLUMNS
from models.next_order import next_order_date
from models.predictor import CLVPredictor
from models.targeting import settle_cross_sell
from training.card import ModelCard


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to score: its predictor, its card, where it was loaded from and its version."""

    predictor: CLVPredictor
    card: ModelCard
    uri: str
    version: str


def model_label(version: str) -> str:
    """How output names a model: "model v3" for a registry version, "model runs:/<id>/model" for a URI that
    names no version (`training.registry.Registry.load`; "model vruns:/..." was printed)."""
    return f"model v{version}" if version.isdigit() else f"model {version}"


def sample_features() -> pd.DataFrame:
    """Features of one customer with two orders, through the request path."""
    history = pd.DataFrame(
        {
            "customer_id": ["sample"] * 2,
            "timestamp": pd.to_datetime(["2024-01-01", "2024-02-01"]),
            "amount": [10.0, 20.0],
        }
    )
    return compute_features_for_request(history, dt.date(2024, 3, 1))


def pass_table(table: str) -> str:
    """How the command line gives a table: `check_inputs`' default fix."""
    return f"pass --{table} (or configure [data] {table})"


def check_inputs(
    loaded: LoadedModel,
    given: Mapping[str, bool],
    value_unit: str,
    columns: Mapping[str, Collection[str]],
    event_types: Collection[str] | None = None,
    fix: Callable[[str], str] = pass_table,
) -> None:
    """Raise ValueError when the model cannot score this input, so its features would be missing or
    computed otherwise and the scores wrong: its values are in another unit than the model's
    ("currency" with amounts, "orders" without), a table the model was trained with (events,
    customers) is not given (`given`: table -> given), or a given table lacks an optional column the
    model was trained with (`columns`: table -> the contract columns it has, for the tables with rows;
    `ModelCard.trained_columns`), or the events table has none of an event type the model was trained
    with (`event_types`: the table's event types; None when that says nothing, as for a request: one
    customer without an email event has simply received none). `fix(table)` says how to give a table (the
    command line's words by default; HTTP has its own).
    """
    unit = loaded.card.value_unit
    if unit != value_unit:
        raise ValueError(
            f"model {loaded.uri} predicts values in {unit}, but these transactions' values are in "
            f"{value_unit} ({'they have no amounts' if value_unit == 'orders' else 'they have amounts'}). "
            # A request whose one row had "amount": null read as a log without amounts, with no word of the
            # likelier fix.
            + (
                "Fix: give each transaction its amount (the order's value), or score"
                if value_unit == "orders"
                else "Fix: score"
            )
            + " with a model trained on transactions like these"
            + (" (without amounts)" if value_unit == "orders" else " (with an amount in every row)")
            + ": `clv train` on them, or pass --model models:/NAME/VERSION of such a model."
        )
    for table, present in given.items():
        if loaded.card.trained_with.get(table) and not present:
            raise ValueError(
                f"model {loaded.uri} was trained with the {table} table and none was given; its features would be "
                f"missing and the scores wrong. Fix: {fix(table)}."
            )
    _check_columns(loaded, columns)
    if event_types is not None:
        _check_event_types(loaded, event_types)


def _check_columns(loaded: LoadedModel, columns: Mapping[str, Collection[str]]) -> None:
    for table, trained in (loaded.card.trained_columns or {}).items():
        lacking = [c for c in trained if table in columns and c not in columns[table]]
        if lacking:
            raise ValueError(
                f"model {loaded.uri} was trained with the {table} column{'s' * (len(lacking) > 1)} "
                f"{', '.join(lacking)}, which these {table} lack; the features read from "
                f"{'them' if len(lacking) > 1 else 'it'} would be missing or computed otherwise and the scores "
                f"wrong. Fix: give the {table} with the columns the model was trained with ({', '.join(trained)}; "
                "a row without a value may leave it empty), or score with a model trained on data like these "
                "(`clv train` on them)."
            )


def _check_event_types(loaded: LoadedModel, event_types: Collection[str]) -> None:
    trained = loaded.card.trained_event_types or []
    lacking = [kind for kind in trained if kind not in event_types]
    if lacking:
        raise ValueError(
            f"model {loaded.uri} was trained with events of the type{'s' * (len(lacking) > 1)} "
            f"{', '.join(lacking)}, and these events have none: every customer would read as having none, and "
            f"the scores would be wrong. Fix: give the events with every type the model was trained with "
            f"({', '.join(trained)}), or score with a model trained on events like these (`clv train` on them)."
        )


NO_SUGGESTIONS = "no suggestion: cross-sell suggestions are made by `clv score` from the shop's whole log"


def score_features(
    loaded: LoadedModel, features: pd.DataFrame, suggestions: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Predictions plus the bookkeeping columns, in the README's column order (`features.schema.SCORE_COLUMNS`).

    `suggestions`: cross_sell and cross_sell_reason in the order of `features` (`training.cross_sell`);
    without them both say there is none (a request's history is too little to learn co-purchases from).
    A `cross_sell` action without a suggestion becomes `nurture`, and its reason says why
    (`models.targeting.settle_cross_sell`).
    """
    predictions = loaded.predictor.predict(features)
    as_of = pd.to_datetime(features["as_of"]).dt.date.to_numpy()
    added = {
        "as_of": as_of,
        "next_order_date": next_order_date(pd.Series(as_of), predictions["days_to_next_order"]).to_numpy(),
        "cross_sell": "" if suggestions is None else suggestions["cross_sell"].to_numpy(),
        "cross_sell_reason": NO_SUGGESTIONS
        if suggestions is None
        else suggestions["cross_sell_reason"].to_numpy(),
        **scorer_values(loaded),
    }
    # One concatenation, not a column at a time: the nine inserts were 1.8 of a request batch's 16.6 ms.
    predictions = settle_cross_sell(
        pd.concat([predictions, pd.DataFrame(added, index=predictions.index)], axis=1)
    )
    extra = [c for c in predictions.columns if c not in SCORE_COLUMNS]
    return predictions[[*SCORE_COLUMNS, *extra]]


def scorer_values(loaded: LoadedModel) -> dict[str, str | int]:
    """The columns the scorer adds that are the same in every row (`as_of` comes with the features)."""
    return {
        "horizon_days": loaded.card.horizon_days,
        "model_version": loaded.version,
        # "currency", or "orders" when the model was trained on a log without amounts: says what the value
        # columns count in every export, so a list of "2.5" is not read as 2.50 in money.
        "value_unit": loaded.card.value_unit,
    }
