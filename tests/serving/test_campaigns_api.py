"""POST /campaigns for marketers (a download equals `clv campaigns`' file), and /predict rows with next order
dates and cross-sell suggestions."""

from __future__ import annotations

import pandas as pd
from fastapi.testclient import TestClient

from config import DataSettings
from serving.api import create_app
from serving.auth import Keyring
from serving.campaigns import campaign_lists, write_campaigns
from serving.state import ServingState

from .conftest import APP, KEYS, MARKETER, load


def with_data(trained, **economics) -> TestClient:
    shop = trained.shop
    data = DataSettings(
        transactions=str(shop / "transactions.parquet"),
        events=str(shop / "events.parquet"),
        customers=str(shop / "customers.parquet"),
    )
    settings = trained.settings.model_copy(
        update={"data": data, "economics": trained.settings.economics.model_copy(update=economics)}
    )
    state = ServingState(settings)
    state.load()
    return TestClient(create_app(state, Keyring(KEYS)))


def test_campaigns_are_for_marketers_and_say_what_is_left_out(client):
    assert client.post("/campaigns", json={}, headers=APP).status_code == 403
    response = client.post("/campaigns", json={}, headers=MARKETER)
    assert response.status_code == 200, response.text
    body = response.json()
    # The test service has no [data]: only the lists the score table alone can make.
    assert set(body["campaigns"]) == {"win_back", "upsell", "cross_sell", "promo"}
    assert all(v["rows"] > 0 for v in body["campaigns"].values())
    assert any("birthday" in n for n in body["notes"])
    missing = client.post("/campaigns", json={"campaign": "birthday"}, headers=MARKETER)
    assert missing.status_code == 404 and "no birthday list" in missing.json()["error"]
    unknown = client.post("/campaigns", json={"campaign": "=cmd"}, headers=MARKETER)
    assert unknown.status_code == 400 and "welcome" in unknown.json()["error"]


def test_a_downloaded_list_equals_the_file_clv_campaigns_writes(trained, tmp_path):
    client = with_data(trained)
    summary = client.post("/campaigns", json={}, headers=MARKETER).json()
    assert summary["campaigns"]["welcome"]["rows"] > 0 and summary["campaigns"]["birthday"]["rows"] > 0
    response = client.post("/campaigns", json={"campaign": "abandoned_cart"}, headers=MARKETER)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    state = ServingState(trained.settings)
    state.load()
    written, _ = write_campaigns(
        campaign_lists(state.current.scores.frame, load(trained.shop), trained.settings), tmp_path
    )
    assert response.text == written["abandoned_cart"].read_text()
    assert response.headers["x-rows"] == str(summary["campaigns"]["abandoned_cart"]["rows"])


def test_predict_rows_carry_next_order_dates_and_suggestions(client, state):
    ids = state.current.scores.frame["customer_id"].head(20).tolist()
    rows = client.post("/predict", json={"customer_ids": ids}, headers=APP).json()["predictions"]
    for row in rows:
        assert {"next_order_date", "avg_days_between_orders", "next_order_reason", "cross_sell"} <= set(row)
        assert row["cross_sell_reason"]
        if row["next_order_date"] is not None:
            assert row["next_order_date"] > row["as_of"] and len(row["next_order_date"]) == 10
        else:
            assert row["next_order_reason"].startswith("left empty")


def test_economics_for_marketers_per_channel_once_a_spend_file_is_configured(client, trained, tmp_path):
    assert client.get("/economics", headers=APP).status_code == 403
    unset = client.get("/economics", headers=MARKETER)
    assert unset.status_code == 404 and "[economics] spend" in unset.json()["error"]
    spend = tmp_path / "spend.csv"
    months = [f"{y}-{m:02d}" for y in (2023, 2024, 2025) for m in range(1, 13)]
    channels = ["organic", "paid_search", "paid_social", "email", "affiliate", "referral"]
    # A month after the scores' as_of: its spend counts for no cohort (the same rule as `clv economics`).
    later = [*months, "2031-01"]
    spend.write_text("channel,month,spend\n" + "".join(f"{c},{m},500\n" for c in channels for m in later))
    shop = trained.shop
    settings = trained.settings.model_copy(
        update={
            "data": DataSettings(
                transactions=str(shop / "transactions.parquet"), customers=str(shop / "customers.parquet")
            ),
            "economics": trained.settings.economics.model_copy(update={"spend": str(spend)}),
        }
    )
    state = ServingState(settings)
    state.load()
    body = TestClient(create_app(state, Keyring(KEYS))).get("/economics", headers=MARKETER).json()
    by_channel = {row["acquisition_channel"]: row for row in body["by_channel"]}
    assert set(by_channel) == set(channels)
    for row in by_channel.values():
        assert row["customers"] > 0 and row["spend"] == 500 * len(months)
        assert abs(row["clv_to_cac"] - row["clv"] / row["cac"]) < 1e-9  # no margin: a revenue ratio
    assert {row["cohort"] for row in body["by_cohort"]} >= {"2024-01", "2025-12"}
    assert "2031-01" not in {row["cohort"] for row in body["by_cohort"]}
    assert any("6 spend rows after the scores' as_of" in note for note in body["notes"]), body["notes"]
    assert body["warnings"] == []


