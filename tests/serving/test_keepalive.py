"""A keep-alive connection is closed after REQUESTS_PER_CONNECTION answers, so clients spread over the workers."""

from __future__ import annotations

import asyncio

import pandas as pd

from serving.keepalive import REQUESTS_PER_CONNECTION, KeepAliveLimit

from .conftest import APP


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


def test_connections_are_counted_apart():
    async def ok(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limit = KeepAliveLimit(ok, requests_per_connection=3)

    async def closes(port: int) -> bool:
        sent = []

        async def send(message):
            sent.append(message)

        await limit({"type": "http", "client": ("127.0.0.1", port)}, None, send)
        return (b"connection", b"close") in sent[0]["headers"]

    async def answers(ports):
        return [await closes(port) for port in ports]

    # The third answer on each connection says close; a connection that comes back counts anew.
    assert asyncio.run(answers([1, 1, 2, 2, 1, 2, 1])) == [False, False, False, False, True, True, False]
