"""Issue 12's "It must show", on the real server: every request listed under "What was seen" gets a
4xx JSON answer (or the documented 503), and a normal request right after it, on the same connection
and on every worker, still answers within a second."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pandas as pd
import psutil
import pytest

from serving.keepalive import REQUESTS_PER_CONNECTION
from training import tracking
from training.registry import Registry

from .conftest import KEYS, ORDER_COLUMNS, running_server

APP_KEY, MARKETER_KEY, ADMIN_KEY = KEYS
WORKERS = 2
# With the optional columns the model was trained with (the demo shop's), so each request is refused
# for what it was sent to test, not for a missing column.
ROW = {"customer_id": "a", "timestamp": "2025-01-01", **ORDER_COLUMNS, "amount": 10}


def history(row_change: dict | None = None, **tables) -> str:
    body = {"transactions": [{**ROW, **(row_change or {})}], "events": [], "customers": [], **tables}
    return json.dumps({k: v for k, v in body.items() if v is not None})


def with_amount(text: str) -> str:
    # Numbers JSON can carry but Python's json.dumps would not write as sent.
    return history().replace('"amount": 10', f'"amount": {text}')


# (what the issue saw, method, path, body, key, expected statuses); by item of "What was seen".
HOSTILE = [
    ("1: a 500-digit amount", "POST", "/predict_history", with_amount("1" + "0" * 500), APP_KEY, {400}),
    ("2: amount 1e308", "POST", "/predict_history", with_amount("1e308"), APP_KEY, {400}),
    ("2: top of 1 and 400 zeros", "POST", "/export", '{"top": "1' + "0" * 400 + '"}', MARKETER_KEY, {400}),
    (
        "3: transactions only",
        "POST",
        "/predict_history",
        history(events=None, customers=None),
        APP_KEY,
        {400},
    ),
    ("4: 02/11/2025", "POST", "/predict_history", history({"timestamp": "02/11/2025"}), APP_KEY, {400}),
    (
        "4: epoch milliseconds",
        "POST",
        "/predict_history",
        history({"timestamp": 1735689600000}),
        APP_KEY,
        {400},
    ),
    ("4: year 0001", "POST", "/predict_history", history({"timestamp": "0001-01-01"}), APP_KEY, {400}),
    ("4: year 2030", "POST", "/predict_history", history({"timestamp": "2030-01-01"}), APP_KEY, {400}),
    ("4: year 9999", "POST", "/predict_history", history({"timestamp": "9999-12-31"}), APP_KEY, {400}),
    ("4: amount true", "POST", "/predict_history", with_amount("true"), APP_KEY, {400}),
    ("4: an object as id", "POST", "/predict_history", history({"customer_id": {"a": 1}}), APP_KEY, {400}),
    ("4: amount 2**64", "POST", "/predict_history", with_amount(str(2**64)), APP_KEY, {400}),
    (
        "4: an unknown event type",
        "POST",
        "/predict_history",
        history(events=[{"customer_id": "a", "timestamp": "2025-01-01", "event_type": "wishlist_add"}]),
        APP_KEY,
        {400},
    ),
    ("5: /nope", "GET", "/nope", "", APP_KEY, {404}),
    ("5: /docs", "GET", "/docs", "", APP_KEY, {404}),
    ("5: /favicon.ico", "GET", "/favicon.ico", "", APP_KEY, {404}),
    ("5: a wrong method", "GET", "/predict", "", APP_KEY, {405}),
    ("5: malformed JSON", "POST", "/predict", "{oops", APP_KEY, {400}),
    ("5: no key", "POST", "/export", "{}", "no-such-key", {401}),
    ("5: the wrong role", "POST", "/export", "{}", APP_KEY, {403}),
]
# Item 2's last request: /admin/reload while the new champion cannot be loaded.
BROKEN_RELOAD = ("2: reload of a champion that cannot load", "POST", "/admin/reload", "", ADMIN_KEY, {503})


def raw_exchange(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one HTTP/1.1 request on an open connection and read its answer (status, headers, body)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def request_bytes(method: str, path: str, body: str = "", key: str = APP_KEY) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body.encode())}\r\n\r\n{body}"
    ).encode()


def serving_process(sock: socket.socket) -> int | None:
    """The pid of the server process holding the other end of `sock` (once it has accepted it)."""
    ours = sock.getsockname()
    for connection in psutil.net_connections("tcp"):
        if connection.raddr and tuple(connection.raddr) == ours and connection.pid != psutil.Process().pid:
            return connection.pid
    return None


@contextmanager
def one_connection_per_worker(
    port: int, good: bytes, workers: int, timeout: float = 60
) -> Iterator[dict[int, socket.socket]]:
    """An open connection to each of the server's `workers` worker processes, by pid.

    Which worker accepts a connection is the kernel's choice, and a worker still loading accepts none,
    so connections are opened until every worker has one, for up to `timeout` seconds. The server
    closes a connection idle for 5 s, so one kept meanwhile is sent a request now and then.
    """
    deadline = time.monotonic() + timeout
    with ExitStack() as stack:
        by_worker: dict[int, socket.socket] = {}
        last_used: dict[int, float] = {}
        while len(by_worker) < workers and time.monotonic() < deadline:
            for worker in [w for w, used in last_used.items() if time.monotonic() - used > 2]:
                assert raw_exchange(by_worker[worker], good)[0] == 200
                last_used[worker] = time.monotonic()
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            status, _, _ = raw_exchange(sock, good)  # answered, so accepted
            assert status == 200
            worker = serving_process(sock)
            if worker in by_worker or worker is None:
                sock.close()
            else:
                by_worker[worker] = stack.enter_context(sock)
                last_used[worker] = time.monotonic()
            time.sleep(0.05)
        assert len(by_worker) == workers, f"workers reached: {list(by_worker)}"
        yield by_worker


@contextmanager
def unloadable_champion(trained) -> Iterator[None]:
    """The registry's champion is a model that cannot be loaded; the old one is champion again on exit."""
    settings = trained.settings
    registry = tracking.client(settings.mlflow.tracking_uri)
    broken_dir = trained.root / "broken-model"
    broken_dir.mkdir(exist_ok=True)
    (broken_dir / "MLmodel").write_text("flavors: {python_function: {loader_module: no_such_module}}\n")
    first = registry.get_model_version_by_alias(
        settings.mlflow.registered_model, settings.mlflow.champion_alias
    )
    broken = registry.create_model_version(
        settings.mlflow.registered_model, str(broken_dir), run_id=first.run_id
    )
    models = Registry(settings.mlflow)
    models.promote(broken.version)
    try:
        yield
    finally:
        models.rollback()


