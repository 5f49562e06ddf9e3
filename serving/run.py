"""`clv serve`: check that there is something to serve, then run the BentoML server.

The checks turn the usual first-day problems (no model trained yet, no score table, no API keys)
into one clear message each, instead of a server that starts and then fails every request.

The server gets the settings this command resolved (clv.toml, the environment and the command
line's options), as a file it is given the path of (`serving.service.ServerArguments`). It runs in
its own process group with its own BentoML home, and `server_process` stops every process of it on
the way out, whatever happened: SIGTERM, SIGINT and SIGHUP to `clv serve` stop the server, which
stops its workers, and anything left is killed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from config import Settings
from serving.auth import NO_KEYS_HELP
from serving.scores import ScoresUnavailable, ScoreTable
from training.registry import Registry
from training.tracking import StoreUnavailable, sqlite_path

STOP_SECONDS = 20
# Signal to `clv serve` -> signal passed on to the server.
FORWARDED = {signal.SIGTERM: signal.SIGTERM, signal.SIGINT: signal.SIGINT, signal.SIGHUP: signal.SIGTERM}


class NotReadyToServe(RuntimeError):
    pass


def preflight(settings: Settings) -> None:
    if not settings.serve.api_keys:
        raise NotReadyToServe(NO_KEYS_HELP)
    uri = settings.mlflow.tracking_uri
    missing = f"no {settings.mlflow.registered_model}@{settings.mlflow.champion_alias} model in {uri}"
    fix = "Fix: run `make train` first (or set MLFLOW_TRACKING_URI to the store that has it)."
    # Opening a SQLite store creates it: a refusal in an empty directory left an empty mlflow.db behind.
    database = sqlite_path(uri)
    if database is not None and not database.is_file():
        raise NotReadyToServe(f"{missing} (the file does not exist). {fix}")
    try:
        Registry(settings.mlflow).champion_version()
    except StoreUnavailable as exc:
        raise NotReadyToServe(str(exc)) from None
    except Exception:  # noqa: BLE001 - a missing store, model or alias all mean "train first"
        raise NotReadyToServe(f"{missing}. {fix}") from None
    try:
        ScoreTable.load(settings.serve.scores)
    except ScoresUnavailable as exc:
        raise NotReadyToServe(str(exc)) from None


def server_command(port: int, host: str, config: Path | None = None) -> list[str]:
    """The command that runs the service, with the settings in the file `config` (without it: clv.toml and
    the environment); start it with `server_process`."""
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:CLVService",
        "--port",
        str(port),
        "--host",
        host,
        *(["--arg", f"config={config}"] if config else []),
    ]


@contextlib.contextmanager
def server_process(
    port: int, host: str, env: dict[str, str], settings: Settings | None = None, **popen
) -> Iterator[subprocess.Popen]:
    """The server of `settings` (without: of clv.toml and `env`), started in its own process group; on exit
    it and every process it started are stopped.

    BentoML keeps its Prometheus multiprocess files in `$BENTOML_HOME/prometheus_multiproc_dir` and
    empties that directory when a server starts, so two servers of one user sharing the default home
    would wipe each other's /metrics: each server gets a private home, removed when it stops (this
    service keeps nothing else there but its settings, readable by this user only: they hold the API
    keys; models come from the MLflow registry). Used by `clv serve`, the tests and the benchmarks
    (extra keyword arguments go to Popen: cwd, stdout, ...).
    """
    home = tempfile.mkdtemp(prefix="clv-serve-")
    config = None
    if settings is not None:
        config = Path(home) / "settings.json"
        config.touch(mode=0o600)
        config.write_text(settings.model_dump_json())
    env = {**env, "BENTOML_HOME": home, "BENTOML_DO_NOT_TRACK": "true"}
    process = subprocess.Popen(server_command(port, host, config), env=env, start_new_session=True, **popen)
    try:
        yield process
    finally:
        stop(process)
        shutil.rmtree(home, ignore_errors=True)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server (it stops its workers), then SIGKILL to anything of its group still there."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_SECONDS)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run(settings: Settings) -> int:
    """Run the server in the foreground until it stops or `clv serve` gets SIGTERM, SIGINT or SIGHUP."""
    preflight(settings)
    # What this command checked is what the server serves, whatever its working directory.
    served = settings.serve.model_copy(update={"scores": settings.serve.scores.resolve()})
    host, port = settings.serve.host, settings.serve.port
    shown = f"[{host}]" if ":" in host else host
    everywhere = " on every network interface" if host in ("0.0.0.0", "::") else ""
    print(
        f"Serving on http://{shown}:{port}{everywhere} (API) and http://{shown}:{port}/ui (marketer page).",
        flush=True,
    )
    with server_process(
        port, host, dict(os.environ), settings.model_copy(update={"serve": served})
    ) as process:
        # The server has its own process group, so a terminal's Ctrl-C (or its closing: SIGHUP)
        # reaches only this process: pass it on and let the server stop its workers. Not SIGHUP
        # itself, which the server would take as "reload".
        for signum, passed_on in FORWARDED.items():
            signal.signal(signum, lambda _signum, _frame, sent=passed_on: process.send_signal(sent))
        code = process.wait()
    return 130 if code == -signal.SIGINT else code
