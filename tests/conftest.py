"""Shared test hygiene."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

import training  # noqa: F401 - before any test module imports MLflow: it turns MLflow's telemetry off

# Every property test draws the same examples on every run (a seed from the test itself) and replays no
# saved failures: a test that passed and failed on the same commit, as one did in CI, tells nobody anything.
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")


@pytest.fixture(scope="session", autouse=True)
def _spark_scratch_in_the_test_tree(tmp_path_factory):
    """Spark's scratch directories (blockmgr-*, spark-*, artifacts-*, native libraries) go to the run's
    temporary tree instead of /tmp: a JVM a test stops with SIGKILL (`features.spark.abort`, a CLI killed
    mid-run) never deletes its own, and CI runs left dozens in /tmp. The environment reaches the session's
    JVM and every `clv` subprocess a test starts."""
    scratch = str(tmp_path_factory.mktemp("spark"))
    before = {name: os.environ.get(name) for name in ("SPARK_LOCAL_DIRS", "SPARK_SUBMIT_OPTS")}
    os.environ["SPARK_LOCAL_DIRS"] = scratch
    os.environ["SPARK_SUBMIT_OPTS"] = (
        f"{before['SPARK_SUBMIT_OPTS'] or ''} -Djava.io.tmpdir={scratch}".strip()
    )
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def _reset_mlflow_uris():
    """`training.tracking.configure` sets process-wide MLflow URIs (and their environment variables,
    which MLflow sets for subprocesses); no test may inherit another test's store."""
    yield
    import mlflow

    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"):
        os.environ.pop(name, None)


def _assert_coherent_rows(scores) -> None:
    """The output semantics on every row of a score table (README, "What the numbers mean")."""
    import numpy as np

    assert scores["customer_id"].is_unique
    columns = ["predicted_clv", "predicted_clv_low", "predicted_clv_high", "churn_prob"]
    numbers = scores[[*columns, "expected_orders", "expected_aov"]].to_numpy(float)
    assert np.isfinite(numbers).all()
    # p_alive is known on every row, or, where the log shows no drop-out, on none (models/predictor.py).
    p_alive = scores["p_alive"].to_numpy(float)
    assert np.isfinite(p_alive).all() or np.isnan(p_alive).all(), scores.loc[np.isnan(p_alive), "customer_id"]
    alive_known = np.isfinite(p_alive).all()
    assert (scores["predicted_clv_low"] <= scores["predicted_clv"] + 1e-9).all()
    assert (scores["predicted_clv"] <= scores["predicted_clv_high"] + 1e-9).all()
    assert (scores["predicted_clv_low"] >= 0).all() and (scores["expected_orders"] >= 0).all()
    assert scores["churn_prob"].between(0, 1).all()
    # P(no order in the horizon) >= 1 - E[orders] (Markov's inequality), and a customer who has left
    # cannot order: P(churn) = 1 - P(alive) + P(alive) P(no order | alive) >= 1 - P(alive).
    assert (scores["churn_prob"] >= 1 - scores["expected_orders"] - 1e-6).all()
    if alive_known:
        assert scores["p_alive"].between(0, 1).all()
        assert (scores["churn_prob"] >= 1 - scores["p_alive"] - 1e-6).all()
        both = (scores["p_alive"] >= 0.9) & (scores["churn_prob"] >= 0.9)
        assert not both.any(), scores.loc[both, ["customer_id", "p_alive", "churn_prob"]]
    # The interval at the default coverage (0.8): from 0 once buying nothing is likelier than 10%, and
    # [0, the value] once it is as likely as 80%.
    assert (scores.loc[scores["churn_prob"] >= 0.1, "predicted_clv_low"] == 0).all()
    likely_none = scores[scores["churn_prob"] >= 0.8]
    assert np.allclose(likely_none["predicted_clv_high"], likely_none["predicted_clv"], rtol=1e-9, atol=0), (
        likely_none.loc[likely_none["predicted_clv_high"] > likely_none["predicted_clv"] * (1 + 1e-9)]
    )


@pytest.fixture
def assert_coherent_rows():
    """`assert_coherent_rows(scores)`: fails naming the rows whose numbers contradict each other."""
    return _assert_coherent_rows


@pytest.fixture(scope="session")
def spark_backend():
    """One local Spark session (2 cores, few shuffle partitions for small tests) for the whole run,
    stopped at the end with its JVM. Needs the spark extra (`make test` installs it with `make spark`)."""
    pytest.importorskip("pyspark", reason="the Spark engine's tests need `make spark`")
    from features import spark

    backend = spark.connect("local[2]", {"spark.sql.shuffle.partitions": "4"})
    yield backend
    spark.stop(backend)
