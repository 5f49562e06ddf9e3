"""The whole training path on a small demo shop, against a real MLflow store.

Covers: train -> registered model with the champion alias, metrics and plots in the run; scoring;
the gate refusing a deliberately worse model; rollback; a run failing half-way.
"""

from __future__ import annotations

import datetime as dt

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from config import load_settings
from demo.shop import write_demo_shop
from features.contract import load_shop
from features.schema import SCORE_COLUMNS
from training.pipeline import train
from training.registry import Registry
from training.score import score
from training.windows import NO_VALIDATION_WINDOW

from .conftest import mlflow_server


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    write_demo_shop(out, n_customers=1500, seed=7)
    return out


def settings_for(tmp_path, tracking_uri: str | None = None):
    uri = tracking_uri or f"sqlite:///{tmp_path / 'mlflow.db'}"
    return load_settings(mlflow={"tracking_uri": uri}, train={"n_snapshots": 2, "horizon_days": 180})


def load(shop_dir):
    return load_shop(
        shop_dir / "transactions.parquet", shop_dir / "events.parquet", shop_dir / "customers.parquet"
    )


@pytest.fixture
def trained(tmp_path, shop_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = settings_for(tmp_path)
    result = train(load(shop_dir), settings)
    yield settings, result
    mlflow.set_tracking_uri(None)


def champion_version(settings) -> str:
    client = MlflowClient(settings.mlflow.tracking_uri)
    return str(client.get_model_version_by_alias("clv", "champion").version)


def test_train_registers_a_champion_with_metrics_and_plots(trained):
    settings, result = trained
    assert result.promoted and result.version == "1"
    assert champion_version(settings) == "1"
    client = MlflowClient(settings.mlflow.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    for metric in (
        "spearman",
        "normalized_gini",
        "top_decile_capture",
        "decile_mape",
        "aggregate_error",
        "mae",
        "rmse",
        "churn_auc",
        "brier",
        "interval_coverage",
    ):
        assert f"backtest_{metric}" in run.data.metrics, metric
    for baseline in ("base", "bgnbd_gg", "pareto_gg", "textbook"):
        assert f"baseline_{baseline}_spearman" in run.data.metrics, baseline
    # The run says which model it serves and why (the backtest may have found the base better).
    assert run.data.tags["served_model"] == result.served_model in {"hybrid", "base"}
    assert run.data.tags["notes"] and run.data.params["final_plan"]
    assert run.data.params["base_models"] in ("mbgnbd,pareto", "mbgcnbd") and run.data.params["regularity_k"]
    assert run.data.params["data_fingerprint"]
    # The demo shop has amounts: its orders are valued by one of the spend rules, not at 1 each.
    assert run.data.params["order_value"] in ("Gamma-Gamma", "the shop's mean order value")
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    for plot in ("cumulative_gain", "deciles", "churn_calibration", "feature_importance", "clv_distribution"):
        assert f"plots/{plot}.png" in artifacts
    # The refitted scoring model is registered; the backtest model is logged beside it, told apart.
    version = client.get_model_version("clv", "1")
    assert version.tags["gate"] == "no champion yet"
    model = mlflow.pyfunc.load_model("models:/clv@champion")
    assert model.metadata.metadata["role"] == "scoring"
    assert model.metadata.metadata["horizon_days"] == 180


def test_score_writes_one_row_per_customer(trained, shop_dir, tmp_path, assert_coherent_rows):
    settings, _ = trained
    out = tmp_path / "scores.csv"
    table, _ = score(load(shop_dir), settings, out)
    written = pd.read_csv(out)
    assert list(written.columns[: len(SCORE_COLUMNS)]) == list(SCORE_COLUMNS)
    assert written["customer_id"].is_unique and len(written) == len(table)
    assert (written["predicted_clv_low"] <= written["predicted_clv"] + 1e-9).all()
    assert (written["predicted_clv"] <= written["predicted_clv_high"] + 1e-9).all()
    assert_coherent_rows(written)
    assert set(written["model_version"].astype(str)) == {"1"}
    assert not list(tmp_path.glob(".scores.csv*")), "no temporary file left behind"


def test_gate_refuses_a_worse_model_and_rollback(trained, shop_dir, monkeypatch):
    settings, first = trained
    import models.predictor as predictor_module

    original_fit, original_predict = predictor_module.CLVPredictor.fit, predictor_module.CLVPredictor.predict

    def fit_worse(self, *args, **kwargs):
        self.worse_ = True  # only models fitted now rank badly; the champion re-scored by the gate does not
        return original_fit(self, *args, **kwargs)

    def shuffled(self, features):
        out = original_predict(self, features)
        if getattr(self, "worse_", False):
            out["predicted_clv"] = np.random.default_rng(0).permutation(out["predicted_clv"].to_numpy())
        return out

    monkeypatch.setattr(predictor_module.CLVPredictor, "fit", fit_worse)
    monkeypatch.setattr(predictor_module.CLVPredictor, "predict", shuffled)
    worse = train(load(shop_dir), settings)
    # The same data and window: the champion's backtest model is re-scored there, not read from its run.
    assert not worse.promoted and "v1's backtest model" in worse.reason
    assert "the champion is better beyond noise" in worse.reason
    assert champion_version(settings) == "1"
    tags = MlflowClient(settings.mlflow.tracking_uri).get_model_version("clv", worse.version).tags
    assert float(tags["gate_champion_spearman"]) > float(tags["gate_candidate_spearman"])
    assert "champion v1 (re-scored on this window)" in worse.comparison().index
    monkeypatch.setattr(predictor_module.CLVPredictor, "fit", original_fit)
    monkeypatch.setattr(predictor_module.CLVPredictor, "predict", original_predict)
    # An equal model on the same window is not worse beyond noise: the newer one serves.
    again = train(load(shop_dir), settings)
    assert again.promoted and "not worse beyond noise" in again.reason
    # Issue 13: the same data, settings and seed train to the same numbers, to the last bit.
    pd.testing.assert_frame_equal(again.backtest.metrics, first.backtest.metrics, check_exact=True)

    registry = Registry(settings.mlflow)
    registry.promote(worse.version)
    assert champion_version(settings) == worse.version
    registry.rollback()
    assert champion_version(settings) == again.version


def test_a_champion_that_has_seen_the_window_is_not_rescored_on_it(trained, shop_dir):
    """Training at an earlier cut-off puts this backtest's window inside what the champion's backtest
    model was fitted on: re-scoring it there would flatter it, so the gate compares the logged numbers
    and says why."""
    settings, first = trained
    earlier = first.as_of - dt.timedelta(days=60)
    result = train(load(shop_dir), settings, as_of=earlier)
    assert f"after this backtest's cut-off {result.backtest.cutoff}" in result.reason
    assert "each on its own backtest window" in result.reason
    tags = MlflowClient(settings.mlflow.tracking_uri).get_model_version("clv", result.version).tags
    assert tags["gate_window"] == "each model's own backtest window"
    # The card (GET /model's data_window) says the model saw data up to its cut-off, not the whole log.
    card = Registry(settings.mlflow).load_version(result.version).card
    assert card.data_last_date == earlier < first.as_of


def test_a_champion_that_cannot_score_the_new_data_is_replaced(trained, shop_dir):
    """The champion was trained with events and customers; a shop that now sends transactions only
    cannot be scored by it (`clv score` refuses), so re-scoring it without them would compare wrong
    numbers: the candidate replaces it, and the reason says why."""
    settings, _ = trained
    result = train(load_shop(shop_dir / "transactions.parquet"), settings)
    assert result.promoted, result.reason
    assert "champion v1 cannot score data like this run's, so it is replaced" in result.reason
    assert "trained with the events table and none was given" in result.reason
    assert champion_version(settings) == result.version


def test_a_model_of_another_horizon_does_not_replace_the_champion_silently(trained, shop_dir):
    """Apps read the champion's values as 180-day values: a 90-day model is registered, not promoted, and
    the reason says how to serve it anyway."""
    settings, first = trained
    shorter = load_settings(
        mlflow={"tracking_uri": settings.mlflow.tracking_uri}, train={"n_snapshots": 2, "horizon_days": 90}
    )
    result = train(load(shop_dir), shorter)
    assert not result.promoted
    assert "champion v1 predicts 180 days and this model 90" in result.reason
    assert f"To serve the new model: clv promote {result.version}" in result.reason
    assert champion_version(settings) == first.version


def test_failure_half_way_leaves_champion_and_marks_run_failed(trained, shop_dir, monkeypatch):
    settings, _ = trained
    import training.tracking as tracking

    def broken(*args, **kwargs):
        raise RuntimeError("artifact store unavailable")

    monkeypatch.setattr(tracking, "log_model", broken)
    with pytest.raises(RuntimeError, match="artifact store"):
        train(load(shop_dir), settings)
    client = MlflowClient(settings.mlflow.tracking_uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("clv").experiment_id], order_by=["start_time DESC"]
    )
    assert runs[0].info.status == "FAILED"
    assert champion_version(settings) == "1"


@pytest.mark.slow
def test_train_against_a_real_mlflow_server(tmp_path, shop_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        with mlflow_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "artifacts") as uri:
            settings = settings_for(tmp_path, uri)
            result = train(load(shop_dir), settings)
            assert result.promoted
            assert champion_version(settings) == result.version
            assert (tmp_path / "artifacts").exists()
    finally:
        mlflow.set_tracking_uri(None)


def test_the_segment_summary_is_ordered_alike_on_both_engines():
    """Largest first and ties by name: Spark's group-by and pandas' value_counts listed tied segments in
    different orders, so the same table printed two different "Segments:" lines."""
    from training.score import ScoreSummary

    def summary(segments):
        return ScoreSummary(4, "1", dt.date(2025, 1, 1), 90, 10.0, "currency", segments)

    expected = {"vip": 2, "high_value_at_risk": 1, "new": 1}
    assert list(summary({"new": 1, "vip": 2, "high_value_at_risk": 1}).segments.items()) == list(
        expected.items()
    )
    assert list(summary({"high_value_at_risk": 1, "new": 1, "vip": 2}).segments.items()) == list(
        expected.items()
    )


def test_empty_value_deciles_are_explained():
    """Seen on the apparel cohort: 191 of 600 customers at one predicted value, decile 1 with 246 customers and
    deciles 2 to 4 empty, which read as a broken table with no word why."""
    from training.score import ScoreSummary

    table = pd.DataFrame(
        {
            "customer_id": [str(i) for i in range(10)],
            "predicted_clv": [1.0] * 4 + [float(i) for i in range(5, 11)],
            "value_decile": [1] * 4 + list(range(5, 11)),
            "segment": ["nurture"] * 10,
            "model_version": "1",
            "as_of": dt.date(2025, 1, 1),
            "horizon_days": 90,
            "value_unit": "currency",
        }
    )
    note = ScoreSummary.of(table).empty_deciles_note()
    assert note == (
        "value deciles 2, 3, 4 hold nobody: the decile lines were set at training so that a decile holds at "
        "most a tenth of the customers there, and customers with equal predicted values share the lowest tenth "
        "they span, so a large group of equal values leaves the deciles above its own empty (here decile 1 "
        "holds 4 of 10)"
    )
    full = table.assign(value_decile=range(1, 11))
    assert ScoreSummary.of(full).empty_deciles_note() is None


def test_a_young_shop_says_once_why_the_base_is_served_and_names_the_base(tmp_path, shop_dir, monkeypatch):
    """Seen on the grocery log with a year of history: "backtest: the history is too short for a validation
    window: serving the buy-till-you-die base (MBG/CNBD-k, ...)", then the same sentence for the final fit with
    other models, and a backtest row "BTYD base + a value of 1 per order" that read as the served base's."""
    monkeypatch.chdir(tmp_path)
    first = pd.read_parquet(shop_dir / "transactions.parquet")["timestamp"].min().date()
    settings = settings_for(tmp_path)
    result = train(load(shop_dir), settings, as_of=first + dt.timedelta(days=150))
    assert result.served_model == "base"
    # The backtest's fit found no drop-out here, the final fit did: the served table has p_alive, so no note
    # may say it is left empty (seen: "backtest: ... p_alive is left empty; ... nobody is called lapsed" beside
    # 23 lapsed customers).
    assert not result.backtest.base.dropout_found()
    table, _ = score(load(shop_dir), settings, tmp_path / "scores.csv", as_of=result.as_of)
    assert table["p_alive"].notna().all()
    assert not [note for note in result.notes if "p_alive is left empty" in note], result.notes
    why = [note for note in result.notes if NO_VALIDATION_WINDOW in note]
    assert why == [f"{NO_VALIDATION_WINDOW}: serving the buy-till-you-die base ({result.served_base})"]
    # With 75 days before the backtest's cut-off, 9 repeat buyers are too few for Gamma-Gamma; with 150, it is fitted.
    measured = result.backtest.base.btyd_.describe()
    assert measured == "MBG/NBD and Pareto/NBD, each buyer's own mean order value"
    assert result.served_base == "MBG/NBD and Pareto/NBD, Gamma-Gamma"
    label = "BTYD base (MBG/NBD and Pareto/NBD) + each buyer's own mean order value"
    assert result.comparison().index[0] == f"{label} (not the base served: see the notes)"
    (change,) = [note for note in result.notes if note.startswith("the backtest's base row (")]
    assert change.startswith(f"the backtest's base row ({measured}, chosen by")
    assert (
        f"is not the base served ({result.served_base}, chosen by the same rules with the whole history)"
        in change
    )
