"""`make train` from nothing configured: demo shop, training, registry, score table.

Runs the real Makefile (`make -f`) in a scratch working directory, so a developer's own mlflow.db
and data are never touched; the Makefile installs into and runs the project's own virtualenv.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from features.schema import SCORE_COLUMNS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_make_train_from_a_clean_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLV_", "MLFLOW_"))}
    result = subprocess.run(
        ["make", "-f", str(ROOT / "Makefile"), "train"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Backtest" in output and "make mlflow-ui" in output
    assert (tmp_path / "data/demo/transactions.parquet").exists()

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("clv", "champion")
    run = client.get_run(champion.run_id)
    assert run.data.metrics["backtest_spearman"] > run.data.metrics["baseline_btyd_spearman"]
    assert any(a.path == "plots" for a in client.list_artifacts(champion.run_id))

    scores = pd.read_parquet(tmp_path / "artifacts/scores.parquet")
    assert list(scores.columns[: len(SCORE_COLUMNS)]) == list(SCORE_COLUMNS)
    assert scores["customer_id"].is_unique
    assert set(scores["model_version"].astype(str)) == {str(champion.version)}
