"""The Spark engine: a Spark session, a shop's tables on it, and Parquet datasets written by it.

The feature and label definitions are Ibis expressions (`features.pipeline`, `features.labels`);
on Spark they run unchanged through Ibis' PySpark backend. What this module adds is what differs:

- `connect(master, conf)`: a Spark session (UTC, Arrow transfers, Spark's console progress bar
  off: the CLI shows its own) wrapped as an Ibis backend. `master` is `local[*]` (every core of
  this machine; the driver then gets half the memory, as DuckDB does) or a cluster URL; `conf` is
  any Spark setting and wins over these defaults.
- `load_shop(backend, ...)`: the shop's files read by Spark, so they can be a directory, a glob or
  an object-store URI (s3a://..., configured through Spark's own settings), mapped and typed onto
  the data contract (`features.schema`) as the default engine's loader (`features.contract`) does:
  the same column resolution and mapping errors, the same rules for a missing order_id (a
  customer-day is an order) and amount (every order is worth 1). It checks what would make
  features wrong (a value that is not a timestamp, number or date; an amount that is not finite or
  above `MAX_ABS_AMOUNT`; a date in the future or before 1900; a customers table with an id twice)
  and drops rows without a customer id. The warnings of `clv validate` (duplicates, extreme orders)
  are the default engine's: run it on a sample. Timestamps must be ISO 8601 text or typed columns: a
  `--timestamp-format` is DuckDB's strptime syntax and is refused here.
- `write_dataset(expr, path)`: a Parquet dataset (a directory of part files, Spark's layout),
  replacing `path` only when complete.

Needs the `spark` extra and a Java runtime (`make spark` installs both).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from features.contract import (
    EARLIEST,
    ISO_TIMESTAMP,
    MAX_ABS_AMOUNT,
    PLAIN_NUMBER,
    VALUE_FIXES,
    VALUE_NAMES,
    ContractError,
    TableSummary,
    ValidationReport,
    check_mapping_targets,
    dates_out_of_range,
    latest_allowed,
    refuse_float_ids,
    resolve_columns,
    warn_padded_ids,
)
from features.engine import Progress, default_memory_limit, reporting
from features.files import atomic_dataset
from features.schema import CUSTOMERS, EVENTS, TRANSACTIONS, TableSchema

INSTALL = "Fix: `make spark` installs pyspark and a Java runtime (or `pip install '.[spark]'` and a JRE 17+)."
LOG_CONFIG = Path(__file__).with_name("spark-log4j2.properties")
# Spark settings every session gets (a user's [engine] spark_conf overrides them).
DEFAULT_CONF = {
    "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOG_CONFIG}",
    "spark.sql.session.timeZone": "UTC",
    # Spark has no nanosecond timestamps and refuses Parquet files holding them (pandas writes them by
    # default); read as integers, they are converted by `_coerce` (see `_nanosecond_columns`).
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
}


class EngineUnavailable(RuntimeError):
    """Spark cannot run here (pyspark or Java missing, or the master unreachable); says how to fix it."""


def connect(master: str = "local[*]", conf: dict[str, str] | None = None):
    """A Spark session on `master` with `DEFAULT_CONF` and `conf`, as an Ibis PySpark backend.

    Raises EngineUnavailable when pyspark is not installed or the session cannot start.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineUnavailable(
            f"the Spark engine needs pyspark, which is not installed. {INSTALL}"
        ) from None
    # Executors of a local master run this interpreter, which has the project and its models.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings = dict(DEFAULT_CONF)
    # Under spark-submit (which starts this Python with the gateway's port) the JVM is running: its
    # --master and --conf decide, and [engine] master is not applied.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    if master.startswith("local") and not submitted:
        # A local Spark listens on loopback only (by default it binds the machine's public address), and
        # everything runs in the driver, whose heap is 1g unless told: give it DuckDB's share of memory.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        settings["spark.driver.memory"] = default_memory_limit().replace("GB", "g")
    builder = (
        SparkSession.builder.appName("clv")
        if submitted
        else SparkSession.builder.master(master).appName("clv")
    )
    for key, value in {**settings, **(conf or {})}.items():
        builder = builder.config(key, value)
    # PySpark replaces the SIGINT handler with one that cancels jobs and then waits on the JVM, which
    # can wait forever; the caller's handler (the CLI's: `abort`, then unwind) stays in place.
    interrupt = signal.getsignal(signal.SIGINT)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - py4j and pyspark raise several kinds
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise EngineUnavailable(
            f"Spark could not start on master {master!r} ({first}). Fix: check that the master is right and "
            "reachable ([engine] master in clv.toml, or CLV_ENGINE__MASTER) and that a Java runtime 17+ is "
            f"installed (`java -version`). {INSTALL.removeprefix('Fix: ')}"
        ) from None
    finally:
        if interrupt is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, interrupt)
    session.sparkContext.setLogLevel("ERROR")
    return ibis.pyspark.connect(session)


