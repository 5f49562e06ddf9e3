"""The MLflow model registry: the promotion gate, promotion by hand, and rollback.

The registered model (default `clv`) carries an alias (default `champion`) for what serves.
`decide` compares a candidate's backtest metric with the champion's logged one; `clv train` uses it
only when the champion cannot be re-scored on the candidate's window (`training.gate`). Every move
of the alias is appended to the registered model's `champion_history` tag, so rollback knows where
to go back to.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

HISTORY_TAG = "champion_history"
METRIC_PREFIX = "backtest_"


class RegistryError(RuntimeError):
    """A registry operation that cannot be done; the message says why."""


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    champion_version: str | None
    champion_value: float | None
    candidate_value: float


def champion(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version holding `alias`, or None when there is no such model or alias yet."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def version_metric(client: MlflowClient, version: ModelVersion, metric: str) -> float | None:
    """The backtest metric logged in the run that produced `version`."""
    if not version.run_id:
        return None
    value = client.get_run(version.run_id).data.metrics.get(METRIC_PREFIX + metric)
    return None if value is None or math.isnan(value) else float(value)


def decide(
    client: MlflowClient,
    name: str,
    alias: str,
    metric: str,
    candidate_value: float,
    min_improvement: float = 0.0,
) -> Decision:
    """Whether a candidate with `candidate_value` (higher is better) should take the alias."""
    current = champion(client, name, alias)
    if current is None:
        return Decision(True, f"no {alias} yet", None, None, candidate_value)
    current_value = version_metric(client, current, metric)
    if current_value is None:
        return Decision(
            True,
            f"{alias} v{current.version} has no {metric} to compare with",
            current.version,
            None,
            candidate_value,
        )
    if candidate_value > current_value + min_improvement:
        reason = f"{metric} {candidate_value:.4f} beats {alias} v{current.version} ({current_value:.4f})"
        return Decision(True, reason, current.version, current_value, candidate_value)
    reason = f"{metric} {candidate_value:.4f} does not beat {alias} v{current.version} ({current_value:.4f})"
    return Decision(False, reason, current.version, current_value, candidate_value)


def history(client: MlflowClient, name: str) -> list[str]:
    tag = client.get_registered_model(name).tags.get(HISTORY_TAG, "")
    return [v for v in tag.split(",") if v]


def promote(
    client: MlflowClient, name: str, version: str, alias: str, check: Callable[[str], None] = lambda _: None
) -> str | None:
    """Give `version` the alias; returns the version that held it before (or None).

    `check(version)` runs once the version is known to exist and before the alias moves; whatever it
    raises (the model cannot be loaded, say) leaves the alias where it was.
    """
    try:
        client.get_model_version(name, str(version))
    except MlflowException:
        raise RegistryError(f"registered model {name!r} has no version {version}") from None
    check(str(version))
    previous = champion(client, name, alias)
    if previous is not None and str(previous.version) == str(version):
        return str(previous.version)
    client.set_registered_model_alias(name, alias, str(version))
    client.set_registered_model_tag(name, HISTORY_TAG, ",".join([*history(client, name), str(version)]))
    return str(previous.version) if previous else None


def rollback(client: MlflowClient, name: str, alias: str) -> tuple[str, str]:
    """Move the alias back to the version that held it before the current one; (from, to)."""
    current = champion(client, name, alias)
    if current is None:
        raise RegistryError(f"registered model {name!r} has no {alias} to roll back")
    past = history(client, name)
    # Walk back past every entry of the current version (it may have been promoted more than once).
    while past and past[-1] == str(current.version):
        past.pop()
    if not past:
        raise RegistryError(
            f"{alias} v{current.version} is the first {alias}; there is nothing to roll back to"
        )
    target = past[-1]
    client.set_registered_model_alias(name, alias, target)
    client.set_registered_model_tag(name, HISTORY_TAG, ",".join(past))
    return str(current.version), target
