"""The Spark engine (issue 15): the same feature and label definitions on local Spark give the default
engine's tables; Spark's loader maps and types files as the contract says and refuses what would make
features wrong, naming the column and the fix. Point-in-time correctness on Spark is checked with the
default engine's cases (tests/features/test_feature_values.py runs them on both engines)."""

from __future__ import annotations

import datetime as dt
import sys

import numpy as np
import pandas as pd
import pytest

from demo.shop import write_demo_shop
from features import interest, spark
from features.contract import ContractError, load_shop
from features.engine import to_pandas
from features.files import check_output
from features.lifecycle import lifecycle_table
from features.pipeline import FEATURE_COLUMNS, build_features, write_features
from features.snapshots import make_snapshots

CUTOFFS = [dt.date(2024, 12, 31), dt.date(2025, 6, 30)]


def assert_same_table(duck: pd.DataFrame, other: pd.DataFrame, keys=("as_of", "customer_id")) -> None:
    """Same rows, columns and dtypes; numbers equal within 1e-9 relative (nulls in the same places)."""
    duck = duck.sort_values(list(keys)).reset_index(drop=True)
    other = other.sort_values(list(keys)).reset_index(drop=True)
    assert list(duck.columns) == list(other.columns)
    assert duck.dtypes.equals(other.dtypes), duck.dtypes[duck.dtypes != other.dtypes]
    for column in duck.columns:
        a, b = duck[column], other[column]
        if pd.api.types.is_float_dtype(a):
            assert np.allclose(a, b, rtol=1e-9, atol=0, equal_nan=True), column
        else:
            pd.testing.assert_series_equal(a, b, check_names=False, obj=column)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    write_demo_shop(folder, n_customers=400, seed=5)
    return folder


def paths(folder) -> dict[str, str]:
    return {name: str(folder / f"{name}.parquet") for name in ("transactions", "events", "customers")}


def test_features_and_snapshots_equal_the_default_engine(demo, spark_backend):
    duck = load_shop(**paths(demo)).tables()
    on_spark = spark.load_shop(spark_backend, **paths(demo))
    assert on_spark.has_events and on_spark.has_customers
    sp = on_spark.tables()
    for cutoff in CUTOFFS:
        expected = to_pandas(build_features(duck["transactions"], cutoff, duck["events"], duck["customers"]))
        got = to_pandas(build_features(sp["transactions"], cutoff, sp["events"], sp["customers"]))
        assert len(expected) > 100
        assert_same_table(expected, got)
    expected = to_pandas(make_snapshots(duck["transactions"], CUTOFFS, 90, duck["events"], duck["customers"]))
    got = to_pandas(make_snapshots(sp["transactions"], CUTOFFS, 90, sp["events"], sp["customers"]))
    assert_same_table(expected, got)


def test_csv_with_a_mapping_and_no_order_ids_or_amounts(tmp_path, spark_backend):
    """Text columns under the shop's own names, no order_id (a customer-day is an order) and, in the second
    file, no amount (every order is worth 1): the same features as the default engine's loader."""
    rows = pd.DataFrame(
        {
            "cid": ["A", "A", "A", "B", "B", "C", ""],
            "ts": [
                "2024-01-10 10:00:00",
                "2024-01-10 18:00:00",
                "2024-03-01T09:30:00+02:00",
                "2023-11-15",
                "2024-02-20 12:00:00",
                "2024-03-31 23:30:00",
                "2024-01-01",
            ],
            "amt": ["30", "20.5", "-5", "100", "12", "7.25", "3"],
        }
    )
    cutoff = dt.date(2024, 3, 31)
    for drop in ([], ["amt"]):
        mapping = {"customer_id": "cid", "timestamp": "ts", **({} if drop else {"amount": "amt"})}
        path = tmp_path / f"t{len(drop)}.csv"
        rows.drop(columns=drop).to_csv(path, index=False)
        duck_shop = load_shop(path, mapping=mapping)
        spark_shop = spark.load_shop(spark_backend, str(path), mapping=mapping)
        assert (
            spark_shop.report.value_unit == duck_shop.report.value_unit == ("orders" if drop else "currency")
        )
        assert spark_shop.report.tables["transactions"].dropped_rows == 1  # the row without an id
        assert spark_shop.report.customers == 3 and spark_shop.report.orders == duck_shop.report.orders
        expected = to_pandas(build_features(duck_shop.tables()["transactions"], cutoff))
        got = to_pandas(build_features(spark_shop.tables()["transactions"], cutoff))
        assert_same_table(expected, got)


