"""Shared test hygiene."""

from __future__ import annotations

import os

import mlflow
import pytest


@pytest.fixture(autouse=True)
def _reset_mlflow_uris():
    """`training.tracking.configure` sets process-wide MLflow URIs (and their environment variables,
    which MLflow sets for subprocesses); no test may inherit another test's store."""
    yield
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"):
        os.environ.pop(name, None)
