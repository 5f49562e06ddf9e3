"""Loading a registered model and scoring a feature table with it: what `clv score` and the service share.

Kept apart from `training.score` (the batch command, which reads a whole shop) so that the service
imports only what loading and predicting need: every module imported here is start-up time of every
worker.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from config import Settings
from features.pipeline import FEATURES_VERSION
from features.request import compute_features_for_request
from features.schema import SCORE_COLUMNS
from training import tracking
from training.pyfunc import MODEL_FORMAT, CLVPyfunc, unwrap


class ModelNotFound(RuntimeError):
    """No model at the URI (for example before the first `clv train`); the message says what to do."""


@dataclass
class LoadedModel:
    model: CLVPyfunc
    uri: str
    version: str


def load_model(settings: Settings, uri: str | None = None) -> LoadedModel:
    """Load a CLV pyfunc by URI (default: the registered model's champion) and resolve its version.

    Raises ModelNotFound when nothing can be loaded there; when the model was trained on other
    feature definitions than this code computes (it would be fed features it never saw, silently);
    and when it was saved in another format (`training.pyfunc.MODEL_FORMAT`) or by code this code
    cannot run: it must load and predict for a two-order history. Each message says to retrain or
    roll back.
    """
    tracking.configure(settings.mlflow.tracking_uri, settings.mlflow.experiment)
    name, alias = settings.mlflow.registered_model, settings.mlflow.champion_alias
    uri = uri or f"models:/{name}@{alias}"
    try:
        # MLflow's comparison of installed packages with the model's requirements only logs, and costs
        # 0.4 s of every start; whether this code can run the model is checked below, by running it.
        model = unwrap(mlflow.pyfunc.load_model(uri, suppress_warnings=True))
    except (MlflowException, OSError) as exc:
        raise ModelNotFound(
            f"no model at {uri} ({str(exc).splitlines()[0][:200]}). Fix: run `clv train` (or `make train`) first, "
            "or pass --model with a valid URI."
        ) from None
    except Exception as exc:  # noqa: BLE001 - unpickling code that changed fails in any way
        raise ModelNotFound(_other_code(uri, f"it cannot be read ({_first_line(exc)})")) from None
    trained_on = model.metadata.get("features_version")
    if trained_on != FEATURES_VERSION:
        raise ModelNotFound(
            f"model {uri} was trained on feature definitions {trained_on}, this code computes "
            f"{FEATURES_VERSION}. Fix: retrain with `clv train` (or `make train`), or use the code it was "
            "trained with."
        )
    saved_as = model.metadata.get("model_format", 1)
    if saved_as != MODEL_FORMAT:
        raise ModelNotFound(
            _other_code(uri, f"it is in model format {saved_as}, this code reads {MODEL_FORMAT}")
        )
    try:
        model.predictor.predict(sample_features())
    except Exception as exc:  # noqa: BLE001 - whatever fails here would fail every request
        raise ModelNotFound(_other_code(uri, f"it fails on a sample ({_first_line(exc)})")) from None
    return LoadedModel(model, uri, _version(settings, uri))


def _other_code(uri: str, why: str) -> str:
    return (
        f"model {uri} was saved by code this version cannot run: {why}. Fix: retrain with `clv train` "
        "(or `make train`), or roll back to a version this code can load (`clv rollback`), or use the "
        "code it was trained with."
    )


def _first_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}".rstrip(": ")


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


def _version(settings: Settings, uri: str) -> str:
    match = re.fullmatch(r"models:/([^/@]+)(?:@(.+)|/(\d+))", uri)
    if not match:
        return uri
    name, alias, number = match.groups()
    if number:
        return number
    return str(tracking.client(settings.mlflow.tracking_uri).get_model_version_by_alias(name, alias).version)


def check_inputs(
    loaded: LoadedModel,
    given: Mapping[str, bool],
    value_unit: str,
    fix: Callable[[str], str] = lambda table: f"pass --{table} (or configure [data] {table})",
) -> None:
    """Raise ValueError when the model cannot score this input: its values are in another unit than
    the model's ("currency" with amounts, "orders" without), or a table the model was trained with
    (events, customers) is not given, so its features would be missing and the scores wrong.
    `fix(table)` says how to give a table (the command line's words by default; HTTP has its own).
    """
    unit = loaded.model.metadata.get("value_unit", "currency")
    if unit != value_unit:
        raise ValueError(
            f"model {loaded.uri} predicts values in {unit}, but these transactions' values are in "
            f"{value_unit} ({'they have no amounts' if value_unit == 'orders' else 'they have amounts'}). "
            "Fix: score with a model trained on transactions like these"
            + (" (without amounts)" if value_unit == "orders" else " (with an amount in every row)")
            + ": `clv train` on them, or pass --model models:/NAME/VERSION of such a model."
        )
    for table, present in given.items():
        if loaded.model.metadata.get("trained_with", {}).get(table) and not present:
            raise ValueError(
                f"model {loaded.uri} was trained with the {table} table and none was given; its features would be "
                f"missing and the scores wrong. Fix: {fix(table)}."
            )


def score_features(loaded: LoadedModel, features: pd.DataFrame) -> pd.DataFrame:
    """Predictions plus the bookkeeping columns, in the README's column order (`features.schema.SCORE_COLUMNS`)."""
    predictions = loaded.model.predictor.predict(features)
    predictions["as_of"] = pd.to_datetime(features["as_of"]).dt.date.to_numpy()
    for name, value in scorer_values(loaded).items():
        predictions[name] = value
    extra = [c for c in predictions.columns if c not in SCORE_COLUMNS]
    return predictions[[*SCORE_COLUMNS, *extra]]


def scorer_values(loaded: LoadedModel) -> dict[str, str | int]:
    """The columns the scorer adds that are the same in every row (`as_of` comes with the features)."""
    return {
        "horizon_days": int(loaded.model.metadata["horizon_days"]),
        "model_version": loaded.version,
        # "currency", or "orders" when the model was trained on a log without amounts: says what the value
        # columns count in every export, so a list of "2.5" is not read as 2.50 in money.
        "value_unit": loaded.model.metadata.get("value_unit", "currency"),
    }
