"""`clv serve`: check that there is something to serve, then run the BentoML server.

The checks turn the usual first-day problems (no model trained yet, no score table, no API keys)
into one clear message each, instead of a server that starts and then fails every request.
"""

from __future__ import annotations

import os
import subprocess
import sys

from clv.config import Settings
from serving.auth import NO_KEYS_HELP
from serving.scores import ScoresUnavailable, ScoreTable
from training import tracking


class NotReadyToServe(RuntimeError):
    pass


def preflight(settings: Settings) -> None:
    if not settings.serve.api_keys:
        raise NotReadyToServe(NO_KEYS_HELP)
    name, alias = settings.mlflow.registered_model, settings.mlflow.champion_alias
    try:
        tracking.client(settings.mlflow.tracking_uri).get_model_version_by_alias(name, alias)
    except Exception:  # noqa: BLE001 - a missing store, model or alias all mean "train first"
        raise NotReadyToServe(
            f"no {name}@{alias} model in {settings.mlflow.tracking_uri}. Fix: run `make train` first "
            "(or set MLFLOW_TRACKING_URI to the store that has it)."
        ) from None
    try:
        ScoreTable.load(settings.serve.scores)
    except ScoresUnavailable as exc:
        raise NotReadyToServe(str(exc)) from None


def server_command(port: int, host: str | None = None) -> list[str]:
    """The command that runs the service (also used by the tests and benchmarks/serving.py)."""
    command = [sys.executable, "-m", "bentoml", "serve", "serving.service:CLVService", "--port", str(port)]
    return [*command, "--host", host] if host else command


def run(settings: Settings) -> int:
    """Run the server in the foreground until interrupted; returns its exit code."""
    preflight(settings)
    env = {
        **os.environ,
        "BENTOML_DO_NOT_TRACK": "true",
        # The server process reads its settings from the environment (clv.config), so pass on what
        # this command resolved: the same store and score table, whatever the working directory.
        "MLFLOW_TRACKING_URI": settings.mlflow.tracking_uri,
        "CLV_SERVE__SCORES": str(settings.serve.scores.resolve()),
    }
    port = settings.serve.port
    print(
        f"Serving on http://127.0.0.1:{port} (API) and http://127.0.0.1:{port}/ui (marketer page).",
        flush=True,
    )
    try:
        return subprocess.call(server_command(port), env=env)
    except KeyboardInterrupt:
        return 130
