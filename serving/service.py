"""The BentoML service: `bentoml serve serving.service:CLVService` (what `clv serve` runs).

BentoML runs the process and gives `/healthz`, `/livez`, `/readyz` (ready once the model and score
table are loaded) and `/metrics` (Prometheus, including this project's `clv_predictions_total` and
`clv_request_latency_seconds`). The routes themselves are a FastAPI app (serving.api) mounted at
the root, so authentication, error bodies and the marketer page share one implementation.

Configuration comes from clv.toml / CLV_* environment variables (clv.config), read at start-up.
"""

from __future__ import annotations

import gc
import logging
import os
import threading

import bentoml

from clv.config import load_settings
from serving.api import create_app
from serving.auth import NO_KEYS_HELP, Keyring
from serving.page import mount_page
from serving.state import ServingState

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
log = logging.getLogger(__name__)

settings = load_settings()
keyring = Keyring(settings.serve.api_keys)
if not keyring:
    raise SystemExit(NO_KEYS_HELP)
state = ServingState(settings)
app = create_app(state, keyring)
mount_page(app, state)


@bentoml.service(
    name="clv",
    workers=settings.serve.workers,
    traffic={"timeout": 60, "max_concurrency": 256},
    # One log line per request costs more than a lookup; errors are still logged.
    logging={"access": {"enabled": False}},
)
@bentoml.asgi_app(app, path="/")
class CLVService:
    def __init__(self) -> None:
        state.load()
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
        return state.current is not None

    def _watch(self) -> None:
        stop = threading.Event()
        while not stop.wait(settings.serve.reload_seconds):
            try:
                state.reload_if_changed()
            except Exception:  # noqa: BLE001 - keep serving the current model; the next check retries
                log.exception("reload check failed; still serving the current model")