@pytest.mark.parametrize(
    ("content", "kwargs", "expected"),
    [
        ("customer_id,amount\nA,3\n", {}, ["required column 'timestamp' is missing", "--map timestamp="]),
        (
            "customer_id,timestamp,amount\nA,2024-01-01,3\nB,yesterday,4\nC,31/31/2024,5\n",
            {},
            ["'timestamp'", "2 values that are not a date or time", "ISO 8601"],
        ),
        (
            "customer_id,timestamp,amount\nA,2024-01-01,1e308\nB,2024-01-02,12 EUR\n",
            {},
            ["'amount'", "not a number", "'12 EUR'"],
        ),
        (
            "customer_id,timestamp,amount\nA,2024-01-01,1e15\n",
            {},
            ["not a finite amount of money", "below 1e+12"],
        ),
        (
            "customer_id,timestamp,amount\nA,2024-01-01,3\nB,2205-12-20,4\nC,0001-01-01,5\n",
            {},
            ["'timestamp'", "2 dates in the future", "or before 1900", "correct the year"],
        ),
        (
            "customer_id,timestamp,amount\nA,01/02/2024,3\n",
            {"timestamp_format": "%d/%m/%Y"},
            [
                "timestamp format (--timestamp-format, or [data] timestamp_format) is read by the default engine"
            ],
        ),
        ("customer_id,timestamp,amount\nA,2024-01-01,3\n", {"mapping": {"amount": "Revenue"}}, ["'Revenue'"]),
    ],
)
def test_bad_input_is_refused_naming_the_column_and_fix(tmp_path, spark_backend, content, kwargs, expected):
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(ContractError) as raised:
        spark.load_shop(spark_backend, str(path), **kwargs)
    message = str(raised.value)
    for words in expected:
        assert words in message, message
    assert "Fix:" in message


def test_an_order_id_two_customers_use_is_two_orders_on_both_engines(tmp_path, spark_backend):
    path = tmp_path / "t.csv"
    path.write_text(
        "customer_id,timestamp,amount,order_id\nA,2025-01-01,10,O1\nB,2025-01-01,12,O1\nB,2025-02-01,5,O2\n"
    )
    assert spark.load_shop(spark_backend, str(path)).report.orders == load_shop(path).report.orders == 3


def test_a_row_without_an_order_id_is_its_customer_days_order_on_both_engines(tmp_path, spark_backend):
    path = tmp_path / "t.csv"
    path.write_text(
        "customer_id,timestamp,amount,order_id\nA,2024-01-01,10,\nA,2024-02-01,5,\nC,2024-01-01,10,c1\n"
        "C,2024-02-01,20,\nC,2024-03-01,20,c3\n"
    )
    expected, got = features_on_both(path, spark_backend)
    assert_same_table(expected, got)
    assert expected.set_index("customer_id").n_orders.to_dict() == {"A": 2, "C": 3}


def test_missing_file_and_repeated_customer_ids(tmp_path, spark_backend):
    with pytest.raises(ContractError, match="Spark cannot read it"):
        spark.load_shop(spark_backend, str(tmp_path / "nowhere.parquet"))
    transactions = tmp_path / "t.csv"
    transactions.write_text("customer_id,timestamp,amount\nA,2024-01-01,3\n")
    customers = tmp_path / "c.csv"
    customers.write_text("customer_id,country\nA,FR\nA,DE\n")
    with pytest.raises(ContractError, match="1 customer id appears more than once"):
        spark.load_shop(spark_backend, str(transactions), customers=str(customers))


def test_dataset_replaces_an_older_output_whole(demo, tmp_path, spark_backend):
    """A feature table written by Spark is a Parquet dataset that replaces what was there (a file written by
    the default engine, or an older dataset), and holds the same table."""
    out = tmp_path / "features.parquet"
    duck = load_shop(**paths(demo)).tables()
    write_features(out, CUTOFFS[1], duck["transactions"], duck["events"], duck["customers"])
    expected = pd.read_parquet(out)
    sp = spark.load_shop(spark_backend, **paths(demo)).tables()
    for _ in range(2):
        summary = write_features(out, CUTOFFS[1], sp["transactions"], sp["events"], sp["customers"])
        assert out.is_dir() and (out / "_SUCCESS").exists()
        assert summary["rows"] == len(expected)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    assert_same_table(expected, pd.read_parquet(out)[list(FEATURE_COLUMNS)])
    # ... and the default engine replaces the dataset with its file again.
    write_features(out, CUTOFFS[1], duck["transactions"], duck["events"], duck["customers"])
    assert out.is_file()
    assert_same_table(expected, pd.read_parquet(out))


