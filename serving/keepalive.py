"""How long a keep-alive connection lasts: `KeepAliveLimit` closes it after REQUESTS_PER_CONNECTION answers,
and sooner while its worker holds more than its share of the server's connections (`ConnectionShare`).

Why: BentoML's workers share one listening socket, and the worker that wakes first accepts every
connection waiting (bentoml/BentoML#5426), so 32 clients that connect at once often all land on one
worker and stay there while the other idles. Closing a connection makes its client reconnect, and the
new connection goes to whichever worker accepts it first. Closing every connection now and then
(nginx did the same after 100 requests by default until 1.19.10) is not enough on its own: the worker
that already holds the clients wins that race as often as the idle one, because the work of
`/predict_history` runs outside its event loop (seen: all 32 clients on one worker half-way through a
20-second run, p99 172 ms against 104 ms with the clients spread). So each worker also publishes how
many connections it serves, and one holding more than one above an even split closes the surplus on
their next answers, every REBALANCE_SECONDS, until the split is even. A client sees `Connection: close`
on the last answer, which HTTP/1.1 clients follow by reconnecting; the cost is one TCP handshake.
"""

from __future__ import annotations

import math
import os
import struct
import time
from pathlib import Path

REQUESTS_PER_CONNECTION = 100
# Connections closed by their client before the limit are never seen again; forgetting every count
# now and then bounds the memory (a forgotten connection only lasts longer).
TRACKED_CONNECTIONS = 4096
REBALANCE_SECONDS = 0.5
# A worker's count older than this is from a worker that stopped: it holds no connections.
STALE_SECONDS = 3.0
_SLOT = struct.Struct("<dq")  # time.time() of the count, the count


class ConnectionShare:
    """Every worker's number of busy connections, one slot per worker in a file all of them read.

    `path`: a file private to the server (serving.run gives each server its own BentoML home);
    `worker`: this worker's index, 1 to `workers` (BentoML's worker id).
    """

    def __init__(self, path: Path, worker: int, workers: int):
        self.worker, self.workers = worker, workers
        # Open for the worker's life: it publishes every REBALANCE_SECONDS.
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @classmethod
    def of_this_worker(cls, workers: int) -> ConnectionShare | None:
        """The share of the BentoML worker this runs in; None outside one, alone, or without a private
        home (a server not started by serving.run), where there is nothing to balance against."""
        import bentoml

        home, worker = os.environ.get("BENTOML_HOME"), bentoml.server_context.worker_index
        if workers < 2 or not home or worker is None or not 1 <= worker <= workers:
            return None
        return cls(Path(home) / "clv-connections", worker, workers)

    def surplus(self, connections: int) -> int:
        """Publish this worker's `connections`; return how many it holds above one more than an even
        split of every worker's (0 when it holds no more)."""
        now = time.time()
        os.pwrite(self._fd, _SLOT.pack(now, connections), (self.worker - 1) * _SLOT.size)
        data = os.pread(self._fd, self.workers * _SLOT.size, 0)
        total = 0
        for at in range(0, len(data) - _SLOT.size + 1, _SLOT.size):
            stamp, count = _SLOT.unpack_from(data, at)
            if now - stamp <= STALE_SECONDS:
                total += count
        return max(0, connections - math.ceil(total / self.workers) - 1)


class KeepAliveLimit:
    """ASGI middleware: `Connection: close` on a connection's REQUESTS_PER_CONNECTION-th answer, and on
    the next answers of as many connections as this worker holds above its `share`."""

    def __init__(
        self,
        app,
        requests_per_connection: int = REQUESTS_PER_CONNECTION,
        share: ConnectionShare | None = None,
    ):
        self.app = app
        self.limit = requests_per_connection
        self.share = share
        self._answered: dict[tuple, int] = {}
        # Requests per connection in the current and the previous REBALANCE_SECONDS.
        self._window: dict[tuple, int] = {}
        self._previous: dict[tuple, int] = {}
        self._next_balance = 0.0
        self._to_close = 0

    async def __call__(self, scope, receive, send):
        # A connection is its client's address and port, unique among this worker's open connections.
        client = scope.get("client") if scope["type"] == "http" else None
        if client is None:
            await self.app(scope, receive, send)
            return
        key = tuple(client)
        count = self._answered.get(key, 0) + 1
        if count < self.limit and not self._over_share(key):
            if len(self._answered) >= TRACKED_CONNECTIONS:
                self._answered.clear()
            self._answered[key] = count
            await self.app(scope, receive, send)
            return
        for seen in (self._answered, self._window, self._previous):
            seen.pop(key, None)

        async def send_closing(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)

    def _over_share(self, key: tuple) -> bool:
        """Whether this answer should close its connection because the worker holds too many."""
        if self.share is None:
            return False
        self._window[key] = self._window.get(key, 0) + 1
        now = time.monotonic()
        if now >= self._next_balance:
            self._next_balance = now + REBALANCE_SECONDS
            # A connection counts while it carries traffic: two requests or more within the last two
            # windows. Not one: a client that connected once and left (and is not seen closing) would
            # count for a while, and closing a busy client's connection for it buys nothing.
            busy = sum(
                self._window.get(k, 0) + self._previous.get(k, 0) >= 2
                for k in self._window.keys() | self._previous.keys()
            )
            self._previous, self._window = self._window, {}
            self._to_close = self.share.surplus(busy)
        if self._to_close <= 0:
            return False
        self._to_close -= 1
        return True
