"""The HTTP API in-process: predictions, live history, exports, roles, and bad requests."""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import replace

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features.behaviour import BEHAVIOUR_COUNT_COLUMNS
from features.request import compute_features_for_request
from features.schema import CUSTOMERS, EVENTS, SCORE_COLUMNS, TRANSACTIONS
from models.persistence import STATE_FILE, save_predictor
from serving.api import create_app
from serving.auth import Keyring
from serving.bodies import HistoryRequest, to_columns
from serving.export import ExportFilter, apply_filter, to_csv
from serving.state import ServingState
from training import pipeline, tracking
from training.loading import check_inputs, sample_features
from training.pyfunc import CODE, MODEL_FORMAT, STATE_ARTIFACT, CLVPyfunc
from training.registry import ModelNotFound, Registry

from .conftest import ADMIN, APP, KEYS, MARKETER, ORDER_COLUMNS


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


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/predict", "", '{"customer_ids": ["c1", "c2"]}'),
        ("/predict_history", "", '{"transactions": [{"customer_id": "c1"'),
        ("/predict_history", "{not json", '{"transactions": [{"customer_id": "c1"'),
        ("/export", "{not json", '{"segment": ["vip"]'),
        ("/predict", "[1, 2]", 'body is an array, not a JSON object; send a JSON object, e.g. {"customer_'),
        (
            "/predict_history",
            "null",
            'body is null, not a JSON object; send a JSON object, e.g. {"transactions',
        ),
        ("/predict_history", '"c1"', 'is a string, not a JSON object; send a JSON object, e.g. {"trans'),
    ],
)
def test_a_missing_or_malformed_body_is_answered_with_an_example_for_that_endpoint(client, path, body, says):
    headers = {**ADMIN, "Content-Type": "application/json"}
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 400
    assert says in response.json()["error"]


@pytest.mark.parametrize("path", ["/predict", "/predict_history"])
def test_every_route_reads_a_body_in_the_same_encodings(client, scores, path):
    customer = str(scores["customer_id"].iloc[0])
    body = (
        {"customer_ids": [customer]}
        if path == "/predict"
        else {"transactions": [{**NEW_CUSTOMER[0], "customer_id": "Zoë"}], "events": [], "customers": []}
    )
    text = json.dumps(body, ensure_ascii=False)
    headers = {**APP, "Content-Type": "application/json"}
    for encoding in ("utf-8", "utf-8-sig", "utf-16"):
        assert client.post(path, content=text.encode(encoding), headers=headers).status_code == 200, encoding
    refused = client.post(path, content='{"customer_ids": ["Zoë"]}'.encode("latin-1"), headers=headers)
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("cannot read the body: it is not UTF-8 JSON text; send a JSON")


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


NEW_CUSTOMER = [
    {"customer_id": "new-1", "timestamp": "2025-12-20T10:00:00+01:00", "amount": 42.5, **ORDER_COLUMNS}
]


def test_predict_history_of_a_customer_without_a_purchase_is_not_a_buyer(client, scores):
    """Only a refund, yesterday: the same reading as the batch scores (`models.predictor`), not a buyer of
    yesterday (predicted CLV 141, decile 10, "first order 1 days ago", a welcome series)."""
    as_of = pd.Timestamp(scores["as_of"].iloc[0]).date()
    refund = {**NEW_CUSTOMER[0], "customer_id": "refund-1", "timestamp": f"{as_of}T09:00:00", "amount": -15.0}
    body = {"as_of": str(as_of), "transactions": [refund], "events": [], "customers": []}
    response = client.post("/predict_history", json=body, headers=APP)
    assert response.status_code == 200, response.text
    row = response.json()["predictions"][0]
    assert (row["segment"], row["next_best_action"]) == ("no_purchase", "review")
    assert row["reason"].startswith("no purchase in the log (only refunds or free orders)")
    assert row["next_order_date"] is None and "first order" not in row["reason"]
    assert row["predicted_clv"] < scores["predicted_clv"].median()
    assert row["value_decile"] <= scores["value_decile"].median()


def test_predict_history_for_a_new_one_order_customer(client):
    # The model was trained with events and attributes: [] says this customer has none.
    body = {"transactions": NEW_CUSTOMER, "events": [], "customers": []}
    response = client.post("/predict_history", json=body, headers=APP)
    assert response.status_code == 200, response.text
    row = response.json()["predictions"][0]
    assert row["customer_id"] == "new-1" and row["predicted_clv"] >= 0
    assert row["predicted_clv_low"] <= row["predicted_clv"] <= row["predicted_clv_high"]


