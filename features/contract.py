"""Loading a shop's files onto the data contract, with errors a person can act on.

`load_shop` reads transactions (required), events and customers (optional) from CSV or Parquet,
applies the user's column mapping, coerces types, and materialises canonical tables
(`features.schema`) in a DuckDB connection. Problems are collected into a `ValidationReport`:
errors (the data cannot be used) name the file, the column, an example row and the fix;
warnings (the data can be used, but look) are counted.

Row numbers in messages are 1-based data rows; for CSV the file line is the row number + 1 (header).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
import ibis

from features.engine import from_duckdb, to_pandas
from features.fence import spend_fence
from features.orders import AMOUNT_TOLERANCE
from features.rfm import build_rfm
from features.schema import CUSTOMERS, EVENT_TYPES, EVENTS, TRANSACTIONS, TableSchema

SUPPORTED_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
_ROW = "__clv_row"
# No order is worth this much in any currency; a larger amount is a broken column or unit.
MAX_ABS_AMOUNT = 1e12
# Dates a shop's log can hold: from 1900 to today, with a day of slack because clocks and time zones differ
# (a purchase made "today" somewhere is valid). Files and HTTP requests alike (serving.bodies): a single
# row dated 2205 once moved the default cut-off two centuries ahead and trained a model on it.
EARLIEST = dt.datetime(1900, 1, 1)
FUTURE_SLACK = dt.timedelta(days=1)
# Fewer customers than this give rough estimates; the boosted models are then rarely used.
FEW_CUSTOMERS = 50
# Fewer customers who bought on two different days than this cannot fit Gamma-Gamma's spend model
# (models.order_value falls back to each buyer's own mean order value); `validate` warns about it.
FEW_REPEAT_BUYERS = 20
# A refund worth more than this many times the shop's median order in size is reported (often a data
# error: a price in cents, an order id in the amount column), and so is an order when the shop has no
# outlier fence (`features.fence`; above the fence, orders are reported as the models cap them).
EXTREME_ORDER_FACTOR = 1000


def _valid_format(con: duckdb.DuckDBPyConnection, timestamp_format: str) -> bool:
    try:
        con.execute("SELECT try_strptime('2000-01-01', ?)", [timestamp_format]).fetchall()
    except duckdb.Error:
        return False
    return True


class ContractError(ValueError):
    """Input that breaks the data contract. The message says what is wrong and how to fix it."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__("\n".join(issue.message for issue in report.errors))


@dataclass(frozen=True)
class Issue:
    level: Literal["error", "warning"]
    table: str
    column: str | None
    message: str
    count: int = 1


@dataclass
class TableSummary:
    name: str
    path: Path
    rows: int | None = None  # None: the file could not be read (a missing file or column; the errors say why)
    dropped_rows: int = 0


@dataclass
class ValidationReport:
    """What was loaded and what is wrong with it; `ok` is False when any error was found."""

    tables: dict[str, TableSummary] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    customers: int = 0
    orders: int = 0
    first_timestamp: dt.datetime | None = None
    last_timestamp: dt.datetime | None = None
    revenue: float = 0.0
    gross_revenue: float = 0.0
    refunds: float = 0.0
    # False when the transactions have no amount column: every order is then worth 1.
    has_amount: bool = True
    # Table name -> the contract columns its file has (before order ids and amounts are filled in), so a
    # model can record the optional columns it was trained with and refuse data without them.
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def value_unit(self) -> str:
        """What values are counted in: "currency" (the shop's amounts) or "orders" (no amounts)."""
        return "currency" if self.has_amount else "orders"

    @property
    def refund_share(self) -> float:
        return self.refunds / self.gross_revenue if self.gross_revenue > 0 else 0.0

    def error(self, table: str, column: str | None, message: str, count: int = 1) -> None:
        self.issues.append(Issue("error", table, column, message, count))

    def warn(self, table: str, column: str | None, message: str, count: int = 1) -> None:
        self.issues.append(Issue("warning", table, column, message, count))


@dataclass
class Shop:
    """Canonical tables materialised in `con` (`transactions`, and `events` / `customers` when given).

    `tables()` is how every reader opens them, as `features.spark.SparkShop.tables()` on Spark.
    """

    con: duckdb.DuckDBPyConnection
    report: ValidationReport
    has_events: bool
    has_customers: bool
    # DuckDB threads for the queries on these tables; None: every usable core (`features.engine`).
    threads: int | None = None

    def tables(self) -> dict:
        """{'transactions': ibis table, 'events': table or None, 'customers': table or None}."""
        backend = from_duckdb(self.con, self.threads)
        return {
            "transactions": backend.table("transactions"),
            "events": backend.table("events") if self.has_events else None,
            "customers": backend.table("customers") if self.has_customers else None,
        }


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    """Parse `--map contract_column=shop_column` options into a dict.

    Raises ValueError naming the option when one is not CONTRACT=YOURS or names no contract column, so a
    mistyped flag is a usage error like any other (a mapping from clv.toml is checked with the data instead,
    `check_mapping_targets`)."""
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        target, sep, source = pair.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise ValueError(
                f"--map {pair!r} is not of the form CONTRACT_COLUMN=YOUR_COLUMN, e.g. customer_id=CustomerID"
            )
        if (unknown := _unknown_target(target.strip())) is not None:
            raise ValueError(f"--map {pair!r}: {unknown}")
        mapping[target.strip()] = source.strip()
    return mapping


