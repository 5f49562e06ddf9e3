"""Running the feature pipeline: the DuckDB backend, Parquet output, and the compiled SQL."""

from __future__ import annotations

import datetime as dt

import duckdb
import ibis
import pandas as pd
import pytest

from features import engine
from features.pipeline import FEATURE_COLUMNS, build_features, compute_features, write_features

AS_OF = dt.date(2024, 3, 31)
TX_SCHEMA = {
    "customer_id": "string",
    "timestamp": "timestamp",
    "amount": "float64",
    "order_id": "string",
    "quantity": "float64",
    "product_id": "string",
    "category": "string",
}


def shop_connection() -> duckdb.DuckDBPyConnection:
    """A connection holding canonical tables, as `features.contract.load_shop` leaves it."""
    con = duckdb.connect()
    tx = pd.DataFrame(
        {
            "customer_id": ["A", "A", "B", "C"],
            "timestamp": pd.to_datetime(
                ["2024-01-01 10:00", "2024-03-01 10:00", "2024-02-01 10:00", "2024-02-02 00:00"]
            ),
            "amount": [10.0, 20.0, 5.0, -3.0],
            "order_id": ["o1", "o2", "o3", "o4"],
        }
    )
    con.register("tx_frame", tx)
    con.execute("CREATE TABLE transactions AS SELECT * FROM tx_frame")
    con.unregister("tx_frame")
    return con


def test_from_duckdb_configures_the_connection():
    con = shop_connection()
    backend = engine.from_duckdb(con, threads=1, memory_limit="500MB")
    assert con.execute("SELECT current_setting('threads')").fetchall() == [(1,)]
    features = compute_features(backend.table("transactions"), AS_OF)
    assert features["customer_id"].tolist() == ["A", "B", "C"]  # C has only a refund: a row, no purchase
    assert features["n_orders"].tolist() == [2, 1, 0]


def test_write_features_is_atomic_and_reports(tmp_path):
    backend = engine.from_duckdb(shop_connection())
    out = tmp_path / "sub" / "features.parquet"
    messages = []
    summary = write_features(out, AS_OF, backend.table("transactions"), progress=messages.append)
    assert summary["rows"] == 3 and summary["columns"] == len(FEATURE_COLUMNS) and summary["as_of"] == AS_OF
    assert summary["seconds"] >= 0 and summary["features_version"]
    assert messages and all(m.startswith("computing features") for m in messages)
    written = pd.read_parquet(out)
    assert tuple(written.columns) == FEATURE_COLUMNS
    assert sorted(p.name for p in out.parent.iterdir()) == ["features.parquet"]  # no temporary file left

    tx = backend.table("transactions")
    broken = tx.mutate(amount=tx.order_id.cast("float64"))  # fails while the query runs
    with pytest.raises(Exception):  # noqa: B017 - any engine error
        write_features(out, AS_OF, broken)
    pd.testing.assert_frame_equal(pd.read_parquet(out), written)  # the previous file is intact
    assert sorted(p.name for p in out.parent.iterdir()) == ["features.parquet"]


def unbound_tables():
    tx = ibis.table(TX_SCHEMA, name="transactions")
    events = ibis.table(
        {"customer_id": "string", "timestamp": "timestamp", "event_type": "string"}, name="events"
    )
    customers = ibis.table(
        {"customer_id": "string", "country": "string", "signup_date": "date"}, name="customers"
    )
    return tx, events, customers


def test_compiled_sql_shares_the_order_table():
    tx, events, customers = unbound_tables()
    sql = ibis.to_sql(build_features(tx, AS_OF, events, customers), dialect="duckdb")
    # Transactions are read for the order table and for product/category mix only; the order
    # table is one CTE that the behavioural features reuse.
    assert sql.count('FROM "transactions"') == 3
    assert sql.count("WITH ") == 1
    assert sql.count("OVER (") == 4  # lag/first/last over purchases + the session lag
    assert "2024" in sql and "MAKE_DATE(2024, 3, 31)" in sql


def test_features_and_labels_are_the_same_in_every_run(tmp_path):
    """Issue 13: two `clv train` runs on the same data gave different backtests, because DuckDB adds floats in
    parallel in a varying order (on this shop 12 feature columns differed in the last bits between runs).
    Money is summed exactly and the gap spread from integer sums, so every run gives the same bits."""
    from demo.shop import write_demo_shop
    from features.contract import load_shop
    from features.labels import attach_labels

    write_demo_shop(tmp_path, n_customers=20_000, seed=42)  # enough rows for DuckDB to use every core
    shop = load_shop(tmp_path / "transactions.parquet")
    transactions = shop.tables()["transactions"]
    as_of = dt.date(2025, 6, 30)
    runs = [
        engine.to_pandas(
            attach_labels(build_features(transactions, as_of), transactions, as_of, 180).order_by(
                "customer_id"
            )
        )
        for _ in range(3)
    ]
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0], other, check_exact=True)