@pytest.mark.slow
def test_every_request_the_issue_saw_is_a_json_4xx_and_every_worker_answers_right_after(trained):
    # Each connection carries two requests per hostile one, plus a few to keep it open while connecting:
    # fewer than the server answers on one connection before closing it (serving.keepalive).
    assert 2 * (len(HOSTILE) + 1) + 40 < REQUESTS_PER_CONNECTION
    customer = str(pd.read_parquet(trained.settings.serve.scores)["customer_id"].iloc[0])
    good = request_bytes("POST", "/predict", json.dumps({"customer_ids": [customer]}))
    # Periodic checks off: only the requests below make a worker load anything.
    env = {"CLV_SERVE__WORKERS": str(WORKERS), "CLV_SERVE__RELOAD_SECONDS": "0"}
    with running_server(trained, **env) as url:
        port = int(url.rsplit(":", 1)[1])
        # Every worker has loaded the good champion before it is replaced by one that cannot load.
        with one_connection_per_worker(port, good, WORKERS) as by_worker, unloadable_champion(trained):
            # Request by request, every worker in turn: no connection stays idle long enough to time out.
            for seen, method, path, body, key, expected in [*HOSTILE, BROKEN_RELOAD]:
                for worker, sock in by_worker.items():
                    where = f"worker {worker}, {seen}"
                    status, headers, content = raw_exchange(sock, request_bytes(method, path, body, key))
                    assert status in expected, (where, status, content[:300])
                    assert headers["content-type"] == "application/json", (where, headers)
                    assert json.loads(content)["error"], where
                    assert headers["x-content-type-options"] == "nosniff", where
                    started = time.monotonic()
                    status, _, content = raw_exchange(sock, good)
                    assert status == 200 and time.monotonic() - started < 1, (where, content[:300])
            # A history the issue saw refused ("events": [], "customers": []) is answered, on every worker.
            for worker, sock in by_worker.items():
                status, _, content = raw_exchange(sock, request_bytes("POST", "/predict_history", history()))
                assert status == 200, (worker, content[:300])
        page = httpx.get(f"{url}/ui")
        assert page.headers["x-frame-options"] == "DENY" and "content-security-policy" in page.headers
        assert "/predict_history" in httpx.get(f"{url}/openapi.json").json()["paths"]
