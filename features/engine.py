"""Where feature queries run: DuckDB's settings, execution to Arrow/pandas, atomic Parquet output.

Feature definitions (`features.orders`, `features.rfm`, ...) are Ibis expressions and know nothing
about the engine. This module knows DuckDB, the default backend (`features.contract` loads a shop into
it); the same expressions run on Spark through Ibis' PySpark backend (`features.spark` starts the
session and loads the shop there), and results, progress and Parquet output work the same on both.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import ibis
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from features.files import atomic_path

Progress = Callable[[str], None]

# Share of physical memory DuckDB may use before it spills to disk.
MEMORY_SHARE = 0.5


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_memory_limit() -> str:
    """`MEMORY_SHARE` of physical memory, in DuckDB's syntax (e.g. '11GB')."""
    return f"{max(1, int(psutil.virtual_memory().total * MEMORY_SHARE / 2**30))}GB"


def configure(
    con: duckdb.DuckDBPyConnection, threads: int | None = None, memory_limit: str | None = None
) -> None:
    """Set threads (default: the usable cores), a memory limit and UTC on a DuckDB connection."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET threads = {int(threads or available_cores())}")
    con.execute(f"SET memory_limit = '{memory_limit or default_memory_limit()}'")
    # Row order of results is not part of any contract here; letting DuckDB drop it saves memory.
    con.execute("SET preserve_insertion_order = false")
    # Progress is read with `query_progress()` and shown by the caller (Rich), never printed by DuckDB.
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    con.execute("SET progress_bar_time = 0")


def from_duckdb(con: duckdb.DuckDBPyConnection, threads: int | None = None, memory_limit: str | None = None):
    """Wrap an existing DuckDB connection (e.g. `features.contract.Shop.con`) as an Ibis backend."""
    configure(con, threads, memory_limit)
    return ibis.duckdb.from_connection(con)


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """The one Arrow -> pandas conversion, so that batch and request paths give identical dtypes.

    Integers without nulls stay int64, numeric columns with nulls are float64 (NaN), dates become
    datetime64[s] (as Ibis' own `to_pandas` gives them), strings use pandas' default string dtype.
    """
    frame = table.to_pandas(date_as_object=False)
    for field in table.schema:
        if pa.types.is_date(field.type):
            frame[field.name] = frame[field.name].astype("datetime64[s]")
    return frame


def to_arrow(expr: ibis.Table, progress: Progress | None = None) -> pa.Table:
    """Execute an expression to an Arrow table whose types follow the expression's schema."""
    with reporting(expr, progress):
        result = expr.to_pyarrow()
    return result.cast(expr.schema().to_pyarrow())


def to_pandas(expr: ibis.Table, progress: Progress | None = None) -> pd.DataFrame:
    """Execute an expression to a pandas DataFrame (through `to_arrow` and `arrow_to_pandas`)."""
    return arrow_to_pandas(to_arrow(expr, progress))


def write_parquet(expr: ibis.Table, path: Path | str, progress: Progress | None = None) -> int:
    """Write the expression's result to `path` atomically and return the number of rows.

    The engine streams the result to a temporary file next to `path`, which replaces `path` only
    when complete (`features.files.atomic_path`), so a failure never leaves a half-written file.
    (On Spark, `features.spark.write_dataset` writes a dataset of part files.)
    """
    with atomic_path(path) as tmp, reporting(expr, progress):
        expr.to_parquet(tmp)
        return pq.read_metadata(tmp).num_rows


@contextlib.contextmanager
def reporting(expr: ibis.Table, progress: Progress | None, interval: float = 0.25) -> Iterator[None]:
    """Report the engine's progress (DuckDB: percent of the query; Spark: tasks of the running stages)
    to `progress` while the block runs."""
    poll_once = _progress_reader(expr) if progress else None
    if poll_once is None:
        yield
        return
    done = threading.Event()

    def poll() -> None:
        while not done.wait(interval):
            with contextlib.suppress(Exception):
                if message := poll_once():
                    progress(message)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def backend_name(expr: ibis.Table) -> str | None:
    try:
        return expr.get_backend().name
    except Exception:  # unbound expression
        return None


def _progress_reader(expr: ibis.Table) -> Callable[[], str | None] | None:
    """A function that reads the engine's progress now, as a short message (None: nothing to say)."""
    name = backend_name(expr)
    if name == "duckdb":
        con = expr.get_backend().con

        def duckdb_progress() -> str | None:
            percent = con.query_progress()
            return f"{percent:.0f}%" if percent >= 0 else None

        return duckdb_progress
    if name == "pyspark":
        tracker = expr.get_backend()._session.sparkContext.statusTracker()

        def spark_progress() -> str | None:
            stages = [tracker.getStageInfo(i) for i in tracker.getActiveStageIds()]
            stages = [s for s in stages if s is not None]
            if not stages:
                return None
            done, total = sum(s.numCompletedTasks for s in stages), sum(s.numTasks for s in stages)
            return f"Spark stage {max(s.stageId for s in stages)}: {done}/{total} tasks"

        return spark_progress
    return None
