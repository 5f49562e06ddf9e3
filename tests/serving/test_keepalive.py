"""A keep-alive connection is closed after REQUESTS_PER_CONNECTION answers, and sooner while its worker holds
more than its share of the server's connections, so clients spread over the workers."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter

import pandas as pd
import pytest

from serving import keepalive
from serving.keepalive import (
    REBALANCE_SECONDS,
    REQUESTS_PER_CONNECTION,
    STALE_SECONDS,
    ConnectionShare,
    KeepAliveLimit,
)

from .conftest import APP, running_server
from .test_hostile_requests import raw_exchange, request_bytes, serving_process


def test_every_hundredth_answer_on_a_connection_tells_the_client_to_reconnect(client, trained):
    customer = str(pd.read_parquet(trained.settings.serve.scores)["customer_id"].iloc[0])
    # The test client is one connection: every request comes from the same address and port.
    answers = [
        client.post("/predict", json={"customer_ids": [customer]}, headers=APP)
        for _ in range(2 * REQUESTS_PER_CONNECTION)
    ]
    assert all(a.status_code == 200 for a in answers)
    closing = [i + 1 for i, a in enumerate(answers) if a.headers.get("connection") == "close"]
    assert closing == [REQUESTS_PER_CONNECTION, 2 * REQUESTS_PER_CONNECTION]


async def _ok(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _closing(limit: KeepAliveLimit, ports: list[int]) -> list[bool]:
    """Whether each answer, one per request from the client port of each of `ports`, says close."""

    async def closes(port: int) -> bool:
        sent = []

        async def send(message):
            sent.append(message)

        await limit({"type": "http", "client": ("127.0.0.1", port)}, None, send)
        return (b"connection", b"close") in sent[0]["headers"]

    async def answers():
        return [await closes(port) for port in ports]

    return asyncio.run(answers())


def test_connections_are_counted_apart():
    limit = KeepAliveLimit(_ok, requests_per_connection=3)
    # The third answer on each connection says close; a connection that comes back counts anew.
    assert _closing(limit, [1, 1, 2, 2, 1, 2, 1]) == [False, False, False, False, True, True, False]


def test_a_worker_above_an_even_split_of_the_servers_connections_is_told_its_surplus(tmp_path):
    first, second = (ConnectionShare(tmp_path / "share", worker, workers=2) for worker in (1, 2))
    # All 32 clients landed on the first worker: it closes 15 (one above an even split may stay).
    assert second.surplus(0) == 0
    assert first.surplus(32) == 15
    # Spread 17/15: nothing to do on either side.
    assert second.surplus(15) == 0
    assert first.surplus(17) == 0
    assert second.surplus(15) == 0


def test_a_stopped_workers_old_count_is_not_counted(tmp_path, monkeypatch):
    first, second = (ConnectionShare(tmp_path / "share", worker, workers=2) for worker in (1, 2))
    second.surplus(30)
    later = time.time() + STALE_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    # The second worker's 30 are gone with it: the first worker's 20 are over an even split of 20.
    assert first.surplus(20) == 20 - 10 - 1


class _Share:
    def __init__(self, surplus: int):
        self.surplus_of, self.seen = surplus, []

    def surplus(self, connections: int) -> int:
        self.seen.append(connections)
        surplus, self.surplus_of = self.surplus_of, 0
        return surplus


def test_a_worker_over_its_share_closes_that_many_busy_connections_then_keeps_the_rest(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(keepalive.time, "monotonic", lambda: clock[0])
    share = _Share(surplus=2)
    limit = KeepAliveLimit(_ok, share=share)
    # The first answer publishes the count and learns the surplus: it and the next close.
    assert _closing(limit, [1, 2, 3, 4, 5, 3, 4, 5]) == [True, True, False, False, False, False, False, False]
    assert share.seen == [0]  # nobody had sent two requests yet
    # At the next balance, the connections that carried two requests or more count.
    clock[0] += REBALANCE_SECONDS
    assert _closing(limit, [3]) == [False]
    assert share.seen == [0, 3]


@pytest.mark.slow
def test_clients_that_connect_at_once_end_up_spread_over_the_workers(trained):
    """32 keep-alive clients connect together to a two-worker server (the first worker to wake may
    accept them all); within seconds of traffic each worker holds at least a third of them."""
    customer = str(pd.read_parquet(trained.settings.serve.scores)["customer_id"].iloc[0])
    good = request_bytes("POST", "/predict", json.dumps({"customer_ids": [customer]}))
    env = {"CLV_SERVE__WORKERS": "2", "CLV_SERVE__RELOAD_SECONDS": "0"}
    with running_server(trained, **env) as url:
        port = int(url.rsplit(":", 1)[1])
        socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(32)]
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                for i, sock in enumerate(socks):
                    status, headers, _ = raw_exchange(sock, good)
                    assert status == 200
                    if headers.get("connection") == "close":
                        sock.close()
                        socks[i] = socket.create_connection(("127.0.0.1", port), timeout=30)
                workers = Counter(serving_process(sock) for sock in socks)
                if len(workers) == 2 and min(workers.values()) >= 11:
                    break
            assert len(workers) == 2 and min(workers.values()) >= 11, workers
        finally:
            for sock in socks:
                sock.close()
