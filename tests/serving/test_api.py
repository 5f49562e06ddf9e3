"""The HTTP API in-process: predictions, live history, exports, roles, and bad requests."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from features.schema import SCORE_COLUMNS
from serving.export import ExportFilter, apply_filter, to_csv
from training import tracking
from training.registry import promote, rollback

from .conftest import ADMIN, APP, MARKETER


@pytest.fixture
def scores(trained) -> pd.DataFrame:
    frame = pd.read_parquet(trained.settings.serve.scores)
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame


def test_predict_returns_the_score_columns_and_unknown_ids(client, scores):
    known = scores["customer_id"].iloc[:3].tolist()
    response = client.post("/predict", json={"customer_ids": [*known, "no-such-customer"]}, headers=APP)
    assert response.status_code == 200
    body = response.json()
    assert [row["customer_id"] for row in body["predictions"]] == known
    assert body["unknown_ids"] == ["no-such-customer"]
    row = body["predictions"][0]
    for column in SCORE_COLUMNS:
        assert column in row
    expected = scores.set_index("customer_id").loc[known[0]]
    assert row["predicted_clv"] == pytest.approx(expected["predicted_clv"])
    assert row["segment"] == expected["segment"]


def test_curl_style_body_without_content_type_is_read_as_json(client, scores):
    body = '{{"customer_ids": ["{}"]}}'.format(scores["customer_id"].iloc[0])
    headers = {**APP, "Content-Type": "application/x-www-form-urlencoded"}
    assert client.post("/predict", content=body, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ("{not json", 400, "malformed JSON"),
        ('{"customer_ids": []}', 400, "customer_ids is empty"),
        ('{"customer_ids": "c1"}', 400, "customer_ids"),
        ('{"ids": ["c1"]}', 400, "customer_ids: this field is required"),
        ("[1, 2]", 400, "body"),
        ("", 400, "the request has no body"),
        ('{"customer_ids": [["c1"]]}', 400, "customer_ids.0"),
        ('{"customer_ids": ["nobody"]}', 404, "none of the 1 customer ids"),
    ],
)
def test_bad_predict_requests_get_a_clear_4xx(client, body, status, says):
    response = client.post("/predict", content=body, headers={**APP, "Content-Type": "application/json"})
    assert response.status_code == status
    assert says in response.json()["error"]


def test_oversize_batch_is_413(client, trained):
    limit = trained.settings.serve.max_batch
    response = client.post("/predict", json={"customer_ids": [str(i) for i in range(limit + 1)]}, headers=APP)
    assert response.status_code == 413
    assert str(limit) in response.json()["error"]


def test_predict_history_matches_batch_scores_for_the_same_history(client, trained, scores):
    transactions = pd.read_parquet(trained.shop / "transactions.parquet")
    events = pd.read_parquet(trained.shop / "events.parquet")
    customers = pd.read_parquet(trained.shop / "customers.parquet")
    as_of = pd.Timestamp(scores["as_of"].iloc[0]).date()
    customer = scores.sort_values("predicted_clv")["customer_id"].iloc[-5]
    history = transactions[transactions["customer_id"] == customer]
    assert 0 < len(history) <= trained.settings.serve.max_history_rows
    body = {
        "as_of": str(as_of),
        "transactions": _records(history),
        "events": _records(events[events["customer_id"] == customer]),
        "customers": _records(customers[customers["customer_id"] == customer]),
    }
    response = client.post("/predict_history", json=body, headers=APP)
    assert response.status_code == 200, response.text
    live = response.json()["predictions"][0]
    looked_up = client.post("/predict", json={"customer_ids": [customer]}, headers=APP).json()
    batch = looked_up["predictions"][0]
    for column in ("predicted_clv", "churn_prob", "p_alive", "expected_orders", "expected_aov"):
        assert live[column] == pytest.approx(batch[column], rel=1e-5), column
    for column in ("segment", "next_best_action", "as_of", "horizon_days", "model_version"):
        assert live[column] == batch[column], column


def test_predict_history_for_a_new_one_order_customer(client):
    body = {
        "transactions": [{"customer_id": "new-1", "timestamp": "2025-12-20T10:00:00+01:00", "amount": 42.5}]
    }
    response = client.post("/predict_history", json=body, headers=APP)
    assert response.status_code == 200, response.text
    row = response.json()["predictions"][0]
    assert row["customer_id"] == "new-1" and row["predicted_clv"] >= 0
    assert row["predicted_clv_low"] <= row["predicted_clv"] <= row["predicted_clv_high"]


@pytest.mark.parametrize(
    ("transactions", "says"),
    [
        ([{"customer_id": "a", "timestamp": "31/31/2020", "amount": 5}], "row 1: cannot read '31/31/2020'"),
        ([{"customer_id": "a", "timestamp": "2025-01-01", "amount": "abc"}], "transactions.amount, row 1"),
        ([{"customer_id": "a", "amount": 5}], "timestamp"),
        ([{"timestamp": "2025-01-01", "amount": 5}], "customer_id"),
        ([{"customer_id": "a", "timestamp": "2025-01-01"}], "amount"),
        ([], "transactions is empty"),
    ],
)
def test_history_that_breaks_the_contract_is_400(client, transactions, says):
    response = client.post("/predict_history", json={"transactions": transactions}, headers=APP)
    assert response.status_code == 400
    assert says in response.json()["error"]


ONE_ORDER = [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 5}]


@pytest.mark.parametrize(
    "body",
    [
        {"as_of": "yesterday", "transactions": ONE_ORDER},
        {"transactions": [1, 2]},
        {"transactions": ONE_ORDER, "events": [{"customer_id": "a", "timestamp": "soon"}]},
        {"transactions": ONE_ORDER, "customers": [{"customer_id": "a", "signup_date": "31/31/2020"}]},
        {"transactions": ONE_ORDER, "extra": 1},
        {"transactions": [{"customer_id": None, "timestamp": "2025-01-01", "amount": 5}]},
        # Python's JSON parser reads 1e400 as infinity.
        '{"transactions": [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 1e400}]}',
        '{"transactions": [{"customer_id": "a", "timestamp": "2025-01-01", "amount": NaN}]}',
    ],
)
def test_odd_history_bodies_get_a_4xx_not_a_500(client, body):
    content = body if isinstance(body, str) else json.dumps(body)
    response = client.post("/predict_history", content=content, headers=APP)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]


def test_a_body_that_is_not_utf8_json_is_400(client):
    response = client.post("/predict", content=b"\xff\xfe{", headers=APP)
    assert response.status_code == 400 and "not UTF-8 JSON text" in response.json()["error"]


def test_unknown_routes_and_methods_answer_in_the_same_shape(client):
    assert "there is no /predictions" in client.get("/predictions").json()["error"]
    response = client.get("/predict", headers=APP)
    assert response.status_code == 405 and "does not take GET" in response.json()["error"]


def test_a_chunked_body_over_the_size_limit_is_413(client, monkeypatch):
    monkeypatch.setattr("serving.api.MAX_BODY_BYTES", 1000)
    chunks = (b'{"customer_ids": [' + b'"x",' * 100 for _ in range(10))
    response = client.post("/predict", content=chunks, headers=APP)
    assert response.status_code == 413 and "larger than" in response.json()["error"]


def test_history_over_the_row_limit_is_413(client, trained):
    rows = [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 1}] * (
        trained.settings.serve.max_history_rows + 1
    )
    assert client.post("/predict_history", json={"transactions": rows}, headers=APP).status_code == 413


def test_export_needs_the_marketer_role(client):
    assert client.post("/export", json={}).status_code == 401
    assert client.post("/export", json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.post("/export", json={}, headers=APP)
    assert response.status_code == 403 and "marketer" in response.json()["error"]
    assert client.post("/export", json={}, headers=MARKETER).status_code == 200
    assert client.post("/export", json={}, headers={"X-API-Key": "admin-key-789"}).status_code == 200


def test_export_csv_equals_the_shared_filter(client, scores):
    spec = {"segment": ["vip", "nurture"], "top": "10%", "churn_max": 0.9}
    response = client.post("/export", json=spec, headers=MARKETER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    expected = apply_filter(scores, ExportFilter(**spec))
    assert response.text == to_csv(expected)
    exported = pd.read_csv(io.StringIO(response.text), dtype={"customer_id": str})
    assert set(exported["segment"]) <= {"vip", "nurture"}
    assert exported["predicted_clv"].is_monotonic_decreasing


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"segment": "gold"}, "unknown segment 'gold'; choose from"),
        ({"top": "ten"}, "top must be"),
        ({"churn_min": 0.8, "churn_max": 0.2}, "churn_min (0.8) is above churn_max (0.2)"),
        ({"min_clv": -1}, "min_clv"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_export_filters_are_400(client, spec, says):
    response = client.post("/export", json=spec, headers=MARKETER)
    assert response.status_code == 400
    assert says in response.json()["error"]


def test_model_information(client):
    info = client.get("/model", headers=APP).json()
    model = info["model"]
    assert model["version"] == "1" and model["horizon_days"] == 180
    assert model["data_window"]["first"] and model["trained_at"]
    assert "spearman" in model["backtest"]["metrics"]
    assert info["scores"]["customers"] > 0


def test_reload_is_admin_only_and_picks_up_a_new_score_table(client, state, trained, scores):
    assert client.post("/admin/reload", headers=MARKETER).status_code == 403
    assert client.post("/admin/reload", headers=ADMIN).json()["reloaded"] is False
    changed = scores.copy()
    changed.loc[0, "predicted_clv"] = 123456.0
    changed.to_parquet(trained.settings.serve.scores, index=False)
    try:
        assert client.post("/admin/reload", headers=ADMIN).json()["reloaded"] is True
        row = client.post(
            "/predict", json={"customer_ids": [changed.loc[0, "customer_id"]]}, headers=APP
        ).json()
        assert row["predictions"][0]["predicted_clv"] == 123456.0
    finally:
        scores.to_parquet(trained.settings.serve.scores, index=False)


def test_reload_picks_up_a_new_champion_and_a_rollback(client, trained):
    settings = trained.settings
    name, alias = settings.mlflow.registered_model, settings.mlflow.champion_alias
    registry = tracking.client(settings.mlflow.tracking_uri)
    first = registry.get_model_version_by_alias(name, alias)
    # A second version of the same model stands in for a retrain (training takes longer than a test should).
    second = registry.create_model_version(name, first.source, run_id=first.run_id, model_id=first.model_id)
    promote(registry, name, second.version, alias)
    try:
        assert client.post("/admin/reload", headers=ADMIN).json()["model_version"] == str(second.version)
        assert client.get("/model", headers=APP).json()["model"]["version"] == str(second.version)
    finally:
        rollback(registry, name, alias)
    assert client.post("/admin/reload", headers=ADMIN).json()["model_version"] == str(first.version)


def test_a_failed_reload_says_why_and_keeps_serving(client, trained, scores):
    path = trained.settings.serve.scores
    moved = path.with_suffix(".away")
    path.rename(moved)
    try:
        response = client.post("/admin/reload", headers=ADMIN)
        assert response.status_code == 503
        assert "reload failed, still serving model v1" in response.json()["error"]
        assert "make train" in response.json()["error"]
    finally:
        moved.rename(path)
    one = {"customer_ids": scores["customer_id"][:1].tolist()}
    assert client.post("/predict", json=one, headers=APP).status_code == 200


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))
