"""The promotion gate, manual promotion and rollback against a real (SQLite) MLflow registry."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from config import MlflowSettings
from training.registry import ModelNotFound, Registry, RegistryError

NAME, ALIAS = "clv", "champion"


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("gate")
    client = MlflowClient(uri, registry_uri=uri)
    client.create_registered_model(NAME)
    return client


@pytest.fixture
def registry(client, tmp_path) -> Registry:
    return Registry(MlflowSettings(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="gate"))


def new_version(client: MlflowClient, spearman: float) -> str:
    """A registered version whose run logged `backtest_spearman` (no model files are needed for the gate)."""
    with mlflow.start_run() as run:
        mlflow.log_metric("backtest_spearman", spearman)
    version = client.create_model_version(
        NAME, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )
    return str(version.version)


def test_first_version_is_promoted(client, registry):
    v1 = new_version(client, 0.5)
    decision = registry.decide("spearman", 0.5)
    assert decision.promote and "no champion" in decision.reason
    registry.promote(v1)
    assert str(registry.champion().version) == v1


def test_gate_refuses_a_worse_model_and_keeps_the_champion(client, registry):
    v1 = new_version(client, 0.6)
    registry.promote(v1)
    new_version(client, 0.4)
    decision = registry.decide("spearman", 0.4)
    assert not decision.promote
    assert "does not beat champion v1" in decision.reason
    assert str(registry.champion().version) == v1


def test_gate_accepts_a_better_model(client, registry):
    registry.promote(new_version(client, 0.6))
    decision = registry.decide("spearman", 0.7)
    assert decision.promote and decision.champion_value == pytest.approx(0.6)


def test_an_equal_model_is_not_promoted(client, registry):
    registry.promote(new_version(client, 0.6))
    assert not registry.decide("spearman", 0.6).promote


def test_rollback_moves_the_alias_back_step_by_step(client, registry):
    v1, v2, v3 = (new_version(client, s) for s in (0.5, 0.6, 0.7))
    for v in (v1, v2, v3):
        registry.promote(v)
    assert registry.rollback() == (v3, v2)
    assert str(registry.champion().version) == v2
    assert registry.rollback() == (v2, v1)
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()


def test_promote_unknown_version_is_a_clear_error(registry):
    with pytest.raises(RegistryError, match="no version 42"):
        registry.promote("42")


def test_rollback_without_champion(registry):
    with pytest.raises(RegistryError, match="no champion"):
        registry.rollback()


def test_the_champion_version_without_a_champion_says_how_to_get_one(registry):
    assert registry.champion() is None
    with pytest.raises(ModelNotFound, match=r"cannot find clv@champion in sqlite:///.*Fix: run `make train`"):
        registry.champion_version()


def test_clv_promote_refuses_a_version_that_cannot_be_loaded(client, registry, tmp_path, monkeypatch):
    """Issue 13: `clv promote` moved the alias to a version whose model could not be loaded, and the service
    then failed to start. A version without model files (as `new_version` makes) must be refused."""
    from typer.testing import CliRunner

    from clv.cli import app

    v1, v2 = new_version(client, 0.5), new_version(client, 0.6)
    registry.promote(v1)
    monkeypatch.setenv("CLV_MLFLOW__TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = CliRunner().invoke(app, ["promote", v2])
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "no model at models:/clv/" in text and "champion was not moved" in text
    assert str(registry.champion().version) == v1
    unknown = CliRunner().invoke(app, ["promote", "42"])
    assert unknown.exit_code == 1 and "no version 42" in " ".join(unknown.output.split())
