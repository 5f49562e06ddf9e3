"""The real BentoML server on loopback, and the `clv serve` / `clv export` commands around it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pandas as pd
import psutil
import pytest
from typer.testing import CliRunner

from clv.cli import app
from serving.export import ExportFilter, apply_filter
from training import tracking
from training.registry import Registry

from .conftest import ADMIN, APP, MARKETER, free_port, running_server, wait_until_answering

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
        assert 'bentoml_service_request_duration_seconds_count{endpoint="/predict"' in metrics
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
        error = response.json()["error"]
        # The answer says why and what to do, not only the log.
        assert response.status_code == 503 and "no model is loaded: cannot find clv@champion" in error
        assert "make train" in error
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
    assert result.exit_code == 2 and "unknown segment 'gold'" in result.output  # a bad option: a usage error
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


def test_clv_export_with_an_absurd_top_prints_one_line_and_exits_2(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_SERVE__SCORES", str(trained.settings.serve.scores))
    result = runner.invoke(app, ["export", "--top", "1" + "0" * 400, "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2
    assert (
        "Traceback" not in result.output
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    )
    assert result.output.strip().startswith("error: --top: top must be a whole number of customers")
    assert not (tmp_path / "x.csv").exists()


def test_clv_export_neutralises_formula_cells(trained, tmp_path, monkeypatch):
    scores = pd.read_parquet(trained.settings.serve.scores)
    scores.loc[scores["predicted_clv"].idxmax(), "customer_id"] = "=cmd|' /C calc'!A0"
    table = tmp_path / "scores.parquet"
    scores.to_parquet(table, index=False)
    out = tmp_path / "top.csv"
    result = runner.invoke(app, ["export", "--scores", str(table), "--top", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines()[1].startswith("'=cmd|")


@pytest.mark.slow
def test_reload_reaches_every_worker_and_metrics_are_private_to_a_server(trained, tmp_path):
    settings = trained.settings
    name, alias = settings.mlflow.registered_model, settings.mlflow.champion_alias
    tracking.configure(settings.mlflow.tracking_uri, settings.mlflow.experiment)
    registry, models = tracking.client(settings.mlflow.tracking_uri), Registry(settings.mlflow)
    customer = str(pd.read_parquet(settings.serve.scores)["customer_id"].iloc[0])
    # Periodic checks off: only the reload signal can make the second worker change model.
    env = {"CLV_SERVE__WORKERS": "2", "CLV_SERVE__RELOAD_SECONDS": "0"}
    with running_server(trained, log=tmp_path / "a.log", **env) as url:
        assert httpx.post(f"{url}/predict", json={"customer_ids": [customer]}, headers=APP).status_code == 200
        first = registry.get_model_version_by_alias(name, alias)
        second = registry.create_model_version(
            name, first.source, run_id=first.run_id, model_id=first.model_id
        )
        models.promote(second.version)
        try:
            assert httpx.post(f"{url}/admin/reload", headers=ADMIN).json()["model_version"] == str(
                second.version
            )
            time.sleep(3)

            async def versions():
                async with httpx.AsyncClient() as client:
                    # New connections, many at once, so both workers answer some.
                    answers = await asyncio.gather(
                        *(
                            client.get(f"{url}/model", headers={**APP, "Connection": "close"})
                            for _ in range(40)
                        )
                    )
                return {a.json()["model"]["version"] for a in answers}

            assert asyncio.run(versions()) == {str(second.version)}
        finally:
            models.rollback()
        # Another server of the same user starting does not empty this one's /metrics.
        with running_server(trained, log=tmp_path / "b.log", **env):
            metrics = httpx.get(f"{url}/metrics").text
        assert 'clv_predictions_total{endpoint="predict"}' in metrics


def descendants_of(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_clv_serve_listens_on_loopback_and_a_signal_stops_every_process(trained, tmp_path, stop_signal):
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "clv.cli", "serve", "--port", str(port)],
            cwd=trained.root,
            env=trained.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    started: list[psutil.Process] = []
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/readyz", serve, log)
        assert f"Serving on http://127.0.0.1:{port} (API)" in log.read_text()
        started = descendants_of(serve.pid)
        listening = {
            c.laddr.ip
            for p in started
            for c in p.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        assert listening == {"127.0.0.1"}
        serve.send_signal(stop_signal)
        serve.wait(timeout=60)
        _, alive = psutil.wait_procs(started, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        # Whatever failed above, leave nothing running.
        if serve.poll() is None:
            serve.terminate()
            serve.wait(timeout=60)
        for process in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