def abort() -> None:
    """End this process's Spark JVM at once, for a stop signal: a thread blocked on a result from the JVM
    (collecting a table, writing one) then fails instead of waiting forever, and the command unwinds.
    Nothing to do when no Spark session was started."""
    if "pyspark" not in sys.modules:
        return
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None:
        return
    # py4j reports the broken connection of every call still in flight, as tracebacks on the root logger,
    # and PySpark warns before it gives up; the command is stopping, and says so itself.
    warnings.simplefilter("ignore")
    logging.getLogger().setLevel(logging.CRITICAL)
    logging.getLogger("py4j").setLevel(logging.CRITICAL)
    gateway.proc.kill()
    gateway.proc.wait(timeout=30)


@dataclass
class SparkShop:
    """The canonical tables as temporary views of a Spark backend (`names`: table -> view, unique per load)."""

    backend: object
    report: ValidationReport
    has_events: bool
    has_customers: bool
    names: dict[str, str] = field(default_factory=dict)

    def tables(self) -> dict[str, ir.Table | None]:
        return {
            name: self.backend.table(self.names[name]) if name in self.names else None
            for name in ("transactions", "events", "customers")
        }


def load_shop(
    backend,
    transactions: str,
    events: str | None = None,
    customers: str | None = None,
    mapping: dict[str, str] | None = None,
    timestamp_format: str | None = None,
) -> SparkShop:
    """Read the shop's files with Spark onto the data contract; raise ContractError on any error."""
    report = ValidationReport()
    mapping = dict(mapping or {})
    check_mapping_targets(mapping, report)
    if timestamp_format:
        report.error(
            "transactions",
            "timestamp",
            "a timestamp format (--timestamp-format, or [data] timestamp_format) is read by the default engine "
            "(DuckDB's strptime) only. Fix: on Spark, give timestamps as ISO 8601 text (2020-12-31 14:05:00) "
            "or as typed columns (Parquet), or use the default engine (--engine duckdb).",
        )
    names: dict[str, str] = {}
    suffix = uuid.uuid4().hex[:8]
    for schema, path in ((TRANSACTIONS, transactions), (EVENTS, events), (CUSTOMERS, customers)):
        if path is None or not report.ok:
            continue
        table = _load_table(backend, schema, str(path), mapping, report)
        if table is not None:
            names[schema.name] = f"clv_{schema.name}_{suffix}"
            backend.create_view(names[schema.name], table, overwrite=True)
    if not report.ok:
        raise ContractError(report)
    shop = SparkShop(backend, report, "events" in names, "customers" in names, names)
    if "transactions" in names:
        _summarise(shop.tables()["transactions"], report)
    return shop


