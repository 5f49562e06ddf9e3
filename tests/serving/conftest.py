"""A trained model and score table for the service tests (one small demo shop, trained once)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from config import Settings, load_settings
from demo.shop import write_demo_shop
from features.contract import load_shop
from serving.api import create_app
from serving.auth import Keyring
from serving.run import server_process
from serving.state import ServingState
from training.pipeline import train
from training.score import score

KEYS = {"app-key-123": "app", "marketer-key-456": "marketer", "admin-key-789": "admin"}
APP, MARKETER, ADMIN = ({"Authorization": f"Bearer {k}"} for k in KEYS)
# The model is trained on the demo shop, whose transactions have these optional columns, so a history the
# tests send has them too (training.loading.check_inputs refuses one without them).
ORDER_COLUMNS = {"order_id": "o-1", "quantity": 1, "product_id": "P001", "category": "shoes"}


@dataclass
class Trained:
    root: Path
    shop: Path
    settings: Settings

    def env(self) -> dict[str, str]:
        """Environment for a server process that serves this model."""
        return {
            **os.environ,
            "MLFLOW_TRACKING_URI": self.settings.mlflow.tracking_uri,
            "CLV_SERVE__SCORES": str(self.settings.serve.scores),
            "CLV_API_KEYS": ",".join(f"{k}:{r}" for k, r in KEYS.items()),
            "BENTOML_DO_NOT_TRACK": "true",
        }


def load(shop_dir: Path):
    return load_shop(
        shop_dir / "transactions.parquet", shop_dir / "events.parquet", shop_dir / "customers.parquet"
    )


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    root = tmp_path_factory.mktemp("served")
    shop = root / "shop"
    write_demo_shop(shop, n_customers=1500, seed=11)
    settings = load_settings(
        mlflow={"tracking_uri": f"sqlite:///{root / 'mlflow.db'}"},
        train={"n_snapshots": 2, "horizon_days": 180},
        serve={
            "scores": root / "scores.parquet",
            "api_keys": KEYS,
            "max_batch": 50,
            "max_history_rows": 2000,
        },
    )
    cwd = os.getcwd()
    os.chdir(root)  # MLflow puts artifacts next to the working directory's mlruns
    try:
        train(load(shop), settings)
        score(load(shop), settings, settings.serve.scores)
    finally:
        os.chdir(cwd)
    return Trained(root, shop, settings)


@pytest.fixture
def state(trained) -> ServingState:
    state = ServingState(trained.settings)
    state.load()
    return state


@pytest.fixture
def client(state) -> TestClient:
    return TestClient(create_app(state, Keyring(KEYS)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(trained, timeout: float = 90, wait_for: str = "/readyz", log: Path | None = None, **env):
    """A real server on loopback, stopped (every process of it) on exit; its output goes to `log`."""
    port = free_port()
    log = log or trained.root / f"server-{port}.log"
    with (
        log.open("w") as out,
        server_process(
            port,
            "127.0.0.1",
            {**trained.env(), **env},
            cwd=trained.root,
            stdout=out,
            stderr=subprocess.STDOUT,
        ) as process,
    ):
        url = f"http://127.0.0.1:{port}"
        wait_until_answering(f"{url}{wait_for}", process, log, timeout)
        yield url


def wait_until_answering(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"server did not answer {url}: {log.read_text()[-3000:]}")
