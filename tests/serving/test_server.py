"""The real BentoML server on loopback, and the `clv serve` / `clv export` commands around it."""

from __future__ import annotations

import shutil
import time

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from clv.cli import app
from serving.export import ExportFilter, apply_filter

from .conftest import APP, MARKETER, running_server

runner = CliRunner()


@pytest.mark.slow
def test_real_server_answers_predict_export_and_metrics(trained):
    scores = pd.read_parquet(trained.settings.serve.scores)
    customer = str(scores["customer_id"].iloc[0])
    with running_server(trained) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
        # The README's curl: no Content-Type header, key as a bearer token.
        response = httpx.post(f"{url}/predict", content=f'{{"customer_ids": ["{customer}"]}}', headers=APP)
        assert response.status_code == 200, response.text
        assert response.json()["predictions"][0]["customer_id"] == customer
        assert httpx.post(f"{url}/predict", content="{oops", headers=APP).status_code == 400
        assert httpx.post(f"{url}/export", json={}).status_code == 401
        assert httpx.post(f"{url}/export", json={}, headers=APP).status_code == 403
        export = httpx.post(f"{url}/export", json={"top": "25"}, headers=MARKETER)
        assert export.status_code == 200 and len(export.text.strip().splitlines()) == 26
        metrics = httpx.get(f"{url}/metrics").text
        assert 'clv_predictions_total{endpoint="predict"}' in metrics
        assert "clv_request_latency_seconds" in metrics
        page = httpx.get(f"{url}/ui")
        assert page.status_code == 200 and "/ui/static/app.js" in page.text
        assert httpx.get(f"{url}/model", headers=APP).json()["model"]["version"] == "1"
        assert httpx.post(f"{url}/admin/reload", headers=MARKETER).status_code == 403


@pytest.mark.slow
def test_a_server_without_a_champion_waits_for_one(trained, tmp_path):
    store = tmp_path / "mlflow.db"
    log = tmp_path / "server.log"
    # One worker: with several, each finds the champion on its own next retry.
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{store}", "CLV_SERVE__WORKERS": "1"}
    with running_server(trained, wait_for="/healthz", log=log, **env) as url:
        assert httpx.get(f"{url}/readyz").status_code == 503
        response = httpx.post(f"{url}/predict", json={"customer_ids": ["c1"]}, headers=APP)
        assert response.status_code == 503 and "no model is loaded yet" in response.json()["error"]
        assert "make train" in log.read_text()
        # The store gains a champion (its artifacts are where the trained store says they are).
        shutil.copy(trained.settings.mlflow.tracking_uri.removeprefix("sqlite:///"), store)
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        assert httpx.post(f"{url}/predict", json={"customer_ids": ["c1"]}, headers=APP).status_code in (
            200,
            404,
        )


def test_clv_export_writes_the_same_list_as_the_api(trained, client, tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_SERVE__SCORES", str(trained.settings.serve.scores))
    out = tmp_path / "vip.csv"
    args = ["--segment", "vip", "--segment", "high_value_at_risk", "--top", "20%", "--churn-max", "0.9"]
    result = runner.invoke(app, ["export", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Wrote" in result.output
    spec = {"segment": ["vip", "high_value_at_risk"], "top": "20%", "churn_max": 0.9}
    api = client.post("/export", json=spec, headers=MARKETER)
    assert api.status_code == 200 and int(api.headers["X-Rows"]) > 0
    assert out.read_text() == api.text


def test_clv_export_writes_parquet_by_suffix(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_SERVE__SCORES", str(trained.settings.serve.scores))
    out = tmp_path / "top.parquet"
    result = runner.invoke(app, ["export", "--top", "10", "--min-clv", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    scores = pd.read_parquet(trained.settings.serve.scores)
    scores["customer_id"] = scores["customer_id"].astype(str)
    expected = apply_filter(scores, ExportFilter(top="10", min_clv=1))
    assert pd.read_parquet(out)["customer_id"].tolist() == expected["customer_id"].tolist()


def test_clv_export_rejects_unknown_segments_and_missing_scores(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_SERVE__SCORES", str(trained.settings.serve.scores))
    result = runner.invoke(app, ["export", "--segment", "gold", "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 1 and "unknown segment 'gold'" in result.output
    assert not (tmp_path / "x.csv").exists()
    result = runner.invoke(
        app, ["export", "--scores", str(tmp_path / "none.parquet"), "--out", str(tmp_path / "y.csv")]
    )
    assert result.exit_code == 1 and "make train" in result.output


def test_clv_serve_explains_what_is_missing(trained, tmp_path, monkeypatch):
    monkeypatch.delenv("CLV_API_KEYS", raising=False)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["serve", "--port", "3999"])
    assert result.exit_code == 1 and "CLV_API_KEYS" in result.output
    monkeypatch.setenv("CLV_API_KEYS", "k:app")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(app, ["serve", "--port", "3999"])
    assert result.exit_code == 1 and "make train" in result.output