def _load_table(
    backend, schema: TableSchema, path: str, mapping: dict[str, str], report: ValidationReport
) -> ir.Table | None:
    summary = report.tables[schema.name] = TableSummary(schema.name, path)
    raw = _read(backend, schema.name, path, report)
    if raw is None:
        return None
    columns = resolve_columns(schema, path, list(raw.columns), mapping, report)
    if columns is None:
        return None
    id_type = raw[columns["customer_id"]].type()
    if id_type.is_floating():
        refuse_float_ids(report, schema.name, path, columns["customer_id"], str(id_type))
        return None
    nanos = _nanosecond_columns(path)
    typed = {
        name: _coerce(raw[columns[name]], kind, columns[name] in nanos)
        for name, kind in schema.columns.items()
        if name in columns
    }
    raw_id = raw[columns["customer_id"]].cast("string")
    checks = {
        "rows": raw.count(),
        "no_id": typed["customer_id"].isnull().sum(),
        "padded_ids": (typed["customer_id"] != raw_id).sum(),
    }
    latest = latest_allowed()
    for name, kind in schema.columns.items():
        if name in columns and kind != "string":
            checks[f"bad_{name}"] = (_text(raw[columns[name]]).notnull() & typed[name].isnull()).sum()
            checks[f"empty_{name}"] = typed[name].isnull().sum()
        if name in columns and kind in ("timestamp", "date"):
            stamp = typed[name].cast("timestamp")
            checks[f"out_of_range_{name}"] = (stamp.notnull() & ((stamp < EARLIEST) | (stamp > latest))).sum()
    if schema is TRANSACTIONS and "amount" in columns:
        amount = typed["amount"]
        checks["huge_amount"] = (amount.notnull() & (amount.isnan() | (amount.abs() > MAX_ABS_AMOUNT))).sum()
    if schema is CUSTOMERS:
        checks["repeated_ids"] = typed["customer_id"].count() - typed["customer_id"].nunique()
    counts = {k: int(v or 0) for k, v in raw.aggregate(**checks).to_pyarrow().to_pylist()[0].items()}
    summary.rows = counts["rows"]
    if counts["rows"] == 0:
        report.error(schema.name, None, f"{path}: no rows. Fix: export the data again.")
        return None
    if counts["no_id"] == counts["rows"]:
        report.error(
            schema.name,
            "customer_id",
            f"{path}: column {columns['customer_id']!r} (customer_id) is empty in every row. "
            "Fix: point the customer_id mapping at the column that identifies customers.",
        )
        return None
    ok = True
    for name, kind in schema.columns.items():
        if name not in columns or kind == "string":
            continue
        label = f"column {columns[name]!r}" + (f" ({name})" if columns[name] != name else "")
        if bad := counts[f"bad_{name}"]:
            example = _example(raw, _text(raw[columns[name]]).notnull() & typed[name].isnull(), columns[name])
            report.error(
                schema.name,
                name,
                f"{path}: {label} has {bad:,} {'value' if bad == 1 else 'values'} that "
                f"{'is' if bad == 1 else 'are'} not {VALUE_NAMES[kind]}, e.g. {example!r}. Fix: {_FIXES[kind]}"
                + (_NANOSECONDS_FIX if kind == "timestamp" and _read_kind(path) == "parquet" else "")
                + ".",
                bad,
            )
            ok = False
        if out := counts.get(f"out_of_range_{name}"):
            report.error(schema.name, name, dates_out_of_range(path, label, out, latest), out)
            ok = False
        required = name in schema.required or (schema is TRANSACTIONS and name == "amount")
        empty = counts[f"empty_{name}"] - counts[f"bad_{name}"]
        if required and empty:
            report.error(
                schema.name,
                name,
                f"{path}: {label} is empty in {empty:,} rows. Fix: every row needs {VALUE_NAMES[kind]}; remove or "
                "complete those rows.",
                empty,
            )
            ok = False
    if counts.get("huge_amount"):
        report.error(
            "transactions",
            "amount",
            f"{path}: column amount has {counts['huge_amount']:,} values that are not a finite amount of money "
            f"below {MAX_ABS_AMOUNT:.0e} in size. Fix: check that the column holds order values in currency "
            "units (not ids, not cents of a huge unit), and remove the broken rows.",
            counts["huge_amount"],
        )
        ok = False
    if counts.get("repeated_ids"):
        report.error(
            "customers",
            "customer_id",
            f"{path}: {counts['repeated_ids']:,} "
            + ("customer id appears" if counts["repeated_ids"] == 1 else "customer ids appear")
            + " more than once. Fix: one row per customer "
            "(Spark reads rows in no fixed order, so it cannot keep 'the first').",
            counts["repeated_ids"],
        )
        ok = False
    if not ok:
        return None
    if counts["no_id"]:
        summary.dropped_rows = counts["no_id"]
        report.warn(
            schema.name,
            "customer_id",
            f"{path}: {counts['no_id']:,} "
            + ("row without a customer id was" if counts["no_id"] == 1 else "rows without a customer id were")
            + " dropped",
            counts["no_id"],
        )
    warn_padded_ids(report, schema.name, path, counts["padded_ids"])
    table = raw.select(**typed).filter(lambda t: t.customer_id.notnull())
    if schema is TRANSACTIONS:
        table = _complete_transactions(table, report, path)
    return table