def test_predict_history_counts_a_row_without_an_order_id_as_its_days_order(client):
    """A null order_id, which the contract allows, answered 500 once two rows were sent."""
    rows = [
        {**NEW_CUSTOMER[0], "timestamp": "2025-10-01T10:00:00", "order_id": None},
        {**NEW_CUSTOMER[0], "timestamp": "2025-11-15T10:00:00", "order_id": None},
    ]
    named = [{**row, "order_id": f"new-1|{row['timestamp'][:10]}"} for row in rows]
    answers = []
    for transactions in (rows, named):
        body = {"as_of": "2025-12-31", "transactions": transactions, "events": [], "customers": []}
        response = client.post("/predict_history", json=body, headers=APP)
        assert response.status_code == 200, response.text
        answers.append(response.json()["predictions"][0])
    assert answers[0]["segment"] != "no_purchase"
    assert answers[0] == answers[1]


def test_predict_history_names_the_customers_it_leaves_out(client):
    """A customer whose transactions all come after as_of was dropped without a word (/predict says its
    unknown_ids)."""
    later = {**NEW_CUSTOMER[0], "customer_id": "later-1", "timestamp": "2026-01-05T10:00:00"}
    body = {"as_of": "2025-12-31", "transactions": [*NEW_CUSTOMER, later], "events": [], "customers": []}
    response = client.post("/predict_history", json=body, headers=APP)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [row["customer_id"] for row in answer["predictions"]] == ["new-1"]
    assert answer["left_out"] == ["later-1"]


def test_predict_history_with_a_cut_off_before_the_history_says_where_it_starts(client):
    body = {"as_of": "2020-01-01", "transactions": NEW_CUSTOMER, "events": [], "customers": []}
    response = client.post("/predict_history", json=body, headers=APP)
    assert response.status_code == 400
    assert "its transactions run from 2025-12-20" in response.json()["error"]
    assert "Fix: send an as_of on or after a purchase" in response.json()["error"]


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