def test_the_demo_shops_economics_with_its_spend_file_and_the_retention_what_if(trained):
    client = with_data(trained, spend=str(trained.shop / "spend.csv"), retention_cost=1.0)
    plain = client.get("/economics", headers=MARKETER).json()
    assert "retention_what_if" not in plain  # only when asked for
    by_channel = {row["acquisition_channel"]: row for row in plain["by_channel"]}
    for paid in ("paid_search", "paid_social", "affiliate"):
        assert by_channel[paid]["clv_to_cac"] > 0 and by_channel[paid]["cac"] > by_channel["organic"]["cac"]
    first_month = {
        r["acquisition_channel"]: r["customers"] for r in plain["curves"] if r["month_offset"] == 0
    }
    assert first_month == {channel: row["customers"] for channel, row in by_channel.items()}

    lifted = client.get("/economics?retention_lift=5", headers=MARKETER).json()["retention_what_if"]
    assert lifted["lift_points"] == 5 and lifted["value_after"] > lifted["value_before"] > 0
    assert lifted["retention_spend"] == lifted["contacted"] * 1.0 > 0
    same = client.get("/economics", params={"retention_lift": "0"}, headers=MARKETER).json()[
        "retention_what_if"
    ]
    assert same["value_after"] == same["value_before"] and same["profit_change"] == 0
    for bad in ("abc", "150", "nan", "-inf"):
        response = client.get("/economics", params={"retention_lift": bad}, headers=MARKETER)
        assert response.status_code == 400, (bad, response.text)
        assert "retention_lift" in response.json()["error"] and "from -100 to 100" in response.json()["error"]
    # A typo or a repeat was ignored, and the answer left out the what-if that was asked for, or used the last.
    typo = client.get("/economics?retention_lif=5", headers=MARKETER)
    assert typo.status_code == 400
    assert (
        typo.json()["error"]
        == "GET /economics has no query parameter 'retention_lif'; it takes retention_lift"
    )
    twice = client.get("/economics?retention_lift=5&retention_lift=6", headers=MARKETER)
    assert twice.status_code == 400
    assert twice.json()["error"] == "GET /economics: retention_lift is given 2 times; give it once"


def test_economics_of_a_log_without_amounts_is_refused_as_clv_economics_refuses(trained, tmp_path):
    """A log in orders (no amount column): GET /economics answered CLV:CAC from orders divided by money.
    Now the same refusal as `clv economics`, as a missing input (404), with the cause and the fix."""
    shop = trained.shop
    orders = pd.read_parquet(shop / "transactions.parquet").drop(columns="amount")
    orders.to_parquet(tmp_path / "orders.parquet")
    scores = pd.read_parquet(trained.settings.serve.scores).assign(value_unit="orders")
    scores.to_parquet(tmp_path / "scores.parquet")
    settings = trained.settings.model_copy(
        update={
            "data": DataSettings(
                transactions=str(tmp_path / "orders.parquet"), customers=str(shop / "customers.parquet")
            ),
            "economics": trained.settings.economics.model_copy(update={"spend": str(shop / "spend.csv")}),
            "serve": trained.settings.serve.model_copy(update={"scores": tmp_path / "scores.parquet"}),
        }
    )
    state = ServingState(settings)
    state.load()
    client = TestClient(create_app(state, Keyring(KEYS)))
    for query in ("", "?retention_lift=5"):
        response = client.get(f"/economics{query}", headers=MARKETER)
        assert response.status_code == 404, response.text
        error = response.json()["error"]
        assert error.startswith("no acquisition economics for this log: it has no amount column"), error
        from serving.messages import ECONOMICS_NEEDS_AMOUNTS  # the message `clv economics` prints

        assert error == ECONOMICS_NEEDS_AMOUNTS