def _complete_transactions(table: ir.Table, report: ValidationReport, path: str) -> ir.Table:
    """order_id and amount when the log has none, by the contract's rules (README, Data contract)."""
    # Without an order id, no column or an empty cell, a customer-day is one order.
    day_order = table.customer_id + "|" + table.timestamp.date().strftime("%Y-%m-%d")
    given = table.order_id if "order_id" in table.columns else ibis.null("string")
    table = table.mutate(order_id=given.fill_null(day_order))
    if "amount" not in table.columns:
        # Without amounts every order is worth 1, shared among its lines.
        lines = ibis.window(group_by=[table.customer_id, table.order_id])
        table = table.mutate(amount=ibis.literal(1.0) / table.count().over(lines).cast("float64"))
        report.has_amount = False
        report.warn(
            "transactions",
            "amount",
            f"{path}: no amount column, so every order counts as 1 and predicted values are numbers of "
            "orders. To predict revenue, add the order value (or map it: --map amount=YOUR_COLUMN).",
        )
    return table


# The contract's fixes, without the timestamp format the Spark engine does not read.
_FIXES = {
    **VALUE_FIXES,
    "timestamp": "use ISO 8601 (2020-12-31 or 2020-12-31T14:05:00+01:00) or a timestamp column",
    "date": "use ISO 8601 dates (2020-12-31) or a date column",
}


def location(path: str | Path) -> str:
    """A local path made absolute: Spark resolves relative paths against the JVM's working directory,
    which is not this process's after a chdir. URIs (s3a://, hdfs://, file:) are left as they are."""
    return str(path) if ":" in str(path) else str(Path(path).absolute())


# Integer timestamps in a Parquet file Spark reads elsewhere than on local disk may be nanoseconds.
_NANOSECONDS_FIX = (
    " (a Parquet file outside this machine with nanosecond timestamps is read as integers: write it with "
    "microseconds, e.g. pandas' to_parquet(..., coerce_timestamps='us', allow_truncated_timestamps=True))"
)


def _read_kind(path: str) -> str:
    return "csv" if Path(path.rstrip("/")).suffix.lower() in (".csv", ".tsv", ".txt") else "parquet"


def _read(backend, table: str, path: str, report: ValidationReport) -> ir.Table | None:
    path = location(path)
    kind = _read_kind(path)
    try:
        if kind == "csv":
            # Text throughout, so that type problems are reported by the checks, not by the reader.
            sep = "\t" if path.lower().endswith(".tsv") else ","
            return backend.read_csv(path, header=True, inferSchema=False, sep=sep)
        return backend.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - Spark's AnalysisException and py4j errors
        first = str(exc).strip().splitlines()[0][:300]
        report.error(
            table,
            None,
            f"{path}: Spark cannot read it as {kind.upper()} ({first}). Fix: check the path (or [data] in "
            "clv.toml); Spark reads a file, a directory of part files, a glob or an object-store URI.",
        )
        return None


def _text(column: ir.Value) -> ir.StringValue:
    """The column as trimmed text, null when empty (what counts as 'a value was given')."""
    text = column.cast("string").strip()
    return ibis.ifelse(text == "", ibis.null("string"), text)


def _parsed(column: ir.Value, pattern: str, kind: str) -> ir.Value:
    """The column's text read as `kind` where it matches `pattern` (what the default engine reads too), else
    null."""
    text = _text(column)
    if kind == "timestamp":
        # Spark reads a zone only after the seconds: 10:00+01:00 and 10:00Z were null here, a time on DuckDB.
        text = text.re_replace(r"^([0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2})([Z+-])", "$1:00$2")
    return ibis.ifelse(text.re_search(f"^(?:{pattern})$"), text.try_cast(kind), ibis.null(kind))