@pytest.mark.parametrize("path", ["/predict", "/predict_history"])
def test_a_body_nested_too_deeply_is_400_and_said_so(client, path):
    """Seen: lists nested 1,100 deep read "not UTF-8 JSON text" from POST /predict, a wrong cause for UTF-8
    text, while /predict_history said "recursion limit exceeded"."""
    body = '{"customer_ids": ' + "[" * 1100 + "]" * 1100 + "}"
    response = client.post(path, content=body, headers=APP)
    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed JSON body (recursion limit exceeded"), response.text


def test_unknown_routes_and_methods_answer_in_the_same_shape(client):
    assert "there is no /predictions" in client.get("/predictions").json()["error"]
    refused = client.post("/predict?customer_ids=1", json={"customer_ids": ["1"]}, headers=APP)
    assert refused.status_code == 400
    assert refused.json()["error"] == "POST /predict has no query parameter 'customer_ids'; it takes none"
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
    # Which buy-till-you-die models form the base (models.base_choice), as the run recorded.
    assert model["base_models"] in (["mbgnbd", "pareto"], ["mbgcnbd"])
    # What its cross-sell suggestions are (training.cross_sell), as the run chose and the card keeps.
    assert model["cross_sell_served"] in ("rules", "popularity")
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
    registry, models = tracking.client(settings.mlflow.tracking_uri), Registry(settings.mlflow)
    first = registry.get_model_version_by_alias(name, alias)
    # A second version of the same model stands in for a retrain (training takes longer than a test should).
    second = registry.create_model_version(name, first.source, run_id=first.run_id, model_id=first.model_id)
    models.promote(second.version)
    try:
        assert client.post("/admin/reload", headers=ADMIN).json()["model_version"] == str(second.version)
        assert client.get("/model", headers=APP).json()["model"]["version"] == str(second.version)
    finally:
        models.rollback()
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


@pytest.mark.parametrize(
    ("table", "sent"),
    [("events", {"customers": []}), ("customers", {"events": []}), ("events", {})],
)
def test_a_history_without_a_table_the_model_was_trained_with_is_refused_as_clv_score_does(
    client, state, table, sent
):
    response = client.post("/predict_history", json={"transactions": NEW_CUSTOMER, **sent}, headers=APP)
    assert response.status_code == 400
    message = response.json()["error"]
    assert f"was trained with the {table} table and none was given" in message
    assert f'send "{table}"' in message
    # The same words as `clv score` (training.score), which refuses the same input.
    with pytest.raises(ValueError) as caught:
        check_inputs(
            state.current.model,
            {"events": "events" in sent, "customers": "customers" in sent},
            "currency",
            {"transactions": [*NEW_CUSTOMER[0]]},
        )
    assert str(caught.value).split(" Fix:")[0] == message.split(" Fix:")[0]


@pytest.mark.parametrize(
    ("table", "dropped"),
    [
        ("transactions", ["category", "product_id"]),
        ("transactions", ["order_id"]),
        ("customers", ["country"]),
    ],
)
def test_a_history_without_a_column_the_model_was_trained_with_is_refused_as_clv_score_does(
    client, state, trained, table, dropped
):
    """The model was trained with the demo shop's optional columns; a history without one of them would be
    featurised otherwise (no categories, a customer-day as one order, no country) and scored wrong."""
    customers = pd.read_parquet(trained.shop / "customers.parquet").head(1)
    body = {
        "transactions": [{**NEW_CUSTOMER[0], "customer_id": customers["customer_id"].iloc[0]}],
        "events": [],
        "customers": _records(customers.drop(columns=["birth_date", "email"])),
    }
    assert client.post("/predict_history", json=body, headers=APP).status_code == 200
    body[table] = [{k: v for k, v in row.items() if k not in dropped} for row in body[table]]
    response = client.post("/predict_history", json=body, headers=APP)
    assert response.status_code == 400
    message = response.json()["error"]
    lacking = ", ".join(c for c in state.current.model.card.trained_columns[table] if c in dropped)
    assert f"was trained with the {table} column{'s' * (len(dropped) > 1)} {lacking}, which these" in message
    assert "Fix: give the" in message and "or score with a model trained on data like these" in message
    # The same words as `clv score` (training.score), which refuses the same input.
    columns = {name: [*rows[0]] for name, rows in body.items() if rows}
    with pytest.raises(ValueError) as caught:
        check_inputs(state.current.model, {"events": True, "customers": True}, "currency", columns)
    assert str(caught.value) == message


def test_a_history_without_amounts_is_refused_by_a_model_of_revenue(client):
    rows = [{k: v for k, v in row.items() if k != "amount"} for row in NEW_CUSTOMER]
    response = client.post(
        "/predict_history", json={"transactions": rows, "events": [], "customers": []}, headers=APP
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (
        "predicts values in currency" in error
        and "trained on transactions like these (without amounts)" in error
        and "Fix: give each transaction its amount" in error
    )


def test_empty_events_and_customers_mean_none(client):
    body = {"transactions": NEW_CUSTOMER, "events": [], "customers": []}
    assert client.post("/predict_history", json=body, headers=APP).status_code == 200
    request = HistoryRequest.model_validate(body)
    features = compute_features_for_request(
        pd.DataFrame(to_columns(request.transactions, TRANSACTIONS)),
        dt.date(2025, 12, 31),
        pd.DataFrame(to_columns(request.events, EVENTS)),
        pd.DataFrame(to_columns(request.customers, CUSTOMERS)),
    )
    row = features.iloc[0]
    assert bool(row["has_events"]) is True
    assert all(row[c] == 0 for c in BEHAVIOUR_COUNT_COLUMNS)


@pytest.mark.parametrize(
    "amount",
    ["1" + "0" * 500, "1e308", str(2**64), "true", "1e400", "NaN", "-Infinity"],
)
def test_absurd_amounts_get_a_400_and_the_endpoint_keeps_answering(client, amount):
    body = f'{{"transactions": [{{"customer_id": "a", "timestamp": "2025-01-01", "amount": {amount}}}]}}'
    response = client.post("/predict_history", content=body, headers=APP)
    assert response.status_code == 400
    assert "transactions.amount, row 1" in response.json()["error"]
    good = {"transactions": NEW_CUSTOMER, "events": [], "customers": []}
    assert client.post("/predict_history", json=good, headers=APP).status_code == 200


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ({"timestamp": "02/11/2025"}, "transactions.timestamp, row 1: cannot read '02/11/2025'"),
        ({"timestamp": 1735689600000}, "transactions.timestamp, row 1: an epoch number"),
        ({"timestamp": "0001-01-01"}, "before 1900"),
        ({"timestamp": "9999-01-01"}, "in the future"),
        ({"customer_id": {"a": 1}}, "transactions.customer_id, row 1: an object"),
        ({"customer_id": 1.5}, "transactions.customer_id, row 1: a number with a decimal point"),
    ],
)
def test_ambiguous_dates_and_odd_ids_are_400(client, row, says):
    body = {"transactions": [{**NEW_CUSTOMER[0], **row}], "events": [], "customers": []}
    response = client.post("/predict_history", json=body, headers=APP)
    assert response.status_code == 400 and says in response.json()["error"]