def test_a_directory_that_is_not_a_dataset_is_never_replaced(tmp_path):
    """Only a dataset as Spark writes it may be replaced by an output; a user's directory is refused."""
    mine = tmp_path / "precious.parquet"
    mine.mkdir()
    (mine / "notes.txt").write_text("important")
    with pytest.raises(ValueError, match="not a dataset written by `--engine spark`"):
        check_output(mine, (".parquet",))
    assert (mine / "notes.txt").read_text() == "important"


def test_without_pyspark_the_message_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(spark.EngineUnavailable, match="make spark"):
        spark.connect()


def features_on_both(path, spark_backend, cutoff=dt.date(2024, 3, 31)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The features of the transactions file `path` at `cutoff`: (default engine, Spark)."""
    expected = to_pandas(build_features(load_shop(path).tables()["transactions"], cutoff))
    got = to_pandas(
        build_features(spark.load_shop(spark_backend, str(path)).tables()["transactions"], cutoff)
    )
    return expected, got


def test_parquet_with_nanosecond_timestamps_as_pandas_writes_them(tmp_path, spark_backend):
    """Spark has no nanosecond timestamps and refuses such Parquet files by default; pandas writes them."""
    frame = pd.DataFrame(
        {
            "customer_id": ["A", "A", "B", "B"],
            "timestamp": pd.to_datetime(
                ["2024-01-01 10:00:00.123456", "2024-02-01 09:00", "2024-01-05 08:00", "2024-03-01 23:59"],
                format="ISO8601",
            ).astype("datetime64[ns]"),
            "amount": [10.0, 20.0, 5.0, 7.5],
        }
    )
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    expected, got = features_on_both(path, spark_backend)
    assert_same_table(expected, got)


def test_event_items_load_and_count_as_on_the_default_engine(demo, spark_backend):
    """The events' optional category and product_id (issue 16) load on Spark, and what customers viewed or
    carted and did not buy, and the item of an abandoned cart, are the default engine's."""
    duck = load_shop(**paths(demo)).tables()
    sp = spark.load_shop(spark_backend, **paths(demo)).tables()
    assert {"category", "product_id"} <= set(sp["events"].columns)
    keys = ("customer_id", "item")
    for cutoff in CUTOFFS:
        expected = to_pandas(
            interest.interest_items(duck["transactions"], duck["events"], cutoff, "category", 30)
        )
        got = to_pandas(interest.interest_items(sp["transactions"], sp["events"], cutoff, "category", 30))
        assert len(expected) > 0
        assert_same_table(expected, got, keys)
    start = CUTOFFS[1] - dt.timedelta(days=180)
    expected = to_pandas(
        interest.interest_outcomes(duck["transactions"], duck["events"], start, CUTOFFS[1], "category", 30, 2)
    )
    got = to_pandas(
        interest.interest_outcomes(sp["transactions"], sp["events"], start, CUTOFFS[1], "category", 30, 2)
    )
    assert_same_table(expected, got, keys)
    expected = to_pandas(lifecycle_table(duck["transactions"], CUTOFFS[1], duck["events"]))
    got = to_pandas(lifecycle_table(sp["transactions"], CUTOFFS[1], sp["events"]))
    assert expected["last_cart_item"].notna().any()
    assert_same_table(expected, got, ("customer_id",))


def test_customer_ids_with_spaces_around_them_are_warned_about_on_both_engines(tmp_path, spark_backend):
    """The same ids on both engines: DuckDB's trim() alone left "B\t" as it was, which Spark trims."""
    path = tmp_path / "t.csv"
    path.write_text('customer_id,timestamp,amount\n"  spaced ",2025-01-01,10\n"B\t",2025-02-01,5\n')
    for shop in (spark.load_shop(spark_backend, str(path)), load_shop(path)):
        said = [w.message for w in shop.report.warnings if "with spaces around" in w.message]
        assert said == [
            f"{path}: 2 rows have customer ids with spaces around them (read trimmed: the score table and "
            "lists hold the ids without the spaces)"
        ], shop.report.warnings
    assert sorted(to_pandas(load_shop(path).tables()["transactions"])["customer_id"]) == ["B", "spaced"]


def test_parquet_types_pandas_writes_read_alike_on_both_engines(tmp_path, spark_backend):
    """Seen: float32 amounts read 36.57 on DuckDB (through their text) and 36.569999695 on Spark; and ids
    stored as floats (pandas, ids with a gap) read 10000000.0 on one engine and 1.0E7 on the other, so the
    two score tables held different customers. The amounts now read alike; float ids are refused on both,
    with the fix."""
    frame = pd.DataFrame(
        {
            "customer_id": ["A", "A", "B"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-05"]),
            "amount": np.array([36.57, 12.1, 0.3], dtype="float32"),
        }
    )
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    expected, got = features_on_both(path, spark_backend)
    assert expected.set_index("customer_id").loc["A", "monetary_total"] == pytest.approx(48.67, rel=1e-12)
    assert_same_table(expected, got)

    frame.assign(customer_id=[10000000.0, 10000000.0, np.nan]).to_parquet(path)
    for read in (lambda: load_shop(path), lambda: spark.load_shop(spark_backend, str(path))):
        with pytest.raises(ContractError) as raised:
            read()
        assert "is stored as floating-point numbers" in str(raised.value)
        assert "Fix: write the column as text or whole numbers" in str(raised.value)


def test_iso_texts_read_alike_on_both_engines(tmp_path, spark_backend):
    """Offsets with and without their colon, fractions, Z and a space for the T: the same instants on both
    engines (Spark refused a zone after a time without seconds, which DuckDB and a request read)."""
    stamps = [
        "2024-06-01T10:00+0100",
        "2024-06-04T10:00Z",
        "2024-06-01T23:30-0530",
        "2024-06-01 10:00:00.25+01:00",
        "2024-06-02T08:00:00Z",
        "2024-06-03 09:15",
    ]
    path = tmp_path / "t.csv"
    path.write_text("customer_id,timestamp,amount\n" + "".join(f"C{i},{t},1\n" for i, t in enumerate(stamps)))
    duck = to_pandas(load_shop(path).tables()["transactions"]).sort_values("customer_id")
    on_spark = to_pandas(spark.load_shop(spark_backend, str(path)).tables()["transactions"]).sort_values(
        "customer_id"
    )
    assert duck["timestamp"].tolist() == on_spark["timestamp"].tolist()
    shown = pd.to_datetime(duck["timestamp"]).dt.strftime("%Y-%m-%d %H:%M:%S")
    utc = dict(zip(duck["customer_id"], shown, strict=True))
    assert (utc["C0"], utc["C1"], utc["C2"]) == (
        "2024-06-01 09:00:00",
        "2024-06-04 10:00:00",
        "2024-06-02 05:00:00",
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("timestamp", "epoch"),  # DuckDB read it as 1970-01-01: a purchase in 1970
        ("timestamp", "infinity"),  # DuckDB: after every cut-off, so the row vanished
        ("timestamp", "2024-06"),  # Spark: 2024-06-01
        ("timestamp", "2024-06-01 10:00:00 +01:00"),  # Spark only
        ("amount", "12d"),  # Spark: 12.0 (a Java double suffix)
        ("amount", "1_000"),  # DuckDB: 1000
    ],
)
def test_a_text_one_engine_alone_would_read_is_refused_by_both(tmp_path, spark_backend, column, value):
    """Each engine's parser reads texts the other refuses, so the same file was refused on one engine and read,
    differently, on the other. Both now read the same texts (`features.contract.ISO_TIMESTAMP`, `PLAIN_NUMBER`),
    and refuse the rest naming the value."""
    row = {"customer_id": "B", "timestamp": "2024-01-02", "amount": "4", column: value}
    path = tmp_path / "t.csv"
    path.write_text(
        f"customer_id,timestamp,amount\nA,2024-01-01,3\n{row['customer_id']},{row['timestamp']},{row['amount']}\n"
    )
    for read in (lambda: load_shop(path), lambda: spark.load_shop(spark_backend, str(path))):
        with pytest.raises(ContractError) as raised:
            read()
        assert f"'{column}'" in str(raised.value) and repr(value) in str(raised.value), str(raised.value)
