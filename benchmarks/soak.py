"""Load and soak test: the service under steady mixed traffic for a few minutes, on loopback.

    .venv/bin/python benchmarks/soak.py [--seconds 180] [--clients 32] [--customers 20000] [--workdir DIR]

Set-up as in benchmarks/serving.py (a trained demo shop; `--workdir` reuses one). Then the service
runs for `--seconds` while `--clients` keep-alive connections, from a separate process, send a mix:
mostly `/predict` with one id, some with 100 ids, `/predict_history` with a customer's 20
transactions and their events, and a share of hostile requests (absurd amounts, ambiguous dates,
unknown paths, malformed JSON) that must get their 4xx without hurting the others. It stops by
itself and reports, per kind of request: count, p50/p99 latency, 5xx answers and errors (a status
other than the expected one, or a broken connection); and the resident memory of every server
process (supervisor and workers) sampled over the run, to show whether it stays flat.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
# Set-up and server helpers are benchmarks/serving.py's; loaded by path, as its module name is taken
# by the `serving` package.
_spec = importlib.util.spec_from_file_location("serving_benchmark", ROOT / "benchmarks" / "serving.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

SAMPLE_SECONDS = 10
ABSURD_ROW = {"customer_id": "x", "timestamp": "2025-01-01", "amount": 1e308}


def request_mix(ids: list[str], history: dict) -> list[tuple[str, str, str, bytes, int]]:
    """(kind, method, path, body, expected status) in the proportions they are sent."""

    def post(kind, path, body, expected):
        return (kind, "POST", path, json.dumps(body).encode(), expected)

    hostile_history = {**history, "transactions": [ABSURD_ROW]}
    ambiguous = {**history, "transactions": [{**history["transactions"][0], "timestamp": "02/11/2025"}]}
    return [
        *[post("predict 1 id", "/predict", {"customer_ids": [i]}, 200) for i in ids[:12]],
        post("predict 100 ids", "/predict", {"customer_ids": ids[:100]}, 200),
        *[post("predict_history 20 tx", "/predict_history", history, 200)] * 3,
        post("hostile (400)", "/predict_history", hostile_history, 400),
        post("hostile (400)", "/predict_history", ambiguous, 400),
        ("hostile (400)", "POST", "/predict", b"{oops", 400),
        ("hostile (404)", "GET", "/nope", b"", 404),
    ]


async def _client(port, mix, offset, deadline, results) -> None:
    reader = writer = None
    step = offset
    while time.perf_counter() < deadline:
        kind, method, path, body, expected = mix[step % len(mix)]
        step += 1
        request = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {bench.KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            status, keep_alive = await asyncio.wait_for(bench.exchange(reader, writer, request), 60)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            results.append((kind, time.perf_counter() - started, None, type(exc).__name__))
            writer = None  # a new connection for the next request
            continue
        results.append((kind, time.perf_counter() - started, status, None if status == expected else status))
        if not keep_alive:
            writer.close()
            writer = None  # the server closed it after its answer (serving.keepalive)
    if writer is not None:
        writer.close()


def _load(port: int, mix, seconds: float, clients: int, out) -> None:
    results: list = []

    async def main():
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_client(port, mix, i * 7, deadline, results) for i in range(clients)))

    asyncio.run(main())
    out.put(results)


def server_processes(port: int) -> list[psutil.Process]:
    """The server's supervisor and workers: the processes listening on the port, and their parents."""
    found = {}
    for process in psutil.process_iter():
        try:
            if any(
                c.laddr.port == port and c.status == psutil.CONN_LISTEN
                for c in process.net_connections("tcp")
            ):
                found[process.pid] = process
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return sorted(found.values(), key=lambda p: p.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, help="keep the trained demo here and reuse it")
    args = parser.parse_args()
    from clv.cli import quiet_mlflow

    quiet_mlflow()  # the same quiet as `clv`
    console = Console(width=120)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        shop, uri, scores = bench.trained_demo(workdir, args.customers, console)
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": uri,
            "CLV_SERVE__SCORES": str(scores),
            "CLV_API_KEYS": f"{bench.KEY}:app",
        }
        ids = pd.read_parquet(scores)["customer_id"].astype(str).tolist()
        mix = request_mix(ids, bench.history_body(shop, scores))
        with bench.running_service(env, workdir) as (port, _, server):
            bench.wait_every_worker(port, psutil.Process(server.pid).children(recursive=True))
            watched = {p.pid: p for p in server_processes(port)}
            for parent in [p.parent() for p in watched.values()]:
                if parent is not None and "bentoml" in " ".join(parent.cmdline()):
                    watched[parent.pid] = parent
            console.print(
                f"soak: {args.clients} clients for {args.seconds:g} s; watching {len(watched)} processes"
            )
            queue = mp.Queue()
            load = mp.Process(target=_load, args=(port, mix, args.seconds, args.clients, queue))
            started = time.monotonic()
            load.start()
            samples = []
            while load.is_alive() and queue.empty():
                samples.append((time.monotonic() - started, {pid: _rss_mb(p) for pid, p in watched.items()}))
                time.sleep(SAMPLE_SECONDS)
            results = queue.get()
            load.join()
            samples.append((time.monotonic() - started, {pid: _rss_mb(p) for pid, p in watched.items()}))
    report(console, results, samples, args)


def _rss_mb(process: psutil.Process) -> float | None:
    try:
        return process.memory_info().rss / 2**20
    except psutil.NoSuchProcess:
        return None


def report(console: Console, results: list, samples: list, args) -> None:
    frame = pd.DataFrame(results, columns=["kind", "seconds", "status", "error"])
    table = Table(title=f"soak: {args.clients} clients, {args.seconds:g} s, {os.cpu_count()} cores")
    for column in ("requests", "req/s", "p50 ms", "p99 ms", "5xx", "errors"):
        table.add_column(column, justify="right")
    table.add_column("kind", justify="left")
    for kind, group in [*frame.groupby("kind", sort=False), ("all", frame)]:
        ms = group["seconds"].to_numpy() * 1000
        table.add_row(
            f"{len(group):,}",
            f"{len(group) / args.seconds:,.0f}",
            f"{np.percentile(ms, 50):.1f}",
            f"{np.percentile(ms, 99):.1f}",
            str(int((group["status"] >= 500).sum())),
            str(int(group["error"].notna().sum())),
            kind,
        )
    console.print(table)
    errors = frame["error"].dropna().value_counts()
    if len(errors):
        console.print("errors: " + ", ".join(f"{name} x{count}" for name, count in errors.items()))
    pids = sorted(samples[0][1])
    memory = Table(title="resident memory (MB) of each server process over the run")
    memory.add_column("s", justify="right")
    for pid in pids:
        memory.add_column(f"pid {pid}", justify="right")
    for at, rss in samples:
        memory.add_row(
            f"{at:.0f}", *(f"{rss[pid]:.0f}" if rss.get(pid) is not None else "gone" for pid in pids)
        )
    console.print(memory)
    first, last = samples[0][1], samples[-1][1]
    growth = {pid: last[pid] - first[pid] for pid in pids if first.get(pid) and last.get(pid)}
    console.print(
        "memory growth first -> last sample: "
        + ", ".join(f"pid {pid} {mb:+.0f} MB" for pid, mb in growth.items())
    )


if __name__ == "__main__":
    main()
