"""How long a keep-alive connection lasts: `KeepAliveLimit` closes it after REQUESTS_PER_CONNECTION answers.

Why: BentoML's workers share one listening socket, and the worker that wakes first accepts every
connection waiting (bentoml/BentoML#5426), so 32 clients that connect at once often all land on one
worker and stay there while the other idles. Closing a connection now and then (nginx did the same
after 100 requests by default until 1.19.10) makes its client reconnect, and the new connection goes
to the worker that is free to accept it: within seconds the clients are spread over the workers. A
client sees `Connection: close` on the last answer, which HTTP/1.1 clients follow by reconnecting;
the cost is one TCP handshake per REQUESTS_PER_CONNECTION requests.
"""

from __future__ import annotations

REQUESTS_PER_CONNECTION = 100
# Connections closed by their client before the limit are never seen again; forgetting every count
# now and then bounds the memory (a forgotten connection only lasts longer).
TRACKED_CONNECTIONS = 4096


class KeepAliveLimit:
    """ASGI middleware: `Connection: close` on a connection's REQUESTS_PER_CONNECTION-th answer."""

    def __init__(self, app, requests_per_connection: int = REQUESTS_PER_CONNECTION):
        self.app = app
        self.limit = requests_per_connection
        self._answered: dict[tuple, int] = {}

    async def __call__(self, scope, receive, send):
        # A connection is its client's address and port, unique among this worker's open connections.
        client = scope.get("client") if scope["type"] == "http" else None
        if client is None:
            await self.app(scope, receive, send)
            return
        key = tuple(client)
        count = self._answered.get(key, 0) + 1
        if count < self.limit:
            if len(self._answered) >= TRACKED_CONNECTIONS:
                self._answered.clear()
            self._answered[key] = count
            await self.app(scope, receive, send)
            return
        self._answered.pop(key, None)

        async def send_closing(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)
