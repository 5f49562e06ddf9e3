"""The BentoML service: `bentoml serve serving.service:CLVService` (what `clv serve` runs).

BentoML runs the process and gives `/healthz`, `/livez`, `/readyz` (ready once the model and score
table are loaded) and `/metrics` (Prometheus, including this project's `clv_predictions_total` and
`clv_request_latency_seconds`). The routes themselves are a FastAPI app (serving.api) mounted at
the root, so authentication, error bodies and the marketer page share one implementation.

Configuration comes from clv.toml / CLV_* environment variables (clv.config), read at start-up.
Without API keys the service refuses to start (serving.auth.NO_KEYS_HELP says how to add one).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time

import bentoml
from starlette.applications import Starlette

from clv.config import load_settings
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
    def __init__(self) -> None:
        from serving.api import create_app
        from serving.page import mount_page
        from serving.state import ServingState

        self.state = ServingState(settings)
        self.state.load()
        app = create_app(self.state, keyring)
        mount_page(app, self.state)
        routes.fill(app)
        # A large, long-lived heap makes Python's full collections slow (STACK.md): freeze what
        # start-up allocated so the collector stops rescanning it on every request burst.
        gc.collect()
        gc.freeze()
        # Requests allocate many short-lived objects; collecting the young generation less often
        # trims the latency tail without letting memory grow (the old generations are frozen).
        gc.set_threshold(50_000, 20, 100)
        if settings.serve.reload_seconds:
            threading.Thread(target=self._watch, name="champion-watch", daemon=True).start()

    def __is_ready__(self) -> bool:
        return self.state.current is not None

    def _watch(self) -> None:
        while True:
            time.sleep(settings.serve.reload_seconds)
            try:
                self.state.reload_if_changed()
            except Exception:  # noqa: BLE001 - keep serving the current model; the next check retries
                log.exception("reload check failed; still serving the current model")
