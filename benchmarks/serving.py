"""Benchmark: the BentoML service under load, against a minimal FastAPI app as the floor.

    .venv/bin/python benchmarks/serving.py [--customers 20000] [--seconds 20] [--clients 32]
                                           [--workers N] [--workdir DIR]

Set-up (in a temporary directory, or `--workdir` to keep it for the next run): a demo shop is
generated, trained and scored, exactly as `make train` does. Then, each in its own process on loopback:
- the service (`bentoml serve serving.service:CLVService`, what `clv serve` runs);
- the floor: a FastAPI app with one `async def` route that looks ids up in a dict built from the
  same score table (no auth, no metrics, no validation beyond FastAPI's), served by uvicorn.

Load: `--clients` concurrent keep-alive HTTP/1.1 connections for `--seconds` each, from a separate
process with a minimal asyncio client (an HTTP library would be slower than the servers) that
reconnects when an answer says `Connection: close`. Both servers run side by side; the load starts
once every worker of the service has loaded, and the floor and the service's `/predict` with one id
take turns in ROUNDS rounds (`compare_with_floor`), so their ratio is measured under the same
background load. Reported: p50 and p99 latency, requests per second, throughput and p99 relative to
the floor; per service row the CPU seconds of each worker and the connections each held half-way
through (how the clients were spread); `/predict_history` also with a single client (latency
without queueing); the load average; the peak RSS of the floor and of each server process after the
load; finally the time from process start to `/readyz` answering 200 with a synthetic 1M-customer
score table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.peak_memory import peak_rss_mb  # noqa: E402

KEY = "bench-key"
WARM_UP_SECONDS = 3


# ------------------------------------------------------------------------------------------ floor
def serve_floor(port: int, scores: str) -> None:
    import uvicorn
    from fastapi import FastAPI

    frame = pd.read_parquet(scores)
    frame["as_of"] = frame["as_of"].astype(str)
    frame["customer_id"] = frame["customer_id"].astype(str)
    rows = {r["customer_id"]: r for r in json.loads(frame.to_json(orient="records"))}
    app = FastAPI()

    @app.post("/predict")
    async def predict(body: dict):
        ids = body["customer_ids"]
        return {
            "predictions": [rows[i] for i in ids if i in rows],
            "unknown_ids": [i for i in ids if i not in rows],
        }

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# ------------------------------------------------------------------------------------------- load
async def exchange(reader, writer, request: bytes) -> tuple[int, bool]:
    """Send one request on an open connection and read its answer: (status, whether the connection stays
    open; the service closes one now and then, serving.keepalive)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length, keep_alive = 0, True
    for line in head.lower().split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and b"close" in value:
            keep_alive = False
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1]), keep_alive


async def _client(port: int, request: bytes, deadline: float, latencies: list, errors: list) -> None:
    writer = None
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            if writer is None:
                # A request on a new connection pays for connecting, as it would in any HTTP client.
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            status, keep_alive = await exchange(reader, writer, request)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
            if not keep_alive:
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close()


def _load(port: int, path: str, body: bytes, seconds: float, clients: int, out) -> None:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors: list[int] = []

    async def main():
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_client(port, request, deadline, latencies, errors) for _ in range(clients)))

    started = time.perf_counter()
    asyncio.run(main())
    out.put((latencies, errors, time.perf_counter() - started))


def run_load(port: int, path: str, body: dict, seconds: float, clients: int) -> dict:
    """The raw outcome of `clients` keep-alive clients sending `body` for `seconds`: latencies (s),
    non-200 statuses and elapsed seconds; `summary` of one or more of them gives the table's numbers."""
    queue = mp.Queue()
    process = mp.Process(target=_load, args=(port, path, json.dumps(body).encode(), seconds, clients, queue))
    process.start()
    latencies, errors, elapsed = queue.get()
    process.join()
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed}


def summary(*runs: dict) -> dict:
    ms = np.concatenate([np.asarray(run["latencies"]) * 1000 for run in runs])
    return {
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "rps": len(ms) / sum(run["elapsed"] for run in runs),
        "errors": sum(len(run["errors"]) for run in runs),
    }


# ---------------------------------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 120) -> float:
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout} s")


@contextlib.contextmanager
def running_service(env: dict, cwd: Path):
    """(port, seconds to ready, server process) of the service, stopped with every process of it on exit."""
    from serving.run import server_process

    port = free_port()
    started = time.perf_counter()
    with server_process(
        port, "127.0.0.1", env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as process:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        yield port, time.perf_counter() - started, process


def connections_by_worker(workers: list[psutil.Process], port: int) -> list[int]:
    """How many open connections to `port` each worker process holds."""
    return [
        sum(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port for c in w.net_connections("tcp"))
        for w in workers
    ]


def wait_every_worker(port: int, workers: list[psutil.Process], timeout: float = 120) -> None:
    """Return once every worker has answered a connection.

    Readiness means one worker has loaded; the others load after it (serving.service._loading_turn),
    and meanwhile they accept no connection and take a core the load needs. Connections are opened
    and kept until each worker holds one.
    """
    deadline = time.perf_counter() + timeout
    with contextlib.ExitStack() as held:
        while min(connections_by_worker(workers, port)) == 0:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"not every worker answers after {timeout} s")
            sock = held.enter_context(socket.create_connection(("127.0.0.1", port)))
            sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            sock.recv(65536)  # answered: a worker accepted it
            time.sleep(0.1)


