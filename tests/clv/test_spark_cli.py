"""`clv features`, `clv score` and `clv train` with `--engine spark` on local Spark, as a user runs them: the
same tables and the same backtest as the default engine (issue 15)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from clv.cli import app
from demo.shop import write_demo_shop

pytestmark = pytest.mark.slow
runner = CliRunner()


def run(folder, monkeypatch, *args: str):
    monkeypatch.chdir(folder)
    monkeypatch.setenv("CLV_MLFLOW__TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return re.sub(r"\s+", " ", result.output)


def same_table(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.sort_values("customer_id").reset_index(drop=True)
    b = b.sort_values("customer_id").reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    assert a.dtypes.astype(str).equals(b.dtypes.astype(str)), (a.dtypes, b.dtypes)
    for column in a.columns:
        if pd.api.types.is_float_dtype(a[column]):
            assert np.allclose(a[column], b[column], rtol=1e-9, atol=0, equal_nan=True), column
        else:
            assert a[column].astype(str).equals(b[column].astype(str)), column


def backtest_metrics(folder, run_id: str) -> dict[str, float]:
    metrics = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").get_run(run_id).data.metrics
    return {k: v for k, v in metrics.items() if k.startswith("backtest_")}


def test_features_score_and_train_on_spark_equal_the_default_engine(tmp_path, monkeypatch, spark_backend):
    write_demo_shop(tmp_path / "shop", n_customers=300, seed=11)
    shop = [
        *("--transactions", str(tmp_path / "shop" / "transactions.parquet")),
        *("--events", str(tmp_path / "shop" / "events.parquet")),
        *("--customers", str(tmp_path / "shop" / "customers.parquet")),
    ]
    for engine in ("duckdb", "spark"):
        text = run(
            tmp_path, monkeypatch, "features", "--out", f"f_{engine}.parquet", *shop, "--engine", engine
        )
        assert f"engine {engine}" in text
    assert (tmp_path / "f_spark.parquet").is_dir()
    same_table(pd.read_parquet(tmp_path / "f_duckdb.parquet"), pd.read_parquet(tmp_path / "f_spark.parquet"))

    trained = {}
    for engine in ("duckdb", "spark"):
        text = run(tmp_path, monkeypatch, "train", *shop, "--horizon-days", "90", "--engine", engine)
        trained[engine] = re.search(r"MLflow run (\w+)", text).group(1)
    on_duckdb, on_spark = (backtest_metrics(tmp_path, trained[e]) for e in ("duckdb", "spark"))
    assert on_duckdb and on_duckdb.keys() == on_spark.keys()
    for name, value in on_duckdb.items():
        assert on_spark[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name

    outputs = {}
    for engine in ("duckdb", "spark"):
        outputs[engine] = run(
            tmp_path, monkeypatch, "score", "--out", f"s_{engine}.parquet", *shop, "--engine", engine
        )
    # The same summary line (customers, model version, as_of, total value, segments) from both engines.
    assert outputs["duckdb"].split("Wrote ")[1].replace("s_duckdb", "s_X") == outputs["spark"].split(
        "Wrote "
    )[1].replace("s_spark", "s_X")
    same_table(pd.read_parquet(tmp_path / "s_duckdb.parquet"), pd.read_parquet(tmp_path / "s_spark.parquet"))


def test_spark_output_must_be_parquet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app, ["score", "--out", "scores.csv", "--transactions", "t.csv", "--engine", "spark"]
    )
    assert result.exit_code == 2
    assert "must end in .parquet" in result.output
