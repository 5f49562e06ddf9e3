"""The product sends nothing out: MLflow's usage telemetry is off wherever the project imports MLflow."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["training.tracking", "training.registry", "training.pipeline"])
def test_mlflow_is_imported_with_its_telemetry_off(module):
    """MLflow starts a thread that posts usage data when imported; without a network its failure also
    ended a `clv train` in CI (KeyError '_MLFLOW_TELEMETRY_SESSION_ID')."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")}
    # MLflow also stays quiet under pytest or CI variables; the user's shell has neither.
    env = {k: v for k, v in env.items() if k not in ("PYTEST_CURRENT_TEST", "CI")}
    code = (
        f"import {module}\n"
        "from mlflow.telemetry.client import get_telemetry_client\n"
        "print(get_telemetry_client() is None)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