def run_watched(port: int, workers: list[psutil.Process], *load) -> dict:
    """`run_load(port, *load)`, plus the CPU seconds each worker used and the connections each held
    half-way through: how the clients were spread over the workers."""
    before = [sum(w.cpu_times()[:2]) for w in workers]
    halfway = threading.Timer(load[2] / 2, lambda: spread.append(connections_by_worker(workers, port)))
    spread: list[list[int]] = []
    halfway.start()
    run = run_load(port, *load)
    halfway.join()
    return {
        **run,
        "cpu": [sum(w.cpu_times()[:2]) - b for w, b in zip(workers, before, strict=True)],
        "spread": spread,
    }


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


# ------------------------------------------------------------------------------------------ setup
def prepare(workdir: Path, customers: int) -> tuple[Path, str, Path]:
    from config import load_settings
    from demo.shop import write_demo_shop
    from features.contract import load_shop
    from training.pipeline import train
    from training.score import score

    shop = workdir / "shop"
    write_demo_shop(shop, n_customers=customers, seed=42)
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    settings = load_settings(mlflow={"tracking_uri": uri}, serve={"scores": workdir / "scores.parquet"})
    os.chdir(workdir)

    def load():
        return load_shop(shop / "transactions.parquet", shop / "events.parquet", shop / "customers.parquet")

    train(load(), settings)
    score(load(), settings, settings.serve.scores)
    return shop, uri, settings.serve.scores


def trained_demo(workdir: Path, customers: int, console: Console) -> tuple[Path, str, Path]:
    """(shop folder, tracking URI, score table) of the demo in `workdir`, trained as `make train` does,
    or reused when an earlier run (`--workdir`) left one there. Changes into `workdir`."""
    if not (workdir / "scores.parquet").exists():
        console.print(f"training a {customers:,}-customer demo shop (as `make train` does)...")
        return prepare(workdir, customers)
    console.print(f"reusing the trained demo in {workdir}")
    os.chdir(workdir)
    return workdir / "shop", f"sqlite:///{workdir / 'mlflow.db'}", workdir / "scores.parquet"


def history_body(shop: Path, scores: Path, n_rows: int = 20) -> dict:
    transactions = pd.read_parquet(shop / "transactions.parquet")
    counts = transactions.groupby("customer_id").size()
    customer = (counts - n_rows).abs().idxmin()
    rows = transactions[transactions["customer_id"] == customer].head(n_rows)
    as_of = str(pd.read_parquet(scores)["as_of"].iloc[0])[:10]
    # The model was trained with events and attributes, so a request sends the customer's too.
    body = {"as_of": as_of, "transactions": rows}
    for table in ("events", "customers"):
        frame = pd.read_parquet(shop / f"{table}.parquet")
        body[table] = frame[frame["customer_id"] == customer]
    return {
        k: v if isinstance(v, str) else json.loads(v.to_json(orient="records", date_format="iso"))
        for k, v in body.items()
    }


def synthetic_scores(path: Path, n: int) -> None:
    from features.schema import SCORE_COLUMNS

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"customer_id": [f"S{i:08d}" for i in range(n)]})
    for column in SCORE_COLUMNS[1:]:
        frame[column] = rng.random(n)
    frame["segment"], frame["next_best_action"] = "nurture", "nurture"
    frame["value_decile"] = rng.integers(1, 11, n)
    frame["as_of"], frame["horizon_days"], frame["model_version"] = (
        pd.Timestamp("2025-12-31").date(),
        365,
        "1",
    )
    frame.to_parquet(path, index=False)


FLOOR, ONE_ID = "floor: /predict, 1 id", "service: /predict, 1 id"
ROUNDS = 4


def compare_with_floor(port: int, floor_port: int, workers, body: dict, args, console) -> dict[str, list]:
    """The floor's and the service's `/predict` with one id, in ROUNDS alternating rounds of
    `--seconds / ROUNDS` each: this machine is shared, and a job of someone else's that starts between
    two long runs would change the ratio; alternating, both see the same background load."""
    console.print(f"load: floor and service, /predict 1 id, {ROUNDS} alternating rounds")
    run_load(floor_port, "/predict", body, WARM_UP_SECONDS, args.clients)
    run_load(port, "/predict", body, WARM_UP_SECONDS, args.clients)
    runs: dict[str, list] = {FLOOR: [], ONE_ID: []}
    for _ in range(ROUNDS):
        runs[FLOOR].append(run_load(floor_port, "/predict", body, args.seconds / ROUNDS, args.clients))
        runs[ONE_ID].append(run_watched(port, workers, "/predict", body, args.seconds / ROUNDS, args.clients))
    return runs


