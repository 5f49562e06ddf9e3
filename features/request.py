"""Features for the few customers of one HTTP request, through the very same definitions as batch.

`compute_features_for_request` takes pandas frames (a customer's history sent to
`POST /predict_history`), runs `features.pipeline.build_features` on an in-memory DuckDB
connection and returns pandas, with the same columns, dtypes and values as the batch path.

Speed: building and compiling the Ibis expression takes far longer than running it on a few
rows, so the SQL is compiled once per input shape (which optional columns and tables are present)
and cached. The cut-off is not baked into the cached SQL: it is compiled with a sentinel date that
is then replaced by a query parameter, so one compiled query serves every `as_of`.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading

import duckdb
import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features import engine
from features.orders import as_of_date
from features.schema import CUSTOMERS, EVENTS, TRANSACTIONS, TableSchema

# A date no real cut-off uses; the compiled SQL spells it this way (checked when compiling).
_SENTINEL = dt.date(2999, 12, 31)
_SENTINEL_SQL = "MAKE_DATE(2999, 12, 31)"
_ARROW_TYPES = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us"),
    "float64": pa.float64(),
    "date": pa.date32(),
}
# One small DuckDB connection per thread: connections must not be shared between threads.
_local = threading.local()


def compute_features_for_request(
    transactions_df: pd.DataFrame,
    as_of: dt.date,
    events_df: pd.DataFrame | None = None,
    customers_df: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The feature table (`features.pipeline.FEATURE_SCHEMA`) for the customers in the frames.

    Frames use the contract's column names (`features.schema`); extra columns are ignored.
    Timestamps may be naive (taken as UTC) or time-zone aware (converted to UTC). Without an
    order_id column a customer-day is one order, and without an amount column every order is
    worth 1, as in the contract. Every customer with an order by `as_of` gets a row. Rows are
    sorted by customer_id. Raises ValueError on missing required columns or values that cannot
    be converted.
    """
    as_of = as_of_date(as_of)
    tables = {"transactions": _to_arrow(transactions_df, TRANSACTIONS)}
    if events_df is not None:
        tables["events"] = _to_arrow(events_df, EVENTS)
    if customers_df is not None:
        tables["customers"] = _to_arrow(customers_df, CUSTOMERS)
    signature = tuple((name, tuple(table.column_names)) for name, table in tables.items())
    con = _connection()
    try:
        for name, table in tables.items():
            con.register(name, table)
        statement, schema = _prepared(con, signature)
        # as_of is a datetime.date, so its ISO form is a safe literal.
        result = con.sql(f"EXECUTE {statement}(DATE '{as_of.isoformat()}')").to_arrow_table()
    finally:
        for name in tables:
            con.unregister(name)
    return engine.arrow_to_pandas(result.cast(schema))


def _connection() -> duckdb.DuckDBPyConnection:
    """This thread's DuckDB connection (created on first use)."""
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect()
        engine.configure(con, threads=1, memory_limit="1GB")
        _local.statements = {}
    return con


def _prepared(con: duckdb.DuckDBPyConnection, signature: tuple) -> tuple[str, pa.Schema]:
    """The name of this thread's prepared statement for the input shape, and the result schema.

    Preparing once per (thread, shape) saves parsing and planning on every request; DuckDB rebinds
    the statement by itself when the registered tables are replaced. The input tables must be
    registered before the first call.
    """
    sql, schema = _compiled(signature)
    statement = _local.statements.get(signature)
    if statement is None:
        statement = f"clv_features_{len(_local.statements)}"
        con.execute(f"PREPARE {statement} AS {sql}")
        _local.statements[signature] = statement
    return statement, schema


