"""Benchmark: the feature table on Spark against DuckDB, to see where one machine stops being enough.

    .venv/bin/python benchmarks/spark.py [--sizes 1e6,1e7] [--repeats 3] [--data-dir DIR] [--master local[2]]

For each size the synthetic shop of `benchmarks/features.py` (`generate_shop`: transactions, a
customers table and ~1 event per transaction row, as Parquet) is generated once. Each engine then
runs `--repeats` times, each time in a fresh subprocess, and does what `clv features` does: load the
shop with the engine's own loader (`features.contract.load_shop` for DuckDB, `features.spark.load_shop`
for Spark: mapping, typing and checks onto the data contract, customers and events included) and
write the full feature table at `AS_OF` (`features.pipeline.write_features`) to a temporary Parquet
path. The table shows medians of:

- start s: imports and the engine's connection (for Spark, starting the session and its JVM);
- wall s: load + features + write (for Spark the write includes reading the row count back);
- x duckdb: wall time relative to DuckDB at the same size in the same run; rows/s: transaction rows
  per wall second;
- python MB / JVM MB: peak RSS (`benchmarks/peak_memory.py`, VmHWM) of the Python process and of the
  processes it started (Spark's JVM, read just before the session stops), and their sum.

DuckDB gets as many threads as Spark gets cores (local[N]: N; local[*] or a cluster: this machine's
usable cores), so neither engine has more CPUs. Memory is each engine's default (DuckDB: half the
RAM, `features.engine`; Spark: `features.spark.DEFAULT_CONF`, so the driver's heap is Spark's 1g unless
spark-defaults.conf says otherwise). Both outputs must hold the same customers, or the run fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.peak_memory import peak_rss_mb  # noqa: E402

ENGINES = ("duckdb", "spark")


def spark_cores(master: str) -> int:
    """Cores a local master runs tasks on (local: 1, local[N]: N, local[*] or a cluster: this machine's)."""
    from features.engine import available_cores

    match = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    if match is None or match.group(1) == "*":
        return available_cores()
    return int(match.group(1) or 1)


def run_engine(engine: str, data_dir: Path, out: Path, master: str, threads: int) -> dict:
    """Load the shop and write the feature table on `engine` in this process; return times and memory."""
    started = time.perf_counter()
    import psutil

    from benchmarks.features import AS_OF
    from features import contract
    from features.pipeline import write_features

    paths = {name: str(data_dir / f"{name}.parquet") for name in ("transactions", "events", "customers")}
    backend = None
    try:
        if engine == "spark":
            from features import spark

            backend = spark.connect(master)
            ready = time.perf_counter()
            tables = spark.load_shop(backend, **paths).tables()
        else:
            ready = time.perf_counter()
            shop = contract.load_shop(**paths, threads=threads)
            tables = shop.tables()
            assert shop.con.execute("SELECT current_setting('threads')").fetchall()[0][0] == threads
        write_features(out, AS_OF, **tables)
        seconds = time.perf_counter() - ready
        jvm = sum(peak_rss_mb(child.pid) or 0.0 for child in psutil.Process().children(recursive=True))
        return {"start": ready - started, "seconds": seconds, "python_mb": peak_rss_mb(), "jvm_mb": jvm}
    finally:
        children = psutil.Process().children(recursive=True)
        if backend is not None:
            with contextlib.suppress(Exception):
                spark.stop(backend)
        # stop() ends the session, not the JVM PySpark launched (it lives as long as this process).
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.terminate()
        for child in psutil.wait_procs(children, timeout=15)[1]:
            with contextlib.suppress(psutil.Error):
                child.kill()


def measure(engine: str, data_dir: Path, out: Path, args: argparse.Namespace, threads: int) -> dict:
    runs = []
    for _ in range(args.repeats):
        cmd = [sys.executable, __file__, "--run", engine, "--data-dir", str(data_dir), "--out", str(out)]
        cmd += ["--master", args.master, "--threads", str(threads)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{engine} failed:\n{result.stderr[-5000:]}")
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]} | {
        "runs": [r["seconds"] for r in runs]
    }


def read_outputs(outputs: dict[str, Path]) -> dict:
    """Row counts of each engine's output, and whether they hold the same customers."""
    import pyarrow.parquet as pq

    ids = {engine: pq.read_table(path, columns=["customer_id"])[0] for engine, path in outputs.items()}
    customers = [set(column.to_pylist()) for column in ids.values()]
    return {"rows": {e: len(c) for e, c in ids.items()}, "same": all(c == customers[0] for c in customers)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="1e6,1e7", help="transaction rows, comma separated (default 1e6,1e7)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "clv-bench")
    parser.add_argument("--master", default="local[*]", help="Spark master (default local[*])")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run:  # one measured engine, in a fresh process
        print(json.dumps(run_engine(args.run, args.data_dir, args.out, args.master, args.threads)))
        return

    import pyarrow.parquet as pq

    from benchmarks.features import generate_shop

    threads = spark_cores(args.master)
    results, checks = [], {}
    for size in (int(float(s)) for s in args.sizes.split(",")):
        data_dir = args.data_dir / f"{size}"
        if not (data_dir / "events.parquet").exists():
            started = time.perf_counter()
            generate_shop(size, data_dir)
            print(f"generated {size:,} rows in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        rows = pq.read_metadata(data_dir / "transactions.parquet").num_rows
        with tempfile.TemporaryDirectory(prefix="clv-spark-bench-") as tmp:
            outputs = {engine: Path(tmp) / f"{engine}.parquet" for engine in ENGINES}
            measured = {}
            for engine in ENGINES:
                measured[engine] = measure(engine, data_dir, outputs[engine], args, threads)
                print(f"{rows:,} rows  {engine:<6} {measured[engine]}", file=sys.stderr)
            checks[rows] = read_outputs(outputs)
        for engine, m in measured.items():
            results.append((rows, engine, m, m["seconds"] / measured["duckdb"]["seconds"]))
    render(results, args, threads)
    # Both engines must have written the same customers, or the comparison means nothing.
    for rows, check in checks.items():
        counts = "  ".join(f"{engine} {n:,}" for engine, n in check["rows"].items())
        print(f"{rows:,} transaction rows -> feature table rows: {counts}")
        assert len(set(check["rows"].values())) == 1, f"{rows:,} rows: different row counts {check['rows']}"
        assert check["same"], f"{rows:,} rows: the same row count but different customers"


def render(results: list, args: argparse.Namespace, threads: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Feature table: DuckDB ({threads} threads) vs Spark ({args.master}, {threads} cores), "
        f"median of {args.repeats} fresh-process runs"
    )
    columns = ("rows", "engine", "start s", "wall s", "x duckdb", "rows/s", "python MB", "JVM MB", "total MB")
    for name in (*columns, "runs (s)"):
        table.add_column(name, justify="left" if name == "engine" else "right")
    for rows, engine, m, ratio in results:
        table.add_row(
            f"{rows:,}",
            engine,
            f"{m['start']:.2f}",
            f"{m['seconds']:.2f}",
            f"{ratio:.2f}x",
            f"{rows / m['seconds']:,.0f}",
            f"{m['python_mb']:,.0f}",
            f"{m['jvm_mb']:,.0f}" if m["jvm_mb"] else "-",
            f"{m['python_mb'] + m['jvm_mb']:,.0f}",
            " ".join(f"{r:.2f}" for r in m["runs"]),
        )
    Console(width=140).print(table)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
