"""The whole path against MLflow on PostgreSQL, as teams run it (issue 13): Debian's PostgreSQL on
loopback, `mlflow server --backend-store-uri postgresql+psycopg://...`, then `clv train` (twice),
`clv promote`, `clv rollback`, `clv score` and the service, all through the tracking server.

PostgreSQL comes from Debian (`make test` installs it, see .ci/system-packages); each test run makes a
throwaway cluster in a temporary directory and removes it, with every process it started.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import psycopg
import pytest
from typer.testing import CliRunner

from clv.cli import app
from demo.shop import write_demo_shop
from serving.run import server_process

from .conftest import free_port, mlflow_server

pytestmark = pytest.mark.slow

KEY = "pg-app-key"


def _postgres_program(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail("PostgreSQL is not installed: `apt-get install postgresql` (`make test` does this)")
    return found[-1]


def _wait(ready, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not start within {timeout:.0f} s")
        time.sleep(0.3)


@pytest.fixture
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on loopback with an empty database `mlflow`; its SQLAlchemy URL."""
    root = Path(tempfile.mkdtemp(prefix="clv-pg-"))
    # PostgreSQL refuses to run as root: as root, the cluster belongs to Debian's `postgres` user.
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_owner:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    pg_ctl = _postgres_program("pg_ctl")
    subprocess.run(
        [*as_owner, _postgres_program("initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-h 127.0.0.1 -p {port} -k {root}"
    subprocess.run(
        [*as_owner, pg_ctl, "-D", data, "-l", root / "server.log", "-o", options, "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}"
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as con:
            con.execute("CREATE DATABASE mlflow")
        yield f"{url}/mlflow"
    finally:
        subprocess.run([*as_owner, pg_ctl, "-D", data, "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tracking_server(postgres, tmp_path) -> Iterator[str]:
    """`mlflow server` on the PostgreSQL store, artifacts in tmp_path; its URL. Stopped on exit."""
    with mlflow_server(postgres, tmp_path / "artifacts") as url:
        yield url


def test_train_promote_score_and_serve_with_mlflow_on_postgresql(
    postgres, tracking_server, tmp_path, monkeypatch
):
    shop = tmp_path / "shop"
    write_demo_shop(shop, n_customers=800, seed=5)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLV_MLFLOW__TRACKING_URI", tracking_server)
    cli = CliRunner()
    log = ["--transactions", str(shop / "transactions.parquet")]

    def run(*args: str):
        result = cli.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    first = run("train", *log, "--horizon-days", "90")
    assert "Registered clv v1: promoted to champion" in first
    assert f"Browse it with: open {tracking_server}" in first
    second = run("train", *log, "--horizon-days", "90")
    # Same data: the gate re-scores v1's backtest model on this window; equal skill, the newer serves.
    assert "Registered clv v2: promoted to champion" in second and "v1's backtest model" in second
    with psycopg.connect(postgres.replace("+psycopg", "")) as con:
        # The store really is PostgreSQL: both runs finished and both versions are registered there.
        statuses = [row[0] for row in con.execute("SELECT status FROM runs ORDER BY start_time")]
        versions = [row[0] for row in con.execute("SELECT version FROM model_versions ORDER BY version")]
    assert statuses == ["FINISHED", "FINISHED"] and versions == [1, 2]

    assert "clv@champion -> v1 (was v2)" in run("rollback")
    assert "clv@champion -> v2" in run("promote", "2")
    assert "clv@champion -> v1 (was v2)" in run("rollback")

    out = tmp_path / "scores.parquet"
    run("score", *log, "--out", str(out))
    scores = pd.read_parquet(out)
    assert len(scores) > 0 and set(scores["model_version"].astype(str)) == {"1"}

    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_server,
        "CLV_SERVE__SCORES": str(out),
        "CLV_API_KEYS": f"{KEY}:app",
        "BENTOML_DO_NOT_TRACK": "true",
        "CLV_SERVE__WORKERS": "1",
    }
    with server_process(port, "127.0.0.1", env, cwd=tmp_path, stdout=subprocess.DEVNULL) as process:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert process.poll() is None, "the service exited"
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
            return False

        _wait(ready, "the service", timeout=120)
        customer = str(scores["customer_id"].iloc[0])
        answer = httpx.post(
            f"{url}/predict", json={"customer_ids": [customer]}, headers={"Authorization": f"Bearer {KEY}"}
        )
        assert answer.status_code == 200
        assert answer.json()["predictions"][0]["model_version"] == "1"
        model = httpx.get(f"{url}/model", headers={"Authorization": f"Bearer {KEY}"}).json()
        assert model["model"]["version"] == "1"