@functools.lru_cache(maxsize=128)
def _compiled(signature: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[str, pa.Schema]:
    """DuckDB SQL (with the cut-off as parameter `$1`) and the Arrow result schema for one input shape."""
    from features.pipeline import build_features

    schemas = {s.name: s for s in (TRANSACTIONS, EVENTS, CUSTOMERS)}
    tables = {
        name: ibis.table({c: schemas[name].columns[c] for c in columns}, name=name)
        for name, columns in signature
    }
    expr = build_features(tables["transactions"], _SENTINEL, tables.get("events"), tables.get("customers"))
    expr = expr.order_by("customer_id")
    sql = ibis.to_sql(expr, dialect="duckdb")
    if _SENTINEL_SQL not in sql or str(_SENTINEL) in sql.replace(_SENTINEL_SQL, ""):
        raise RuntimeError("cannot parametrise the cut-off in the compiled feature query (Ibis changed?)")
    return sql.replace(_SENTINEL_SQL, "CAST($1 AS DATE)"), expr.schema().to_pyarrow()


def _to_arrow(frame: pd.DataFrame, schema: TableSchema) -> pa.Table:
    """The frame's contract columns as an Arrow table of contract types."""
    missing = [c for c in schema.required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{schema.name}: missing required column(s) {', '.join(missing)}; "
            f"expected {', '.join(schema.required)} (optional: {', '.join(schema.optional) or 'none'})"
        )
    columns = {}
    for name, kind in schema.columns.items():
        if name not in frame.columns:
            continue
        try:
            columns[name] = _column(frame[name], kind)
        except (ValueError, TypeError, pa.ArrowException) as exc:
            raise ValueError(_unreadable(frame[name], kind, f"{schema.name}.{name}", exc)) from None
    table = pa.table(columns)
    if schema is TRANSACTIONS and "order_id" not in columns:
        # Without order ids a customer-day is one order (DESIGN.md), as in features.contract.
        day = pc.strftime(table["timestamp"], format="%Y-%m-%d")
        table = table.append_column("order_id", pc.binary_join_element_wise(table["customer_id"], day, "|"))
    if schema is TRANSACTIONS and "amount" not in columns:
        table = table.append_column("amount", _unit_amounts(table))
    if table.num_rows and any(table[c].null_count for c in schema.required):
        raise ValueError(f"{schema.name}: required columns {', '.join(schema.required)} must not be empty")
    if schema is TRANSACTIONS and "amount" in columns:
        # As in the contract: once there are amounts, every row needs a finite one.
        finite = pc.fill_null(pc.is_finite(table["amount"]), False)
        if table.num_rows and not pc.all(finite).as_py():
            row = int(pc.index(finite, False).as_py())
            raise ValueError(
                f"transactions.amount, row {row + 1}: {frame['amount'].iloc[row]} is not a finite number; "
                "every transaction needs its amount (or leave the amount out of every row: each order then "
                "counts as 1)"
            )
    return table


def _unit_amounts(table: pa.Table) -> pa.Array:
    """Each row's share of its order when the log has no amounts: every order is worth 1."""
    keys = table.select(["customer_id", "order_id"]).to_pandas()
    lines = keys.groupby(["customer_id", "order_id"], dropna=False)["order_id"].transform("size")
    return pa.array(1.0 / lines.to_numpy(float), type=pa.float64())


_HOW = {
    "timestamp": "an ISO 8601 date or time, e.g. 2025-03-01 or 2025-03-01T10:00:00+02:00",
    "date": "an ISO 8601 date, e.g. 2025-03-01",
    "float64": "a number, e.g. 19.90",
    "string": "text",
}


def _column(values: pd.Series, kind: str, errors: str = "raise") -> pa.Array:
    if kind in ("timestamp", "date"):
        # Naive times are UTC and offsets are converted, as in the batch contract.
        values = pd.to_datetime(values, utc=True, format="mixed", errors=errors).dt.tz_localize(None)
        if kind == "date":
            values = values.dt.date
    elif kind == "string":
        values = values.astype("string")
    elif kind == "float64":
        values = pd.to_numeric(values, errors=errors).astype("float64")
    return pa.array(values, type=_ARROW_TYPES[kind], from_pandas=True)


def _unreadable(values: pd.Series, kind: str, where: str, exc: Exception) -> str:
    """Name the first row whose value cannot be read, and what would be readable."""
    try:
        parsed = _column(values, kind, errors="coerce").to_pandas()
        bad = values.notna().to_numpy() & pd.isna(parsed).to_numpy()
    except (ValueError, TypeError, pa.ArrowException):
        bad = None
    if bad is not None and bad.any():
        row = int(bad.argmax())
        return f"{where}, row {row + 1}: cannot read {values.iloc[row]!r}; expected {_HOW[kind]}"
    return f"{where}: cannot read the values as {kind} ({str(exc).splitlines()[0]}); expected {_HOW[kind]}"
