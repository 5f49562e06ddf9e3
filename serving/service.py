"""The BentoML service: `bentoml serve serving.service:CLVService` (what `clv serve` runs).

BentoML runs the process and gives `/healthz`, `/livez`, `/readyz` (ready once the model and score
table are loaded) and `/metrics` (Prometheus: BentoML's request counts and durations by endpoint, and
this project's `clv_predictions_total`). The routes themselves are a FastAPI app (serving.api) mounted at
the root, so authentication, error bodies and the marketer page share one implementation.

Configuration comes from clv.toml / CLV_* environment variables (`config`), read at start-up.
Without API keys the service refuses to start (serving.auth.NO_KEYS_HELP says how to add one).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import threading
import time
from pathlib import Path

import bentoml
from starlette.applications import Starlette
from starlette.routing import Mount

from config import load_settings
from serving.auth import NO_KEYS_HELP, Keyring

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
log = logging.getLogger(__name__)

settings = load_settings()
keyring = Keyring(settings.serve.api_keys)
if not keyring:
    raise SystemExit(NO_KEYS_HELP)


class Routes(Starlette):
    """The API and page routes, built in each worker by `CLVService.__init__`.

    `bentoml serve` also imports this module in its supervisor process, only to read the service's
    configuration. Building the routes there would import MLflow, the model and the feature code
    for nothing and hold up every worker's start by seconds, so BentoML mounts this placeholder and
    the worker fills it in before it takes requests.
    """

    def __init__(self) -> None:
        super().__init__()
        self.inner: Starlette | None = None

    def fill(self, app: Starlette) -> None:
        self.inner = app
        # BentoML matches paths and runs lifespans through the mounted app's router.
        self.router = app.router

    @property
    def routes(self) -> list:
        # BentoML passes a request on to this app only when one of these routes matches its path;
        # matching every path lets the app answer unknown paths and methods with its JSON 404/405
        # instead of BentoML's plain-text one. BentoML's own routes (/healthz, /metrics, ...) come first.
        return [*self.router.routes, Mount("", self)]

    async def __call__(self, scope, receive, send) -> None:
        await self.inner(scope, receive, send)


routes = Routes()


@bentoml.service(
    name="clv",
    workers=settings.serve.workers,
    traffic={"timeout": 60, "max_concurrency": 256},
    # One log line per request costs more than a lookup; errors are still logged.
    logging={"access": {"enabled": False}},
    # BentoML opens OpenTelemetry spans for every request even with no exporter configured, at about
    # a third of a lookup's cost. Configure an exporter here and drop this line to trace requests.
    tracing={"excluded_urls": ["/"]},
)
@bentoml.asgi_app(routes, path="/")
class CLVService:
    """Loads the champion and score table, then checks for new ones every `[serve] reload_seconds`.

    Without a champion or score table the worker still starts but is not ready (/readyz and
    requests answer 503; the log says why) and retries every RETRY_SECONDS, so a deployment started
    before the first `make train` comes up by itself. `clv serve` checks both before starting.
    """

    def __init__(self) -> None:
        # Loading creates hundreds of thousands of objects that live as long as the worker (modules,
        # the model, the score table); the collector rescanned them about 1,000 times while they
        # were created, 1.1 s of a 6 s start. Freezing them once loaded (_settle_heap) is enough.
        gc.disable()
        try:
            with _loading_turn(settings.serve.scores):
                from serving.api import create_app
                from serving.page import mount_page
                from serving.state import ServingState

                self.state = ServingState(settings)
                self.app = create_app(self.state, keyring)
                mount_page(self.app, self.state)
                routes.fill(self.app)
                self.state.check()
        finally:
            # Loading leaves about 10,000 unreachable objects (a megabyte or two with a 1M-customer
            # table); collecting them means scanning all 670,000 live ones, 0.4 s of the start.
            _settle_heap(collect=False)
        threading.Thread(target=self._watch, name="champion-watch", daemon=True).start()

    def __is_ready__(self) -> bool:
        # Not ready without a model, or while a /predict_history batch is stuck (serving.batching).
        return self.state.current is not None and self.app.state.batcher.healthy()

    def _watch(self) -> None:
        """Check for a new champion or score table every `reload_seconds` (every RETRY_SECONDS while
        nothing is loaded), and within a second when another worker was asked to reload."""
        last = time.monotonic()
        while True:
            time.sleep(SIGNAL_SECONDS)
            every = settings.serve.reload_seconds if self.state.current else RETRY_SECONDS
            due = every and time.monotonic() - last >= every
            if self.state.reload_signal.received() or due:
                last = time.monotonic()
                if self.state.check():
                    # The new table and model are as long-lived as the ones they replace.
                    _settle_heap()


RETRY_SECONDS = 10
SIGNAL_SECONDS = 1


@contextlib.contextmanager
def _loading_turn(scores: Path):
    """Let the workers of a server load one at a time.

    Importing and loading are CPU-bound; two workers doing both together on two cores both finish
    late, while one after the other makes the first ready (and the server with it) in the time one
    takes alone. The lock is on the score table, which every worker reads anyway and which
    outlives the server, so no lock file is left behind.
    """
    try:
        handle = open(scores, "rb")  # noqa: SIM115 - closed below; closing releases the lock
    except OSError:
        yield  # nothing to load; loading reports why
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _settle_heap(collect: bool = True) -> None:
    # A large, long-lived heap makes Python's full collections slow (each one rescans it): freeze what
    # start-up allocated so the collector stops rescanning it on every request burst.
    if collect:
        gc.collect()
    gc.freeze()
    # Requests allocate many short-lived objects; collecting the young generation less often
    # trims the latency tail without letting memory grow (the old generations are frozen).
    gc.set_threshold(50_000, 20, 100)
    gc.enable()