def test_an_unknown_event_type_is_400_with_the_known_ones(client):
    events = [{"customer_id": "new-1", "timestamp": "2025-12-01", "event_type": "wishlist_add"}]
    body = {"transactions": NEW_CUSTOMER, "events": events, "customers": []}
    response = client.post("/predict_history", json=body, headers=APP)
    assert response.status_code == 400
    assert (
        "events.event_type, row 1: unknown event type 'wishlist_add'; use one of session_start"
        in (response.json()["error"])
    )


def test_a_huge_top_is_400(client):
    response = client.post("/export", json={"top": "1" + "0" * 400}, headers=MARKETER)
    assert response.status_code == 400 and "top must be a whole number" in response.json()["error"]


def test_an_unexpected_error_is_a_json_500_that_the_client_survives(state, monkeypatch):
    # TestClient re-raises what reaches the server; answered in the app, nothing does.
    client = TestClient(create_app(state, Keyring(KEYS)))
    monkeypatch.setattr(type(state.current), "info", lambda self: 1 / 0)
    response = client.get("/model", headers=APP)
    assert response.status_code == 500
    assert response.json() == {"error": "internal error; the service log has the details"}


def test_a_champion_that_cannot_be_loaded_is_503_and_the_old_one_keeps_serving(client, trained, scores):
    settings = trained.settings
    name, alias = settings.mlflow.registered_model, settings.mlflow.champion_alias
    registry, models = tracking.client(settings.mlflow.tracking_uri), Registry(settings.mlflow)
    broken_dir = trained.root / "broken-model"
    broken_dir.mkdir(exist_ok=True)
    (broken_dir / "MLmodel").write_text("flavors: {python_function: {loader_module: no_such_module}}\n")
    first = registry.get_model_version_by_alias(name, alias)
    broken = registry.create_model_version(name, str(broken_dir), run_id=first.run_id)
    models.promote(broken.version)
    try:
        response = client.post("/admin/reload", headers=ADMIN)
        assert response.status_code == 503, response.text
        assert f"reload failed, still serving model v{first.version}" in response.json()["error"]
    finally:
        models.rollback()
    one = {"customer_ids": scores["customer_id"][:1].tolist()}
    assert client.post("/predict", json=one, headers=APP).json()["predictions"][0]["model_version"] == "1"
    assert client.get("/model", headers=APP).json()["model"]["version"] == str(first.version)


@pytest.mark.parametrize("saved_by", ["another model format", "older predictor code", "a pickle (format 3)"])
def test_a_model_saved_by_incompatible_code_is_refused_with_what_to_do(
    client, trained, scores, saved_by, monkeypatch, tmp_path
):
    """Issue 13: a champion registered by older code failed to load after the code changed, and a fresh
    start did not come up. Now: refused with the fix, a running service keeps what it has, and a fresh
    start answers 503 saying why."""
    settings = trained.settings
    name, alias = settings.mlflow.registered_model, settings.mlflow.champion_alias
    registry, models = tracking.client(settings.mlflow.tracking_uri), Registry(settings.mlflow)
    first = registry.get_model_version_by_alias(name, alias)
    old = models.load()  # a fresh copy, saved below as other code would have saved it
    monkeypatch.chdir(trained.root)
    with mlflow.start_run(experiment_id=registry.get_run(first.run_id).info.experiment_id):
        if saved_by == "another model format":
            card = replace(old.card, model_format=MODEL_FORMAT + 1)
            logged = tracking.log_model("model", old.predictor, card, sample_features())
        elif saved_by == "a pickle (format 3)":
            # How models were logged up to format 3: the pyfunc object itself, cloudpickled.
            logged = mlflow.pyfunc.log_model(
                name="model",
                python_model=CLVPyfunc(old.predictor),
                metadata={**old.card.to_dict(), "model_format": 3},
            )
        else:
            # State written by code that did not have an attribute this code reads.
            state = save_predictor(old.predictor, tmp_path / STATE_ARTIFACT)
            document = json.loads((state / STATE_FILE).read_text())
            del document["predictor"]["state"]["window_days_"]
            (state / STATE_FILE).write_text(json.dumps(document))
            logged = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(CODE),
                artifacts={STATE_ARTIFACT: str(state)},
                metadata=old.card.to_dict(),
            )
    version = registry.create_model_version(name, logged.model_uri, run_id=logged.run_id).version

    with pytest.raises(ModelNotFound) as refused:
        models.load_version(version)
    message = str(refused.value)
    assert "saved by code this version cannot run" in message
    assert "retrain with `clv train`" in message and "`clv rollback`" in message
    expected = {"another model format": "model format", "older predictor code": "window_days_"}
    assert expected.get(saved_by, "a pickled model from before model format 4") in message

    models.promote(version)
    try:
        # The next `clv train` replaces such a champion whatever its logged backtest says.
        decision = pipeline._gate(models, settings, models.champion(), [], "candidate", None, 0.0, None)[0]
        assert decision.promote and "cannot be run by this code, so it is replaced" in decision.reason
        reload = client.post("/admin/reload", headers=ADMIN)
        assert reload.status_code == 503
        assert f"still serving model v{first.version}" in reload.json()["error"]
        one = {"customer_ids": scores["customer_id"][:1].tolist()}
        assert client.post("/predict", json=one, headers=APP).status_code == 200

        fresh = ServingState(settings)
        assert fresh.check() is False and fresh.current is None
        answer = TestClient(create_app(fresh, Keyring(KEYS))).post("/predict", json=one, headers=APP)
        assert answer.status_code == 503
        assert "no model is loaded: model models:/clv/" in answer.json()["error"]
        assert "retrain with `clv train`" in answer.json()["error"]
    finally:
        models.rollback()