def _coerce(column: ir.Value, kind: str, nanoseconds: bool = False) -> ir.Value:
    """The column in the contract's type, null where a value cannot be read as one. `nanoseconds`: an
    integer column that holds nanosecond timestamps (`_nanosecond_columns`)."""
    if nanoseconds and column.type().is_integer():
        # Seconds as a double keep the microseconds (Ibis' PySpark backend converts whole seconds only).
        column = (column / 1e9).cast("timestamp")
    if kind == "string":
        return _text(column)
    if kind == "float64":
        # A float32 goes through its text, as on DuckDB: cast straight to a double, 36.57 became 36.569999695.
        typed = column if isinstance(column.type(), dt.Float64) else _parsed(column, PLAIN_NUMBER, "float64")
        return typed.cast("float64")
    if kind == "timestamp":
        return column if column.type().is_timestamp() else _parsed(column, ISO_TIMESTAMP, "timestamp")
    if kind == "date":
        return column if column.type().is_date() else _parsed(column, ISO_TIMESTAMP, "timestamp").date()
    raise ValueError(f"unknown contract type {kind}")


def _nanosecond_columns(path: str) -> set[str]:
    """Columns of a local Parquet file or directory stored as nanosecond timestamps (read from its footer),
    which Spark reads as integers. Elsewhere (a URI, a glob) such a column is refused like any integer
    column, with the fix (`_FIXES`)."""
    if ":" in path or not Path(path).exists() or Path(path).suffix.lower() in (".csv", ".tsv", ".txt"):
        return set()
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        schema = ds.dataset(path, format="parquet").schema
    except (OSError, pa.ArrowException):
        return set()
    return {f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"}


def _example(raw: ir.Table, condition: ir.BooleanValue, column: str) -> str:
    rows = raw.filter(condition).select(value=raw[column].cast("string")).limit(1).to_pyarrow()
    return rows["value"][0].as_py() if rows.num_rows else ""


def _summarise(transactions: ir.Table, report: ValidationReport) -> None:
    t = transactions
    row = (
        t.aggregate(
            customers=t.customer_id.nunique(),
            first=t.timestamp.min(),
            last=t.timestamp.max(),
            revenue=t.amount.sum(),
            gross=t.amount.sum(where=t.amount > 0),
            refunds=-t.amount.sum(where=t.amount < 0),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    report.customers = int(row["customers"])
    # An order is a customer's order id, as the features and the default engine count it.
    report.orders = int(t.select("customer_id", "order_id").distinct().count().execute())
    report.first_timestamp, report.last_timestamp = row["first"], row["last"]
    report.revenue, report.gross_revenue, report.refunds = (
        float(row[k] or 0.0) for k in ("revenue", "gross", "refunds")
    )


def to_frame(expr: ir.Table):
    """The Spark DataFrame of an Ibis expression bound to a Spark backend (lazy, like the expression)."""
    backend = expr.get_backend()
    return backend._session.sql(backend.compile(expr))


def write_dataset(expr: ir.Table, path: str | Path, progress: Progress | None = None) -> int:
    """Write an Ibis expression's result as a Parquet dataset at `path` (`write_frame`); return its rows.
    `progress` hears the running stages' task counts (`features.engine.reporting`)."""
    with reporting(expr, progress):
        return write_frame(to_frame(expr), path)


def write_frame(frame, path: str | Path) -> int:
    """Write a Spark DataFrame as a Parquet dataset (a directory of part files) at `path`; return its rows.

    A local `path` is replaced only when the new dataset is complete (`features.files.atomic_dataset`).
    A URI (s3a://, hdfs://) is overwritten by Spark (`mode("overwrite")`): the old dataset is removed
    when the job starts, and the new one is complete only when `_SUCCESS` is there.
    """
    path = location(path)
    if ":" in path:
        frame.write.mode("overwrite").parquet(path)
    else:
        with atomic_dataset(path) as tmp:
            frame.write.parquet(str(tmp))
    return int(frame.sparkSession.read.parquet(path).count())


def stop(backend) -> None:
    """Stop the Spark session and end its JVM (PySpark alone keeps the JVM until Python exits); a later
    `connect` starts a new one."""
    from pyspark import SparkContext

    backend._session.stop()
    gateway = SparkContext._gateway
    if gateway is not None:
        gateway.shutdown()
        gateway.proc.stdin.close()  # the JVM launched by PySpark exits when its stdin closes
        gateway.proc.wait(timeout=60)
        SparkContext._gateway = SparkContext._jvm = None
