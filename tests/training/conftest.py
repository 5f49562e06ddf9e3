"""A real `mlflow server` on loopback for the training tests (SQLite or PostgreSQL behind it)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@contextlib.contextmanager
def mlflow_server(backend_store_uri: str, artifacts: Path, timeout: float = 90) -> Iterator[str]:
    """`mlflow server` on `backend_store_uri` with artifacts in `artifacts`; its URL. Stopped on exit,
    with every process it started."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            backend_store_uri,
            "--artifacts-destination",
            str(artifacts),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Without MLflow's background job runner (GenAI scoring jobs): seven huey processes of about
        # 290 MB each that no test uses, as `make mlflow-ui` runs it.
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not answers(port):
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("mlflow server did not start")
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
