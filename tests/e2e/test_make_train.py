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
from models.targeting import SEGMENTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_make_train_from_a_clean_directory(tmp_path, assert_coherent_rows):
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
    for baseline in ("bgnbd_gg", "pareto_gg", "textbook"):
        assert run.data.metrics["backtest_spearman"] > run.data.metrics[f"baseline_{baseline}_spearman"]
    assert any(a.path == "plots" for a in client.list_artifacts(champion.run_id))

    scores = pd.read_parquet(tmp_path / "artifacts/scores.parquet")
    assert list(scores.columns[: len(SCORE_COLUMNS)]) == list(SCORE_COLUMNS)
    assert scores["customer_id"].is_unique
    assert set(scores["model_version"].astype(str)) == {str(champion.version)}
    assert_coherent_rows(scores)

    # Segments mean what their names say on the demo shop (models/targeting.py).
    by_segment = scores.groupby("segment").agg(share=("customer_id", "size"), churn=("churn_prob", "mean"))
    by_segment["share"] /= len(scores)
    print(by_segment)
    # Every buyer's segment holds customers; `no_purchase` only where someone has no purchase (refunds only).
    buyer_segments = set(SEGMENTS) - {"no_purchase"}
    assert buyer_segments <= set(by_segment.index) <= set(SEGMENTS), "every buyer segment holds customers"
    assert by_segment.loc["high_value_at_risk", "share"] >= 0.01
    assert by_segment.loc["high_value_at_risk", "churn"] > by_segment.loc["vip", "churn"]
    for active in ("vip", "active_low_value"):
        assert by_segment.loc[active, "churn"] < 0.5, active
    vip_value = scores.loc[scores["segment"] == "vip", "predicted_clv"].min()
    assert vip_value >= scores["predicted_clv"].quantile(0.75), "vip customers are high value"
