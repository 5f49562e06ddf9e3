"""The model card: what a trained model says about itself, stored with it in MLflow.

`clv train` writes the card as the logged model's metadata (`ModelCard.to_dict`, plain JSON-ready
values under the keys below), and whoever loads the model reads it back (`ModelCard.from_dict`):
the scorer (horizon, value unit, the tables it was trained with), the service's `GET /model` and
the marketer page (backtest, baselines, thresholds), the registry gate (the backtest window). The
keys without a default are the ones models have carried since model format 4, so every model this code
can load (`training.registry.Registry.load`) has them; a key added later has a default that says it is
unknown (`trained_columns`, `trained_event_types`: None) or what models before it did (`cross_sell_served`:
"rules").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from features.behaviour import FEATURE_EVENT_TYPES
from features.pipeline import FEATURE_INPUTS

_DATES = ("as_of", "data_first_date", "data_last_date", "backtest_cutoff")


@dataclass(frozen=True)
class ModelCard:
    """A trained model's facts. Dates are calendar days (UTC); horizons are days after the cut-off;
    values are in `value_unit`: "currency" (the shop's amounts), or "orders" when it had none."""

    # What it predicts.
    horizon_days: int
    value_unit: str
    served_model: str  # the predictor's kind: "hybrid" (BTYD base + boosted parts) or "base"
    base_models: list[str]  # the BTYD models of the base, e.g. ["mbgnbd", "pareto"]
    notes: list[str]  # what a reader of the numbers should know, in words
    as_of: dt.date  # the cut-off it was fitted at (the last day of data it saw)
    # How it was made, so a loader can refuse what it cannot run or feed.
    features_version: str  # features.pipeline.FEATURES_VERSION of the code that trained it
    model_format: int  # training.pyfunc.MODEL_FORMAT of the code that saved it
    trained_with: dict[str, bool]  # {"events": ..., "customers": ...}: tables it was trained with
    plan: str  # the training windows, in words (training.windows.WindowPlan.describe)
    trained_at: dt.datetime  # UTC, to the second
    data_first_date: dt.date  # the first transaction's date
    # The last day of data it saw: the last transaction's, or `as_of` if the log runs on past it.
    data_last_date: dt.date
    # Settings it was trained with.
    targeting_thresholds: dict[str, Any]  # models.targeting.TargetingRules.thresholds()
    margin: float | None  # gross margin as a fraction of revenue; None without one
    discount_rate: float  # yearly
    # How well it did, on the backtest window `backtest_cutoff` + `backtest_horizon_days`.
    backtest: dict[str, float]  # metric -> value of the served model (models.metrics)
    textbook_base: dict[str, Any]  # models.textbook.base_summary at `as_of`
    baselines: dict[str, dict[str, float]]  # baseline id (training.backtest) -> metric -> value
    backtest_cutoff: dt.date
    backtest_horizon_days: int
    # Bottom-k sketch of the customer ids it was trained on (training.tracking.customer_sketch).
    customer_sketch: list[str]
    # "scoring" for the registered model, "backtest" for the model fitted at the backtest cut-off.
    role: str
    # Table -> the optional columns the features read (features.pipeline.FEATURE_INPUTS) that it was trained
    # with, e.g. {"transactions": ["order_id", "category"], "customers": ["country"]}: scoring refuses data
    # without them (training.loading.check_inputs). None on cards of models trained before it was recorded.
    trained_columns: dict[str, list[str]] | None = None
    # The event types the features read (features.behaviour.FEATURE_EVENT_TYPES) that its events table had;
    # [] without events, None on cards of models trained before it was recorded.
    trained_event_types: list[str] | None = None
    # What its cross-sell suggestions are (training.cross_sell): "rules", or "popularity" where the backtest
    # found the most popular items better; "rules" on cards of models trained before the choice was made.
    cross_sell_served: str = "rules"

    def to_dict(self) -> dict[str, Any]:
        """The card as stored: JSON-ready values (dates and times as ISO text)."""
        stored = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in _DATES:
            stored[name] = stored[name].isoformat()
        stored["trained_at"] = self.trained_at.isoformat(timespec="seconds")
        return stored

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> ModelCard:
        """The card of a stored dict (`to_dict`'s shape); raises ValueError naming what is missing."""
        names = {f.name for f in dataclasses.fields(cls)}
        needed = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        missing = sorted(needed - stored.keys())
        if missing:
            raise ValueError(f"its model card lacks {', '.join(missing)}")
        values = {k: v for k, v in stored.items() if k in names}
        for name in _DATES:
            values[name] = dt.date.fromisoformat(str(values[name]))
        values["trained_at"] = dt.datetime.fromisoformat(str(values["trained_at"]))
        return cls(**values)


def feature_inputs_of(columns: Mapping[str, Collection[str]]) -> dict[str, list[str]]:
    """Of each table's `columns` (table -> the contract columns it has), the optional ones the features
    read (`features.pipeline.FEATURE_INPUTS`): what a card records as `trained_columns`."""
    return {
        table: [c for c in inputs if c in columns[table]]
        for table, inputs in FEATURE_INPUTS.items()
        if table in columns
    }


def feature_event_types_of(event_types: Collection[str]) -> list[str]:
    """Of an events table's `event_types`, the ones the features read (`trained_event_types`)."""
    return [kind for kind in FEATURE_EVENT_TYPES if kind in event_types]