def _unknown_target(target: str) -> str | None:
    """Why `target` cannot be mapped, or None when it is a contract column."""
    known = set(TRANSACTIONS.columns) | set(EVENTS.columns) | set(CUSTOMERS.columns)
    if target in known:
        return None
    return (
        f"column mapping names {target!r}, which is not a contract column. "
        f"Fix: map one of {', '.join(sorted(known))}."
    )


def _connect(threads: int | None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with UTC as its time zone, so offsets convert predictably."""
    con = duckdb.connect()
    con.sql("SET TimeZone = 'UTC'")
    if threads:
        con.sql(f"SET threads = {int(threads)}")
    return con


def load_shop(
    transactions: Path | str,
    events: Path | str | None = None,
    customers: Path | str | None = None,
    mapping: Mapping[str, str] | None = None,
    timestamp_format: str | None = None,
    threads: int | None = None,
    now: dt.datetime | None = None,
    raise_on_error: bool = True,
) -> Shop:
    """Load and validate the shop's files into a new in-memory DuckDB database; raise ContractError
    (unless told not to) on any error.

    `mapping` maps contract columns to the shop's columns for all three files (a column absent
    from a file is simply not used there). `threads` limits DuckDB's threads, for loading and for the
    queries on `Shop.tables()` (default: every usable core). `now` decides what counts as a future
    timestamp.
    """
    con = _connect(threads)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    report = ValidationReport()
    mapping = dict(mapping or {})
    check_mapping_targets(mapping, report)
    if timestamp_format and not _valid_format(con, timestamp_format):
        report.error(
            "transactions",
            "timestamp",
            f"--timestamp-format {timestamp_format!r} is not a strptime format DuckDB understands. "
            "Fix: use directives like %d/%m/%Y %H:%M (see https://duckdb.org/docs/sql/functions/dateformat).",
        )
        if raise_on_error:
            raise ContractError(report)
        return Shop(con, report, False, False, threads)
    loaded = {}
    for schema, path in ((TRANSACTIONS, transactions), (EVENTS, events), (CUSTOMERS, customers)):
        if path is None:
            continue
        loaded[schema.name] = _load_table(con, schema, Path(path), mapping, timestamp_format, now, report)
    if loaded.get("transactions"):
        _summarise_transactions(con, Path(transactions), report)
        _warn_on_shape(con, Path(transactions), report)
    shop = Shop(
        con,
        report,
        has_events=bool(loaded.get("events")),
        has_customers=bool(loaded.get("customers")),
        threads=threads,
    )
    if raise_on_error and not report.ok:
        raise ContractError(report)
    return shop


def warn_padded_ids(report: ValidationReport, table: str, path: Path | str, padded: int) -> None:
    """Warn of `padded` rows whose customer id had spaces (or tabs, line breaks) around it. Ids are trimmed
    so " 42" and "42" are one customer; the score table then holds "42", which a CRM keyed on " 42" would
    not find."""
    if padded:
        report.warn(
            table,
            "customer_id",
            f"{path}: {padded:,} "
            + (
                "row has a customer id with spaces around it"
                if padded == 1
                else "rows have customer ids with spaces around them"
            )
            + " (read trimmed: the score table and lists hold the ids without the spaces)",
            padded,
        )


def refuse_float_ids(
    report: ValidationReport, table: str, path: Path | str, column: str, type_name: str
) -> None:
    """Refuse a customer id column stored as floating-point numbers (a Parquet file pandas wrote from ids with a
    gap in them): its ids read 10000000.0 on DuckDB and 1.0E7 on Spark, never the 10000000 of the shop's
    other systems, and ids above 2^53 lose digits."""
    report.error(
        table,
        "customer_id",
        f"{path}: column {column!r} (customer_id) is stored as floating-point numbers ({type_name}), so an id "
        "would read 10000000.0 (or 1.0E7) instead of 10000000, and ids above 2^53 would lose digits: the score "
        "table would not match your other systems. Fix: write the column as text or whole numbers (pandas: "
        "df[column] = df[column].astype('Int64') or .astype(str) before to_parquet).",
    )


def check_mapping_targets(mapping: Mapping[str, str], report: ValidationReport) -> None:
    for target in mapping:
        if (unknown := _unknown_target(target)) is not None:
            report.error("mapping", target, unknown)


def _load_table(
    con: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    path: Path,
    mapping: Mapping[str, str],
    timestamp_format: str | None,
    now: dt.datetime,
    report: ValidationReport,
) -> bool:
    """Materialise one canonical table in `con`; False (with errors in the report) when it cannot."""
    summary = TableSummary(schema.name, path)
    report.tables[schema.name] = summary
    raw = _read_raw(con, schema.name, path, report)
    if raw is None:
        return False
    columns = resolve_columns(schema, path, raw.columns, mapping, report)
    if columns is None:
        return False
    id_type = str(dict(zip(raw.columns, raw.types, strict=True))[columns["customer_id"]])
    if id_type in ("FLOAT", "DOUBLE"):
        refuse_float_ids(report, schema.name, path, columns["customer_id"], id_type)
        return False
    raw.create_view("__clv_raw", replace=True)
    con.sql(
        f"CREATE OR REPLACE TEMP TABLE __clv_src AS SELECT *, row_number() OVER () AS {_ROW} FROM __clv_raw"
    )
    con.sql("DROP VIEW __clv_raw")
    summary.rows = con.execute("SELECT count(*) FROM __clv_src").fetchall()[0][0]
    if summary.rows == 0:
        report.error(
            schema.name, None, f"{path}: the file has a header but no rows. Fix: export the data again."
        )
        return False

    exprs = {
        name: _coerce_expr(kind, _q(columns[name]), timestamp_format)
        for name, kind in _present(schema, columns)
    }
    ok = True
    for name, kind in _present(schema, columns):
        if name == "customer_id":
            continue
        # An optional amount column, once present, needs a value in every row: sums would be wrong.
        required = name in schema.required or (schema is TRANSACTIONS and name == "amount")
        ok &= _check_parse(con, schema.name, path, name, columns[name], exprs[name], kind, required, report)
    if not ok:
        return False

    id_expr = exprs["customer_id"]
    missing_ids, padded = con.execute(
        f"SELECT count(*) FILTER (WHERE {id_expr} IS NULL), "
        f"count(*) FILTER (WHERE {id_expr} <> CAST({_q(columns['customer_id'])} AS VARCHAR)) FROM __clv_src"
    ).fetchall()[0]
    warn_padded_ids(report, schema.name, path, padded)
    if missing_ids == summary.rows:
        report.error(
            schema.name,
            "customer_id",
            f"{path}: column {columns['customer_id']!r} (customer_id) is empty in every row. "
            "Fix: point the customer_id mapping at the column that identifies customers.",
        )
        return False
    if missing_ids:
        summary.dropped_rows = missing_ids
        report.warn(
            schema.name,
            "customer_id",
            f"{path}: {missing_ids:,} "
            + ("row without a customer id was" if missing_ids == 1 else "rows without a customer id were")
            + " dropped",
            missing_ids,
        )

    select = [f"{exprs[name]} AS {name}" for name, _ in _present(schema, columns) if name != "order_id"]
    if schema is TRANSACTIONS:
        # Without an order id, no column or an empty cell, a customer-day is one order (README, Data
        # contract): a row with an empty cell once counted in no order, so a customer whose rows all
        # had one read as "no purchase".
        day_order = f"{id_expr} || '|' || strftime(({exprs['timestamp']})::DATE, '%Y-%m-%d')"
        given = f"{exprs['order_id']}, " if "order_id" in columns else ""
        select.append(f"coalesce({given}{day_order}) AS order_id")
    if schema is TRANSACTIONS and "amount" not in columns:
        # Without amounts every order is worth 1 (README, Data contract), shared among its lines.
        select.append(f"1.0 / count(*) OVER (PARTITION BY {id_expr}, order_id) AS amount")
        report.has_amount = False
        report.warn(
            schema.name,
            "amount",
            f"{path}: no amount column, so every order counts as 1 and predicted values are numbers of "
            "orders. To predict revenue, add the order value (or map it: --map amount=YOUR_COLUMN).",
        )
    # Row numbers stay while the content is checked, so warnings can point at rows.
    con.sql(
        f"CREATE OR REPLACE TABLE {schema.name} AS SELECT {', '.join(select)}, {_ROW} "
        f"FROM __clv_src WHERE {id_expr} IS NOT NULL"
    )
    con.sql("DROP TABLE __clv_src")
    ok = _check_amounts(con, path, report) if schema is TRANSACTIONS and report.has_amount else True
    ok &= _check_dates(con, schema, path, now, report)
    if ok:
        _warn_on_content(con, schema, path, report)
    con.sql(f"ALTER TABLE {schema.name} DROP COLUMN {_ROW}")
    return ok


def _read_raw(con: duckdb.DuckDBPyConnection, table: str, path: Path, report: ValidationReport):
    if not path.exists():
        report.error(
            table, None, f"{path}: no such file. Fix: check the path (or the [data] section of clv.toml)."
        )
        return None
    if path.is_dir():
        report.error(table, None, f"{path}: is a directory; expected a CSV or Parquet file.")
        return None
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        report.error(
            table,
            None,
            f"{path}: unsupported file type {path.suffix!r}. Fix: use CSV (.csv) or Parquet (.parquet).",
        )
        return None
    if path.stat().st_size == 0:
        report.error(
            table, None, f"{path}: the file is empty. Fix: export the data again, with a header row."
        )
        return None
    try:
        if kind == "csv":
            # Read everything as text so that type problems are reported by us, with the row, not by the reader.
            return con.read_csv(str(path), header=True, all_varchar=True)
        return con.read_parquet(str(path))
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0]
        cause = _line_endings(path) if kind == "csv" else None
        report.error(
            table,
            None,
            f"{path}: cannot be read as {kind.upper()} ({cause or first_line}). Fix: "
            + (
                "save it with one kind of line ending (e.g. `dos2unix`), or export it again."
                if cause
                else "check the file format."
            ),
        )
        return None


def _line_endings(path: Path, sample_bytes: int = 1 << 20) -> str | None:
    """How the lines of a CSV end, when they end in more than one way (CSV readers, DuckDB's included,
    take one kind per file); None when they all end alike."""
    with path.open("rb") as file:
        head = file.read(sample_bytes)
    windows = head.count(b"\r\n")
    kinds = {
        "\\r\\n (Windows)": windows,
        "\\n (Unix)": head.count(b"\n") - windows,
        "a lone \\r (old Mac)": head.count(b"\r") - windows,
    }
    found = [f"{n:,} end in {name}" for name, n in kinds.items() if n]
    return f"its lines end in more than one way: {', '.join(found)}" if len(found) > 1 else None


def resolve_columns(
    schema: TableSchema,
    path: Path | str,
    available: list[str],
    mapping: Mapping[str, str],
    report: ValidationReport,
) -> dict[str, str] | None:
    """Contract column -> source column for the columns this file has; None when a needed one is missing.

    Needed: the required columns, and an optional column of this table alone that the user mapped
    (mapping amount=Revenue and having no Revenue column is a mistake, not a log without amounts).
    """
    resolved: dict[str, str] = {}
    missing = False
    by_lower = {c.lower(): c for c in available}
    for name in schema.columns:
        source = mapping.get(name, name)
        required = name in schema.required
        if source in available:
            resolved[name] = source
        elif source.lower() in by_lower:
            resolved[name] = by_lower[source.lower()]
        elif required or (name in mapping and _owned_by(name, schema)):
            missing = True
            columns = ", ".join(repr(c) for c in available)
            if name not in mapping:
                problem = f"{'required ' if required else ''}column {name!r} is missing"
                fix = f"rename the column to {name!r} or --map {name}=YOUR_COLUMN"
            else:
                # Seen: `--map amount=Revenue` on a file with an `amount` column was told to rename a
                # column to 'amount', the name it already had.
                own = by_lower.get(name.lower())
                problem = f"column {source!r} is missing (mapped to {name!r} by {name}={source})"
                fix = f"name one of the file's columns in the mapping ({name}=COLUMN)" + (
                    f", or drop the mapping {name}={source} to read its {own!r} column as {name!r}"
                    if own
                    else ""
                )
            report.error(schema.name, name, f"{path}: {problem}; the file has columns {columns}. Fix: {fix}.")
    if missing:
        return None
    report.columns[schema.name] = tuple(resolved)
    if schema is CUSTOMERS and set(resolved) == set(CUSTOMERS.required):
        # Seen: a transactions log passed as --customers validated "OK", with a warning of repeated ids.
        report.warn(
            schema.name,
            None,
            f"{path}: none of the customer columns ({', '.join(CUSTOMERS.optional)}) is in this file, so it "
            f"adds nothing; its columns are {', '.join(repr(c) for c in available)}. Fix: pass the customers "
            "table as --customers (or [data] customers), or leave it out.",
        )
    return resolved


def _owned_by(name: str, schema: TableSchema) -> bool:
    """Whether a mapping of the column points at this file: the first table (transactions, events,
    customers) that declares it. `category` and `product_id` of transactions and events: a mapping
    must name a transactions column; events may lack it (they then carry no items)."""
    return next(s for s in (TRANSACTIONS, EVENTS, CUSTOMERS) if name in s.columns) is schema


def _present(schema: TableSchema, columns: Mapping[str, str]):
    return [(name, kind) for name, kind in schema.columns.items() if name in columns]


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# What is trimmed from text and ids: what Ibis's `strip()` removes on Spark (features.spark). DuckDB's trim()
# alone removes only spaces, so an id "b\t" was "b" on one engine and "b\t" on the other.
WHITESPACE = " \t\n\r\x0b\x0c"
_WHITESPACE = " || ".join(f"chr({ord(c)})" for c in WHITESPACE)


# The texts read as numbers and as dates or times (without --timestamp-format), on both engines. Each engine's
# own parser takes more, and not the same more: DuckDB read "1_000" as 1000, "epoch" as 1970-01-01 and
# "infinity" as a time after every cut-off; Spark read "12d" as 12 and "2024-06" as 2024-06-01. So the same file
# was refused on one engine and read, differently, on the other. A request to the service is read by the same
# patterns (`serving.bodies`); each is matched whole.
PLAIN_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,3})?"
ISO_TIMESTAMP = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"


def _coerce_expr(kind: str, col: str, timestamp_format: str | None) -> str:
    """SQL that turns a source column into the contract type, NULL where it cannot."""
    text = f"NULLIF(trim(CAST({col} AS VARCHAR), {_WHITESPACE}), '')"
    if kind == "string":
        return text
    if kind == "float64":
        return f"CASE WHEN regexp_full_match({text}, '{PLAIN_NUMBER}') THEN TRY_CAST({text} AS DOUBLE) END"
    if kind == "date":
        return f"TRY_CAST({_timestamp_expr(col, text, timestamp_format)} AS DATE)"
    if kind == "timestamp":
        return _timestamp_expr(col, text, timestamp_format)
    raise ValueError(f"unknown contract type {kind}")


def _timestamp_expr(col: str, text: str, timestamp_format: str | None) -> str:
    # Parquet columns may already be typed; text goes through TIMESTAMPTZ so that offsets such as
    # +02:00 are converted to UTC (a plain TIMESTAMP cast would silently drop them).
    typed = (
        f"CASE WHEN typeof({col}) IN ('TIMESTAMP WITH TIME ZONE') THEN TRY_CAST({col} AS TIMESTAMPTZ)::TIMESTAMP "
        f"WHEN typeof({col}) IN ('TIMESTAMP', 'DATE', 'TIMESTAMP_NS', 'TIMESTAMP_MS', 'TIMESTAMP_S') "
        f"THEN TRY_CAST({col} AS TIMESTAMP) "
    )
    if timestamp_format:
        fmt = timestamp_format.replace("'", "''")
        return typed + f"ELSE TRY_STRPTIME({text}, '{fmt}')::TIMESTAMP END"
    return (
        typed
        + f"WHEN regexp_full_match({text}, '{ISO_TIMESTAMP}') THEN TRY_CAST({text} AS TIMESTAMPTZ)::TIMESTAMP END"
    )


def _where(path: Path):
    """How to point at a data row: CSV files also get the line number, which editors show."""
    if SUPPORTED_SUFFIXES.get(path.suffix.lower()) == "csv":
        return lambda row: f"row {row} (line {row + 1})"
    return lambda row: f"row {row}"


# How to fix a value that is not of its contract type, and what that type is called in messages.
VALUE_FIXES = {
    "timestamp": "use ISO 8601 (2020-12-31 or 2020-12-31T14:05:00+01:00) or give the format, "
    "e.g. --timestamp-format '%d/%m/%Y %H:%M'",
    "date": "use ISO 8601 dates (2020-12-31) or give the format with --timestamp-format",
    "float64": "use plain numbers with a dot as decimal separator and no currency sign (1234.50)",
}
VALUE_NAMES = {"timestamp": "a date or time", "date": "a date", "float64": "a number"}


def _check_parse(
    con: duckdb.DuckDBPyConnection,
    table: str,
    path: Path,
    name: str,
    source: str,
    expr: str,
    kind: str,
    required: bool,
    report: ValidationReport,
) -> bool:
    """Report values that are present but cannot be read as `kind` (and missing required values)."""
    if kind == "string":
        return True
    raw = f"NULLIF(trim(CAST({_q(source)} AS VARCHAR)), '')"
    bad = con.execute(
        f"SELECT count(*), min({_ROW}) FROM __clv_src WHERE {raw} IS NOT NULL AND ({expr}) IS NULL"
    ).fetchall()[0]
    ok = True
    label = f"column {source!r}" + (f" ({name})" if source != name else "")
    where = _where(path)
    if bad[0]:
        value = con.execute(f"SELECT {raw} FROM __clv_src WHERE {_ROW} = ?", [bad[1]]).fetchall()[0][0]
        report.error(
            table,
            name,
            f"{path}: {label} has values that are not {VALUE_NAMES[kind]}: {where(bad[1])} has {value!r}"
            + (f" (and {bad[0] - 1:,} more {'row' if bad[0] == 2 else 'rows'})" if bad[0] > 1 else "")
            + f". Fix: {VALUE_FIXES[kind]}.",
            bad[0],
        )
        ok = False
    if required:
        missing = con.execute(f"SELECT count(*), min({_ROW}) FROM __clv_src WHERE {raw} IS NULL").fetchall()[
            0
        ]
        if missing[0]:
            report.error(
                table,
                name,
                f"{path}: {label} is empty in {missing[0]:,} {'row' if missing[0] == 1 else 'rows'}, "
                f"e.g. {where(missing[1])}. "
                f"Fix: every row needs {VALUE_NAMES[kind]}; remove or complete those rows.",
                missing[0],
            )
            ok = False
    return ok


def _warn_on_content(
    con: duckdb.DuckDBPyConnection, schema: TableSchema, path: Path, report: ValidationReport
) -> None:
    name = schema.name
    duplicates = con.execute(
        f"SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT * EXCLUDE ({_ROW}) FROM {name})) FROM {name}"
    ).fetchall()[0][0]
    if duplicates:
        report.warn(
            name,
            None,
            f"{path}: {duplicates:,} "
            + ("row is an exact duplicate" if duplicates == 1 else "rows are exact duplicates")
            + " of another row (kept)",
            duplicates,
        )
    if schema is TRANSACTIONS:
        negative, zero = con.execute(
            "SELECT count(*) FILTER (WHERE amount < 0), count(*) FILTER (WHERE amount = 0) FROM transactions"
        ).fetchall()[0]
        if negative:
            report.warn(
                name,
                "amount",
                f"{path}: {negative:,} "
                + ("row is a refund or return" if negative == 1 else "rows are refunds or returns")
                + " (negative amounts)",
                negative,
            )
        if zero:
            report.warn(
                name,
                "amount",
                f"{path}: {zero:,} {'row has' if zero == 1 else 'rows have'} a zero amount",
                zero,
            )
        _warn_on_extreme_orders(con, path, report)
        if negative:
            _warn_on_net_refunds(con, path, report)
    if schema is EVENTS:
        _warn_on_unknown_event_types(con, path, report)
    if schema is CUSTOMERS:
        repeated = con.execute("SELECT count(*) - count(DISTINCT customer_id) FROM customers").fetchall()[0][
            0
        ]
        if repeated:
            report.warn(
                name,
                "customer_id",
                f"{path}: {repeated:,} {'customer id appears' if repeated == 1 else 'customer ids appear'} "
                "more than once (first kept)",
                repeated,
            )
            con.sql(
                "CREATE OR REPLACE TABLE customers AS SELECT * FROM customers "
                f"QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY {_ROW}) = 1"
            )


# How many unknown event types a warning names.
SHOWN_KINDS = 5


def _warn_on_unknown_event_types(
    con: duckdb.DuckDBPyConnection, path: Path, report: ValidationReport
) -> None:
    """Warn of events of types no feature counts (`features.schema.EVENT_TYPES`): kept, and read as if absent,
    so a "click" or an "add_to_card" is silently nothing to the model, while `/predict_history` refuses it."""
    known = ", ".join(f"'{kind}'" for kind in EVENT_TYPES)
    unknown = con.execute(
        f"SELECT event_type, count(*) AS n FROM events WHERE event_type NOT IN ({known}) "
        "GROUP BY event_type ORDER BY n DESC, event_type"
    ).fetchall()
    if not unknown:
        return
    total = sum(n for _, n in unknown)
    shown = ", ".join(f"{kind!r} ({n:,})" for kind, n in unknown[:SHOWN_KINDS])
    more = f" and {len(unknown) - SHOWN_KINDS:,} more types" if len(unknown) > SHOWN_KINDS else ""
    report.warn(
        "events",
        "event_type",
        f"{path}: {total:,} {'event is' if total == 1 else 'events are'} of a type no feature counts: {shown}{more}. "
        f"Fix: rename a type that means one of {', '.join(EVENT_TYPES)} to that name; others can stay",
        total,
    )


def _check_amounts(con: duckdb.DuckDBPyConnection, path: Path, report: ValidationReport) -> bool:
    """Amounts must be finite and below `MAX_ABS_AMOUNT` in size; False (with an error) otherwise."""
    bad, row = con.execute(
        f"SELECT count(*), min({_ROW}) FROM transactions WHERE NOT isfinite(amount) OR abs(amount) > ?",
        [MAX_ABS_AMOUNT],
    ).fetchall()[0]
    if not bad:
        return True
    value = con.execute(f"SELECT amount FROM transactions WHERE {_ROW} = ?", [row]).fetchall()[0][0]
    report.error(
        "transactions",
        "amount",
        f"{path}: column amount has values that are not a finite amount of money below {MAX_ABS_AMOUNT:.0e} "
        f"in size: {_where(path)(row)} has {value!r}"
        + (f" (and {bad - 1:,} more {'row' if bad == 2 else 'rows'})" if bad > 1 else "")
        + ". Fix: check that the column holds order values in currency units (not ids, not cents of a "
        "huge unit), and remove the broken rows.",
        bad,
    )
    return False


def latest_allowed(now: dt.datetime | None = None) -> dt.datetime:
    """The latest date a log, a cut-off or a request may hold: `now` (naive UTC; default the clock) plus
    `FUTURE_SLACK`. The earliest is `EARLIEST`."""
    return (now or dt.datetime.now(dt.UTC).replace(tzinfo=None)) + FUTURE_SLACK


def _check_dates(
    con: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    path: Path,
    now: dt.datetime,
    report: ValidationReport,
) -> bool:
    """Every date and time from `EARLIEST` to `latest_allowed(now)`; False (with an error) otherwise."""
    latest = latest_allowed(now)
    ok = True
    present = set(con.table(schema.name).columns)
    for column, kind in schema.columns.items():
        if kind not in ("timestamp", "date") or column not in present:
            continue
        bad, row = con.execute(
            f"SELECT count(*), min({_ROW}) FROM {schema.name} WHERE {column} < ? OR {column} > ?",
            [EARLIEST, latest],
        ).fetchall()[0]
        if not bad:
            continue
        value = con.execute(f"SELECT {column} FROM {schema.name} WHERE {_ROW} = ?", [row]).fetchall()[0][0]
        example = f"{_where(path)(row)} has {value:%Y-%m-%d}" + (
            f" (and {bad - 1:,} more {'row' if bad == 2 else 'rows'})" if bad > 1 else ""
        )
        report.error(
            schema.name, column, dates_out_of_range(path, f"column {column}", bad, latest, example), bad
        )
        ok = False
    return ok


def dates_out_of_range(path: Path | str, label: str, n: int, latest: dt.datetime, example: str = "") -> str:
    """The error for `n` dates of a column outside `EARLIEST`..`latest`, on either engine."""
    return (
        f"{path}: {label} has {n:,} {'date' if n == 1 else 'dates'} in the future (after {latest:%Y-%m-%d}) "
        f"or before 1900{': ' + example if example else ''}. Fix: correct the year (a typo such as 2205 for "
        "2025, or a placeholder date) or remove those rows."
    )


def _warn_on_extreme_orders(con: duckdb.DuckDBPyConnection, path: Path, report: ValidationReport) -> None:
    """Warn about orders above the models' outlier fence (`features.fence.spend_fence` at the log's last day),
    which the models count at the fence, and about refunds worth more than `EXTREME_ORDER_FACTOR` times the
    shop's median order in size (a refund of -2.5e9 in a shop of 60s is as broken as an order of 2.5e9, and
    would otherwise show only as a refund share of millions of percent). Without a fence (too few customers'
    values, or no spread: `features.fence.upper_fence`), orders are named above the same multiple."""
    median = con.execute(
        "SELECT median(value) FROM (SELECT sum(amount) AS value FROM transactions GROUP BY customer_id, order_id) "
        "WHERE value > 0"
    ).fetchall()[0][0]
    if median is None:
        return
    fence = _spend_fence(con) if report.ok else float("inf")
    for sign in (1, -1):
        fenced = sign > 0 and math.isfinite(fence)
        line = fence if fenced else EXTREME_ORDER_FACTOR * median
        rows = con.execute(
            f"""
            WITH orders AS (
                SELECT customer_id, order_id, sum(amount) AS value, min({_ROW}) AS first_row
                FROM transactions GROUP BY customer_id, order_id
            )
            SELECT customer_id, order_id, value, first_row, count(*) OVER () AS n
            FROM orders WHERE ? * value > ?
            ORDER BY abs(value) DESC LIMIT 3
            """,
            [sign, line],
        ).fetchall()
        if not rows:
            continue
        where, count = _where(path), rows[0][4]
        examples = "; ".join(
            f"customer {customer}, order {order}: {value:,.2f} ({abs(value) / median:,.0f} times the median), "
            f"{where(row)}"
            for customer, order, value, row, _ in rows
        )
        what = ("order is", "orders are") if sign > 0 else ("refund is", "refunds are")
        subject, it = ("it is", "it") if count == 1 else ("they are", "them")
        if fenced:
            above = f"the outlier fence of {fence:,.2f} (the median order is {median:,.2f})"
            kept = f"the models count {it} at the fence (one order cannot set other customers' values)"
        else:
            above = f"{EXTREME_ORDER_FACTOR:,} times the median order in size ({median:,.2f})"
            kept = (
                f"the models count {it} in full (too few customers' order values for an outlier fence)"
                if sign > 0
                else "it nets against revenue and dominates the refund share above"
                if count == 1
                else "they net against revenue and dominate the refund share above"
            )
        report.warn(
            "transactions",
            "amount",
            f"{path}: {count:,} {what[count != 1]} worth more than {above}: {examples}. "
            f"{subject.capitalize()} kept, but {kept}; if {subject} "
            f"{'a data error' if count == 1 else 'data errors'} (a price in cents, an id in the amount column), "
            f"fix or remove {it}.",
            count,
        )


def _spend_fence(con: duckdb.DuckDBPyConnection) -> float:
    """The models' outlier fence on this log's orders at its last day (`features.fence.spend_fence` on the
    same RFM features the models read, `features.rfm.build_rfm`)."""
    last = con.execute("SELECT max(timestamp) FROM transactions").fetchall()[0][0]
    if last is None:
        return float("inf")
    # The connection as it is: `features.engine.from_duckdb` would reset the threads `load_shop` was given.
    transactions = ibis.duckdb.from_connection(con).table("transactions")
    return spend_fence(to_pandas(build_rfm(transactions, last.date())))


# How many customers a warning names.
SHOWN_CUSTOMERS = 3


def _warn_on_net_refunds(con: duckdb.DuckDBPyConnection, path: Path, report: ValidationReport) -> None:
    """Warn of customers whose refunds exceed their purchases (net revenue below 0), naming the largest: the
    refund share says how much is refunded, not who, and such a row is valued from a net of 0."""
    rows = con.execute(
        f"""
        SELECT customer_id, sum(amount) AS net, count(*) FILTER (WHERE amount > 0) AS bought,
               count(*) OVER () AS n
        FROM transactions GROUP BY customer_id HAVING sum(amount) < -{AMOUNT_TOLERANCE}
        ORDER BY net, customer_id LIMIT {SHOWN_CUSTOMERS}
        """
    ).fetchall()
    if not rows:
        return
    count = rows[0][3]
    shown = ", ".join(
        f"{customer} ({net:,.2f}{'' if bought else ', refunds only'})" for customer, net, bought, _ in rows
    )
    more = f" and {count - len(rows):,} more" if count > len(rows) else ""
    report.warn(
        "transactions",
        "amount",
        f"{path}: {count:,} {'customer has' if count == 1 else 'customers have'} refunds larger than "
        f"{'her' if count == 1 else 'their'} purchases (net revenue below 0): {shown}{more}. "
        f"{'She is' if count == 1 else 'They are'} kept: "
        "past revenue counts as at least 0, and a customer with no purchase in the log is scored "
        "no_purchase (action review). Expected when the refunded orders were placed before the log "
        "begins; otherwise check the signs of the amounts.",
        count,
    )


def _warn_on_shape(con: duckdb.DuckDBPyConnection, path: Path, report: ValidationReport) -> None:
    """Warn about logs from which repeat buying cannot be learned (they validate, but train refuses
    or falls back): a single day, nobody (or few) with a second purchase day, very few customers."""
    days, repeaters = con.execute(
        "SELECT date_diff('day', min(timestamp)::DATE, max(timestamp)::DATE), "
        "(SELECT count(*) FROM (SELECT customer_id FROM transactions WHERE amount > 0 "
        "GROUP BY customer_id HAVING count(DISTINCT timestamp::DATE) > 1)) FROM transactions"
    ).fetchall()[0]
    if days == 0:
        report.warn(
            "transactions",
            "timestamp",
            f"{path}: every transaction is on one day ({report.first_timestamp:%Y-%m-%d}), so nothing about "
            "repeat buying can be learned and `clv train` will refuse. Fix: use a log that spans weeks or more.",
        )
    elif repeaters == 0:
        report.warn(
            "transactions",
            "customer_id",
            f"{path}: no customer bought on two different days ({report.customers:,} customers, one purchase "
            "day each), so how often customers come back cannot be estimated and `clv train` will refuse. "
            "Fix: use a longer history in which some customers have come back.",
        )
    elif repeaters < FEW_REPEAT_BUYERS:
        # "only 8 of 8 customers" read as if some had not come back.
        repeat = (
            f"only {repeaters:,} of {report.customers:,} customers"
            if repeaters < report.customers
            else f"only {repeaters:,} customers (all of them)"
        )
        report.warn(
            "transactions",
            "customer_id",
            f"{path}: {repeat} bought on two different days, so how "
            f"often customers come back is estimated roughly, and with fewer than {FEW_REPEAT_BUYERS} `clv train` "
            "fits no Gamma-Gamma spend model (the order value is each customer's own mean, or the shop's) and "
            "the backtest's Gamma-Gamma baselines may be left out. Fix: use a longer history in which more "
            "customers have come back.",
            repeaters,
        )
    if report.customers < FEW_CUSTOMERS:
        report.warn(
            "transactions",
            "customer_id",
            f"{path}: only {report.customers:,} customer{'' if report.customers == 1 else 's'}; predictions from so "
            f"few are rough (the models need at least {FEW_CUSTOMERS} to learn more than the buy-till-you-die base).",
        )


def _summarise_transactions(con: duckdb.DuckDBPyConnection, path: Path, report: ValidationReport) -> None:
    row = con.execute(
        "SELECT count(DISTINCT customer_id), min(timestamp), max(timestamp), coalesce(sum(amount), 0), "
        "coalesce(sum(amount) FILTER (WHERE amount > 0), 0), "
        "coalesce(-sum(amount) FILTER (WHERE amount < 0), 0) FROM transactions"
    ).fetchall()[0]
    (
        report.customers,
        report.first_timestamp,
        report.last_timestamp,
        report.revenue,
        report.gross_revenue,
        report.refunds,
    ) = row
    # An order is a customer's order id, as the features count it (`features.orders`). Order ids are
    # rarely shared between customers; only then is the slower exact count needed.
    ids, shared, example = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE first <> last), min(order_id) FILTER (WHERE first <> last) "
        "FROM (SELECT order_id, min(customer_id) AS first, max(customer_id) AS last FROM transactions "
        "GROUP BY order_id)"
    ).fetchall()[0]
    report.orders = ids
    if shared:
        report.orders = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT customer_id, order_id FROM transactions)"
        ).fetchall()[0][0]
        report.warn(
            "transactions",
            "order_id",
            f"{path}: {shared:,} order id{' is' if shared == 1 else 's are'} used by more than one customer "
            f"(e.g. {example!r}); each customer's rows count as an order of her own. If ids restart per "
            "store or channel, map a unique one (--map order_id=YOUR_COLUMN).",
            shared,
        )