def test_answers_carry_security_headers(client):
    for response in (client.get("/ui"), client.get("/model", headers=APP), client.get("/nope")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "script-src 'self'" in response.headers["content-security-policy"]


def test_openapi_documents_the_real_status_codes_errors_and_security(client):
    schema = client.get("/openapi.json").json()
    operations = {(m.upper(), p): op for p, ops in schema["paths"].items() for m, op in ops.items()}
    assert set(operations[("POST", "/predict")]["responses"]) == {
        "200",
        "400",
        "401",
        "403",
        "404",
        "413",
        "503",
    }
    for (method, path), operation in operations.items():
        assert "422" not in operation["responses"], (method, path)
        for code, response in operation["responses"].items():
            if code.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorBody"
                }
    assert operations[("POST", "/export")]["responses"]["200"]["content"].keys() == {"text/csv"}
    assert operations[("POST", "/admin/reload")]["security"] == [{"bearer": []}, {"apiKey": []}]
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    row = schema["components"]["schemas"]["TransactionsRow"]
    assert row["required"] == list(TRANSACTIONS.required) and row["additionalProperties"] is False
    # /predict_history reads its body itself (serving.routes.read_body); it is documented all the same.
    history = operations[("POST", "/predict_history")]["requestBody"]
    assert history["required"] is True
    assert history["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/HistoryRequest"}
    request = schema["components"]["schemas"]["HistoryRequest"]
    assert request["required"] == ["transactions"]
    assert request["properties"]["transactions"]["items"] == {"$ref": "#/components/schemas/TransactionsRow"}


def test_exported_cells_that_a_spreadsheet_would_run_are_neutralised(client, state, trained, scores):
    changed = scores.copy()
    top = changed["predicted_clv"].idxmax()
    changed.loc[top, "customer_id"] = '=HYPERLINK("http://x.invalid","click")'
    changed.to_parquet(trained.settings.serve.scores, index=False)
    try:
        assert client.post("/admin/reload", headers=ADMIN).json()["reloaded"] is True
        text = client.post("/export", json={"top": "1"}, headers=MARKETER).text
    finally:
        scores.to_parquet(trained.settings.serve.scores, index=False)
        state.reload_if_changed()
    assert text.splitlines()[1].startswith("\"'=HYPERLINK(")


def test_a_tracking_server_that_is_down_is_the_503s_reason(tmp_path):
    """A service whose MLflow server does not answer says so on every request (a 503 naming the address), where
    the check logged an "unexpected" failure with a traceback after MLflow's minutes of retries."""
    import socket

    from config import load_settings

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{probe.getsockname()[1]}"
    state = ServingState(
        load_settings(mlflow={"tracking_uri": uri}, serve={"scores": str(tmp_path / "s.parquet")})
    )
    assert state.check() is False and state.current is None
    answer = TestClient(create_app(state, Keyring(KEYS))).post(
        "/predict", json={"customer_ids": ["A"]}, headers=APP
    )
    assert answer.status_code == 503
    assert f"the MLflow tracking server {uri} cannot be reached" in answer.json()["error"]
