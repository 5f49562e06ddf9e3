"""The BentoML service: `bentoml serve serving.service:CLVService --arg config=PATH` (what `clv serve` runs).

BentoML runs the process and gives `/healthz`, `/livez`, `/readyz` (ready once the model and score
table are loaded) and `/metrics` (Prometheus: BentoML's request counts and durations by endpoint, and
this project's `clv_predictions_total`). The routes themselves are a FastAPI app (serving.api, with
the routes of serving.routes and serving.page) that each worker's `CLVService` builds and BentoML
serves at the root, so authentication, error bodies and the marketer page share one implementation.

Configuration: the settings `clv serve` resolved, in the file `--arg config=PATH` names (written by
`serving.run`); a server started without it reads clv.toml and the CLV_* environment (`config`).
Without API keys the server refuses to start (serving.auth.NO_KEYS_HELP says how to add one).
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
from pydantic import BaseModel

from config import Settings, load_settings
from serving.auth import NO_KEYS_HELP, Keyring

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
log = logging.getLogger(__name__)


class ServerArguments(BaseModel):
    """What `bentoml serve ... --arg config=PATH` passes (`serving.run.server_command`)."""

    # The settings as `clv serve` resolved them (JSON of config.Settings); None: clv.toml and the environment.
    config: Path | None = None

    def settings(self) -> Settings:
        if self.config is None:
            return load_settings()
        return Settings.model_validate_json(self.config.read_text())


async def _workers_app(scope, receive, send) -> None:
    """What BentoML mounts at the root: this worker's app (`CLVService.app`).

    BentoML needs what it mounts when this module is imported, which its supervisor process does too,
    only to read the service's configuration; the app is built by the service, in each worker, so the
    supervisor does not import MLflow, the model and the feature code for nothing (seconds of every
    start). Mounted as a plain ASGI callable, it gets every path BentoML does not answer itself, so
    unknown paths and methods get the app's JSON 404/405 instead of BentoML's plain-text one.
    """
    await bentoml.get_current_service().app(scope, receive, send)


@bentoml.service(
    name="clv",
    # The one setting BentoML needs before any worker exists, so it is read when the module is imported.
    workers=bentoml.use_arguments(ServerArguments).settings().serve.workers,
    traffic={"timeout": 60, "max_concurrency": 256},
    # One log line per request costs more than a lookup; errors are still logged.
    logging={"access": {"enabled": False}},
    # BentoML opens OpenTelemetry spans for every request even with no exporter configured, at about
    # a third of a lookup's cost. Configure an exporter here and drop this line to trace requests.
    tracing={"excluded_urls": ["/"]},
)
@bentoml.asgi_app(_workers_app, path="/")
class CLVService:
    """Loads the champion and score table, then checks for new ones every `[serve] reload_seconds`.

    Without a champion or score table the worker still starts but is not ready (/readyz and
    requests answer 503; the log says why) and retries every RETRY_SECONDS, so a deployment started
    before the first `make train` comes up by itself. `clv serve` checks both before starting.
    """

    def __init__(self) -> None:
        self.settings = bentoml.use_arguments(ServerArguments).settings()
        # Loading creates hundreds of thousands of objects that live as long as the worker (modules,
        # the model, the score table); the collector rescanned them about 1,000 times while they
        # were created, 1.1 s of a 6 s start. Freezing them once loaded (_settle_heap) is enough.
        gc.disable()
        try:
            with _loading_turn(self.settings.serve.scores):
                from serving.api import create_app
                from serving.keepalive import ConnectionShare
                from serving.state import ServingState

                self.state = ServingState(self.settings)
                self.app = create_app(
                    self.state,
                    Keyring(self.settings.serve.api_keys),
                    ConnectionShare.of_this_worker(self.settings.serve.workers),
                )
                self.state.check()
        finally:
            # Loading leaves about 10,000 unreachable objects (a megabyte or two with a 1M-customer
            # table); collecting them means scanning all 670,000 live ones, 0.4 s of the start.
            _settle_heap(collect=False)
        threading.Thread(target=self._watch, name="champion-watch", daemon=True).start()

    @bentoml.on_deployment
    @staticmethod
    def _refuse_without_keys() -> None:
        # Once, in the server's first process, before any worker starts: nobody could call the service.
        if not bentoml.use_arguments(ServerArguments).settings().serve.api_keys:
            raise SystemExit(NO_KEYS_HELP)

    def __is_ready__(self) -> bool:
        # Not ready without a model, or while a /predict_history batch is stuck (serving.batching).
        return self.state.current is not None and self.app.state.batcher.healthy()

    def _watch(self) -> None:
        """Check for a new champion or score table every `reload_seconds` (every RETRY_SECONDS while
        nothing is loaded), and within a second when another worker was asked to reload."""
        last = time.monotonic()
        while True:
            time.sleep(SIGNAL_SECONDS)
            every = self.settings.serve.reload_seconds if self.state.current else RETRY_SECONDS
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
