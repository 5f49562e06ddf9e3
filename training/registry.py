"""The MLflow model registry, through one door: the champion, loading a model, the gate, promotion, rollback.

The registered model (default `clv`) carries an alias (default `champion`) for what serves.
`Registry.load` refuses, with the fix, any model this code cannot run or feed (other feature
definitions, another model format, a card or predictor it cannot read, a failure on a sample).
`Registry.decide` compares a candidate's backtest metric with the champion's logged one; `clv train`
uses it only when the champion cannot be re-scored on the candidate's window (`training.gate`).
Every move of the alias is appended to the registered model's `champion_history` tag, so rollback
knows where to go back to. No other module calls MLflow's registry for these.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from config import MlflowSettings
from features.pipeline import FEATURES_VERSION
from training import tracking
from training.card import ModelCard
from training.loading import LoadedModel, sample_features
from training.pyfunc import MODEL_FORMAT, unwrap

HISTORY_TAG = "champion_history"
METRIC_PREFIX = "backtest_"


class RegistryError(RuntimeError):
    """A registry operation that cannot be done; the message says why."""


class ModelNotFound(RuntimeError):
    """No model this code can run at the URI (for example before the first `clv train`); the message
    says what to do."""


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    champion_version: str | None
    champion_value: float | None
    candidate_value: float


class Registry:
    """The registered model `[mlflow] registered_model` and its alias `[mlflow] champion_alias` in the
    store at `[mlflow] tracking_uri`."""

    def __init__(self, settings: MlflowSettings):
        self.settings = settings
        self.name, self.alias = settings.registered_model, settings.champion_alias
        self.client = tracking.client(settings.tracking_uri)

    def champion(self) -> ModelVersion | None:
        """The version holding the alias, or None when there is no such model or alias yet."""
        try:
            return self.client.get_model_version_by_alias(self.name, self.alias)
        except MlflowException:
            return None

    def champion_version(self) -> str:
        """The champion's version number; raises ModelNotFound, with the store's reason and the fix."""
        try:
            return str(self.client.get_model_version_by_alias(self.name, self.alias).version)
        except MlflowException as exc:
            raise ModelNotFound(
                f"cannot find {self.name}@{self.alias} in {self.settings.tracking_uri} "
                f"({str(exc).splitlines()[0][:200]}). Fix: run `make train`, or point MLFLOW_TRACKING_URI "
                "at the store that has it."
            ) from None

    def load(self, uri: str | None = None) -> LoadedModel:
        """Load a CLV model by URI (default: the champion) and resolve its version.

        Raises ModelNotFound when nothing can be loaded there; when the model was trained on other
        feature definitions than this code computes (it would be fed features it never saw, silently);
        and when it was saved in another format (`training.pyfunc.MODEL_FORMAT`) or by code this code
        cannot run: its card must be complete and it must predict for a two-order history. Each message
        says to retrain or roll back.
        """
        tracking.configure(self.settings.tracking_uri, self.settings.experiment)
        uri = uri or f"models:/{self.name}@{self.alias}"
        try:
            # MLflow's comparison of installed packages with the model's requirements only logs, and costs
            # 0.4 s of every start; whether this code can run the model is checked below, by running it.
            model = mlflow.pyfunc.load_model(uri, suppress_warnings=True)
            predictor = unwrap(model).predictor
        except (MlflowException, OSError) as exc:
            raise ModelNotFound(
                f"no model at {uri} ({str(exc).splitlines()[0][:200]}). Fix: run `clv train` (or `make train`) "
                "first, or pass --model with a valid URI (when `clv train` refuses this shop's log, a model "
                "trained on a similar shop's)."
            ) from None
        except Exception as exc:  # noqa: BLE001 - unpickling code that changed fails in any way
            raise ModelNotFound(_other_code(uri, f"it cannot be read ({_first_line(exc)})")) from None
        card = _compatible_card(uri, dict(model.metadata.metadata or {}))
        try:
            predictor.predict(sample_features())
        except Exception as exc:  # noqa: BLE001 - whatever fails here would fail every request
            raise ModelNotFound(_other_code(uri, f"it fails on a sample ({_first_line(exc)})")) from None
        return LoadedModel(predictor, card, uri, self._version_of(uri))

    def load_version(self, version: str) -> LoadedModel:
        """`load` by version number: what an alias named may have moved since, the number has not."""
        return self.load(f"models:/{self.name}/{version}")

    def decide(self, metric: str, candidate_value: float, min_improvement: float = 0.0) -> Decision:
        """Whether a candidate with `candidate_value` (higher is better) should take the alias."""
        current = self.champion()
        if current is None:
            return Decision(True, f"no {self.alias} yet", None, None, candidate_value)
        current_value = self._version_metric(current, metric)
        if current_value is None:
            return Decision(
                True,
                f"{self.alias} v{current.version} has no {metric} to compare with",
                current.version,
                None,
                candidate_value,
            )
        against = f"{self.alias} v{current.version} ({current_value:.4f})"
        if candidate_value > current_value + min_improvement:
            reason = f"{metric} {candidate_value:.4f} beats {against}"
            return Decision(True, reason, current.version, current_value, candidate_value)
        reason = f"{metric} {candidate_value:.4f} does not beat {against}"
        return Decision(False, reason, current.version, current_value, candidate_value)

    def logged_backtest(self, version: ModelVersion) -> dict[str, float]:
        """Every backtest metric logged in the run that produced `version` ({} without a run)."""
        if not version.run_id:
            return {}
        metrics = self.client.get_run(version.run_id).data.metrics
        return {k.removeprefix(METRIC_PREFIX): v for k, v in metrics.items() if k.startswith(METRIC_PREFIX)}

    def promote(self, version: str, check_loads: bool = False) -> str | None:
        """Give `version` the alias; returns the version that held it before (or None).

        With `check_loads`, the version must load with this code (`load`) before the alias moves;
        ModelNotFound (like RegistryError for an unknown version) leaves the alias where it was.
        """
        try:
            self.client.get_model_version(self.name, str(version))
        except MlflowException:
            raise RegistryError(f"registered model {self.name!r} has no version {version}") from None
        if check_loads:
            self.load_version(str(version))
        previous = self.champion()
        if previous is not None and str(previous.version) == str(version):
            return str(previous.version)
        self.client.set_registered_model_alias(self.name, self.alias, str(version))
        self.client.set_registered_model_tag(
            self.name, HISTORY_TAG, ",".join([*self._history(), str(version)])
        )
        return str(previous.version) if previous else None

    def rollback(self) -> tuple[str, str]:
        """Move the alias back to the version that held it before the current one; (from, to)."""
        current = self.champion()
        if current is None:
            raise RegistryError(f"registered model {self.name!r} has no {self.alias} to roll back")
        past = self._history()
        # Walk back past every entry of the current version (it may have been promoted more than once).
        while past and past[-1] == str(current.version):
            past.pop()
        if not past:
            raise RegistryError(
                f"{self.alias} v{current.version} is the first {self.alias}; there is nothing to roll back to"
            )
        target = past[-1]
        self.client.set_registered_model_alias(self.name, self.alias, target)
        self.client.set_registered_model_tag(self.name, HISTORY_TAG, ",".join(past))
        return str(current.version), target

    def tag(self, version: str, tags: Mapping[str, str]) -> None:
        """Record `tags` on the version (what the gate decided and why, who promoted it)."""
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, str(version), key, value)

    def trained_on(self, sketch: list[str]) -> str | None:
        """The newest version trained on the customers of `sketch` (`tracking.customer_sketch`; at least
        `tracking.SAME_CUSTOMERS` in common), or None."""
        quoted = self.name.replace("'", "''")
        try:
            versions = self.client.search_model_versions(f"name = '{quoted}'")
        except MlflowException:
            return None
        for version in sorted(versions, key=lambda v: int(v.version), reverse=True):
            logged = self.sketch_of(version)
            if logged and tracking.shared_customers(sketch, logged) >= tracking.SAME_CUSTOMERS:
                return str(version.version)
        return None

    def sketch_of(self, version: ModelVersion) -> list[str] | None:
        """The customer sketch (`tracking.customer_sketch`) logged by the run that produced `version`; None
        for a version without one (trained before sketches were logged, or whose run cannot be read)."""
        if not version.run_id:
            return None
        try:
            logged = self.client.get_run(version.run_id).data.tags.get(tracking.SKETCH_TAG)
        except MlflowException:  # no run, one deleted for good, or one in another store: nothing to tell
            return None
        return logged.split(",") if logged else None

    def _history(self) -> list[str]:
        tag = self.client.get_registered_model(self.name).tags.get(HISTORY_TAG, "")
        return [v for v in tag.split(",") if v]

    def _version_metric(self, version: ModelVersion, metric: str) -> float | None:
        """The backtest metric logged in the run that produced `version`."""
        if not version.run_id:
            return None
        value = self.client.get_run(version.run_id).data.metrics.get(METRIC_PREFIX + metric)
        return None if value is None or math.isnan(value) else float(value)

    def _version_of(self, uri: str) -> str:
        """The version number a `models:/` URI names (by number or by alias); other URIs stand for themselves."""
        match = re.fullmatch(r"models:/([^/@]+)(?:@(.+)|/(\d+))", uri)
        if not match:
            return uri
        name, alias, number = match.groups()
        if number:
            return number
        return str(self.client.get_model_version_by_alias(name, alias).version)


def _compatible_card(uri: str, stored: dict) -> ModelCard:
    """The model's card, once its stored form says this code computes its features and reads its format.

    Checked on the stored dict before it is read as a card: a model of other code may lack the card's fields.
    """
    trained_on = stored.get("features_version")
    if trained_on != FEATURES_VERSION:
        raise ModelNotFound(
            f"model {uri} was trained on feature definitions {trained_on}, this code computes "
            f"{FEATURES_VERSION}. Fix: retrain with `clv train` (or `make train`), or use the code it was "
            "trained with."
        )
    saved_as = stored.get("model_format", 1)
    if saved_as != MODEL_FORMAT:
        raise ModelNotFound(
            _other_code(uri, f"it is in model format {saved_as}, this code reads {MODEL_FORMAT}")
        )
    try:
        return ModelCard.from_dict(stored)
    except ValueError as exc:
        raise ModelNotFound(_other_code(uri, str(exc))) from None


def _other_code(uri: str, why: str) -> str:
    return (
        f"model {uri} was saved by code this version cannot run: {why}. Fix: retrain with `clv train` "
        "(or `make train`), or roll back to a version this code can load (`clv rollback`), or use the "
        "code it was trained with."
    )


def _first_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}".rstrip(": ")