def report(console: Console, runs: dict[str, list], args) -> None:
    floor = summary(*runs[FLOOR])
    table = Table(
        title=f"{args.clients} concurrent clients (unless said), {args.seconds:g} s each, {os.cpu_count()} cores"
    )
    columns = (
        "endpoint",
        "p50 ms",
        "p99 ms",
        "req/s",
        "req/s / floor",
        "p99 / floor",
        "non-200",
        "worker CPU s",
    )
    for column in (*columns, "connections per worker, half-way"):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for name, measured in runs.items():
        r = summary(*measured)
        cpu = [sum(c) for c in zip(*(run["cpu"] for run in measured), strict=True)] if name != FLOOR else []
        table.add_row(
            name,
            f"{r['p50']:.1f}",
            f"{r['p99']:.1f}",
            f"{r['rps']:,.0f}",
            f"{r['rps'] / floor['rps']:.2f}",
            f"{r['p99'] / floor['p99']:.2f}",
            str(r["errors"]),
            " / ".join(f"{c:.1f}" for c in cpu),
            " ".join("/".join(map(str, split)) for run in measured for split in run.get("spread", [])),
        )
    console.print(table)
    rounds = [summary(s)["rps"] / summary(f)["rps"] for f, s in zip(runs[FLOOR], runs[ONE_ID], strict=True)]
    console.print(f"/predict 1 id req/s / floor's, round by round: {', '.join(f'{r:.2f}' for r in rounds)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, help="service worker processes (default: [serve] workers)")
    parser.add_argument("--startup-customers", type=int, default=1_000_000)
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the trained demo here and reuse it on the next run (default: a temporary directory)",
    )
    parser.add_argument("--serve-floor", nargs=2, metavar=("PORT", "SCORES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(int(args.serve_floor[0]), args.serve_floor[1])
        return
    from clv.cli import quiet_mlflow

    quiet_mlflow()  # the same quiet as `clv`

    console = Console(width=160)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        shop, uri, scores = trained_demo(workdir, args.customers, console)
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": uri,
            "CLV_SERVE__SCORES": str(scores),
            "CLV_API_KEYS": f"{KEY}:app",
            "BENTOML_DO_NOT_TRACK": "true",
            "CLV_SERVE__RELOAD_SECONDS": "0",
        }
        if args.workers:
            env["CLV_SERVE__WORKERS"] = str(args.workers)
        load_before = os.getloadavg()[0]
        ids = pd.read_parquet(scores)["customer_id"].astype(str).tolist()
        one, hundred = {"customer_ids": ids[:1]}, {"customer_ids": ids[:100]}

        floor_port = free_port()
        floor = subprocess.Popen([sys.executable, __file__, "--serve-floor", str(floor_port), str(scores)])
        try:
            wait_ready(f"http://127.0.0.1:{floor_port}/docs", floor)
            with running_service(env, workdir) as (port, _, server):
                workers = psutil.Process(server.pid).children(recursive=True)
                wait_every_worker(port, workers)
                runs = compare_with_floor(port, floor_port, workers, one, args, console)
                history = history_body(shop, scores)
                for name, path, body, clients in (
                    ("service: /predict, 100 ids", "/predict", hundred, args.clients),
                    ("service: /predict_history, 20 transactions", "/predict_history", history, args.clients),
                    ("service: /predict_history, 1 client", "/predict_history", history, 1),
                ):
                    console.print(f"load: {name}")
                    run_load(port, path, body, WARM_UP_SECONDS, clients)
                    runs[name] = [run_watched(port, workers, path, body, args.seconds, clients)]
                peaks = {"floor": peak_rss_mb(floor.pid), "service supervisor": peak_rss_mb(server.pid)}
                for i, worker in enumerate(workers, 1):
                    peaks[f"service worker {i}"] = peak_rss_mb(worker.pid)
        finally:
            stop(floor)

        big = workdir / "scores_big.parquet"
        synthetic_scores(big, args.startup_customers)
        startups = []
        for _ in range(3):
            with running_service({**env, "CLV_SERVE__SCORES": str(big)}, workdir) as (_, seconds, _):
                startups.append(seconds)
        big.unlink()

    report(console, runs, args)
    console.print(
        f"load average (1 min; other users' jobs included) before the load: {load_before:.1f}, "
        f"after: {os.getloadavg()[0]:.1f}"
    )
    console.print(
        f"start-up to ready with {args.startup_customers:,} scored customers: median "
        f"{statistics.median(startups):.1f} s (runs: {', '.join(f'{s:.1f}' for s in startups)})"
    )
    console.print(
        "peak RSS per process (its own high-water mark, benchmarks/peak_memory.py): "
        + ", ".join(f"{name} {'?' if mb is None else f'{mb:,.0f} MB'}" for name, mb in peaks.items())
    )


if __name__ == "__main__":
    main()
