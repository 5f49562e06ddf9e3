"""The data contract: every rejection and warning, mapping, and both file formats."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from features.contract import ContractError, load_shop, parse_mapping

NOW = dt.datetime(2026, 1, 1)


def write_csv(path, text: str):
    path.write_text(text)
    return path


def load(path, **kwargs):
    return load_shop(path, now=NOW, **kwargs)


def error_text(path, **kwargs) -> str:
    with pytest.raises(ContractError) as info:
        load(path, **kwargs)
    return str(info.value)


def rows(shop, table="transactions") -> pd.DataFrame:
    return shop.con.execute(f"SELECT * FROM {table}").df()


def test_valid_csv_is_typed_and_summarised(tmp_path):
    path = write_csv(
        tmp_path / "t.csv",
        "customer_id,timestamp,amount,order_id\n"
        "A,2023-01-01 10:00:00,10.5,o1\nA,2023-01-01 10:00:00,4.5,o1\nB,2023-02-01,20,o2\n",
    )
    shop = load(path)
    df = rows(shop)
    assert list(df.columns) == ["customer_id", "timestamp", "amount", "order_id"]
    assert df["amount"].dtype == "float64"
    assert pd.api.types.is_datetime64_any_dtype(df["timestamp"])
    report = shop.report
    assert (report.customers, report.orders) == (2, 2)
    assert report.revenue == pytest.approx(35.0)
    assert report.first_timestamp == dt.datetime(2023, 1, 1, 10)
    # Valid, with the warnings a two-customer log deserves: nobody came back, and too few customers.
    messages = " ".join(w.message for w in report.warnings)
    assert report.ok and len(report.warnings) == 2
    assert "no customer bought on two different days" in messages and "only 2 customers" in messages


def test_parquet_with_typed_columns(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame(
        {
            "customer_id": [1, 2],
            "timestamp": pd.to_datetime(["2023-01-01 10:00", "2023-01-02 00:00"]).tz_localize(
                "Europe/Berlin"
            ),
            "amount": [1.0, 2.0],
        }
    ).to_parquet(path)
    df = rows(load(path))
    # Numeric ids become strings; aware timestamps are converted to naive UTC.
    assert df["customer_id"].tolist() == ["1", "2"]
    assert df["timestamp"].iloc[0] == pd.Timestamp("2023-01-01 09:00")


def test_mixed_offsets_convert_to_utc(tmp_path):
    path = write_csv(
        tmp_path / "t.csv",
        "customer_id,timestamp,amount\nA,2023-01-01T10:00:00+02:00,1\nB,2023-01-01T10:00:00Z,1\nC,2023-01-01 10:00,1\n",
    )
    df = rows(load(path)).set_index("customer_id")
    assert df.loc["A", "timestamp"] == pd.Timestamp("2023-01-01 08:00")
    assert df.loc["B", "timestamp"] == pd.Timestamp("2023-01-01 10:00")
    assert df.loc["C", "timestamp"] == pd.Timestamp("2023-01-01 10:00")


def test_missing_order_id_makes_a_customer_day_one_order(tmp_path):
    path = write_csv(
        tmp_path / "t.csv",
        "customer_id,timestamp,amount\nA,2023-01-01 09:00,1\nA,2023-01-01 18:00,2\nA,2023-01-02 09:00,3\n",
    )
    shop = load(path)
    assert shop.report.orders == 2
    assert rows(shop)["order_id"].nunique() == 2


def test_without_amounts_every_order_is_worth_one(tmp_path):
    path = write_csv(
        tmp_path / "t.csv",
        "customer_id,timestamp,order_id\nA,2023-01-01,o1\nA,2023-01-01,o1\nA,2023-01-01,o1\n"
        "A,2023-02-01,o2\nB,2023-03-01,o3\n",
    )
    shop = load(path)
    orders = rows(shop).groupby("order_id")["amount"].sum()
    assert orders.to_dict() == pytest.approx({"o1": 1.0, "o2": 1.0, "o3": 1.0})
    assert shop.report.value_unit == "orders" and shop.report.revenue == pytest.approx(3.0)
    warning = " ".join(w.message for w in shop.report.warnings)
    assert "no amount column" in warning and "numbers of orders" in warning and "--map amount=" in warning


def test_without_amounts_or_order_ids_a_customer_day_is_one_order_worth_one(tmp_path):
    path = write_csv(tmp_path / "t.csv", "customer_id,timestamp\nA,2023-01-01 09:00\nA,2023-01-01 18:00\n")
    shop = load(path)
    assert rows(shop)["amount"].sum() == pytest.approx(1.0)
    assert shop.report.orders == 1


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", "2e12"])
def test_amounts_must_be_finite_and_sane(tmp_path, value):
    path = write_csv(
        tmp_path / "t.csv", f"customer_id,timestamp,amount\nA,2023-01-01,10\nB,2023-01-02,{value}\n"
    )
    message = error_text(path)
    assert "amount" in message and "row 2" in message and "Fix:" in message


def test_extreme_orders_are_named_relative_to_the_shop(tmp_path):
    body = "".join(f"C{i},2023-01-{i % 28 + 1:02d},{50 + i}\n" for i in range(40))
    path = write_csv(
        tmp_path / "t.csv", "customer_id,timestamp,amount\n" + body + "BIG,2023-02-01,2500000000\n"
    )
    shop = load(path)
    [warning] = [w for w in shop.report.warnings if "median order" in w.message]
    assert "customer BIG" in warning.message and "row 41" in warning.message and warning.count == 1


def test_extreme_refunds_are_named_like_extreme_orders(tmp_path):
    """A refund of -2.5e9 in a shop of 60s was only "1 row is a refund", with a refund share of 8,360,001.7%."""
    body = "".join(f"C{i},2023-01-{i % 28 + 1:02d},{50 + i}\n" for i in range(40))
    path = write_csv(
        tmp_path / "t.csv",
        "customer_id,timestamp,amount\n" + body + "C3,2023-02-01,-40\nNEG,2023-02-01,-2500000000\n",
    )
    shop = load(path)
    [warning] = [w for w in shop.report.warnings if "median order" in w.message]
    assert "1 refund is worth more than 1,000 times the median order in size" in warning.message
    assert "customer NEG" in warning.message and "-2,500,000,000.00" in warning.message
    assert "row 42" in warning.message and "C3" not in warning.message and warning.count == 1


def test_customers_whose_refunds_exceed_their_purchases_are_named(tmp_path):
    """`validate` counted refund rows but named nobody whose refunds exceed her purchases (shared case 04)."""
    body = "".join(f"C{i},2023-01-{i + 1:02d},{50 + i}\n" for i in range(5))
    refunds = "C0,2023-02-01,-20\nNEG1,2023-01-02,30\nNEG1,2023-02-01,-160\nREF1,2023-02-03,-80\n"
    shop = load(write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\n" + body + refunds))
    [warning] = [w for w in shop.report.warnings if "refunds larger than" in w.message]
    assert "2 customers have refunds larger than their purchases" in warning.message
    # The largest net refund first; a customer with nothing but refunds is told apart.
    assert "NEG1 (-130.00), REF1 (-80.00, refunds only)" in warning.message
    assert "C0" not in warning.message and warning.count == 2 and shop.report.ok
    many = "".join(f"R{i},2023-02-01,-{i + 1}\n" for i in range(6))
    shop = load(write_csv(tmp_path / "m.csv", "customer_id,timestamp,amount\n" + body + many))
    [warning] = [w for w in shop.report.warnings if "refunds larger than" in w.message]
    assert "R5 (-6.00, refunds only), R4 (-5.00, refunds only), R3 (-4.00, refunds only) and 3 more" in (
        warning.message
    )
    # Refunds within purchases are no such customer.
    shop = load(
        write_csv(tmp_path / "ok.csv", "customer_id,timestamp,amount\n" + body + "C1,2023-02-01,-51\n")
    )
    assert not [w for w in shop.report.warnings if "refunds larger than" in w.message]


def test_ordinary_spread_of_order_values_is_not_extreme(tmp_path):
    body = "".join(f"C{i},2023-01-{i % 28 + 1:02d},{10 * 1.2**i:.2f}\n" for i in range(30))
    shop = load(write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\n" + body))
    assert not [w for w in shop.report.warnings if "median order" in w.message]


def test_unparseable_timestamp_names_column_row_and_value(tmp_path):
    path = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\nA,2020-01-01,1\nB,31/31/2020,2\n")
    message = error_text(path)
    assert "'timestamp'" in message and "row 2" in message and "'31/31/2020'" in message
    assert "--timestamp-format" in message


def test_timestamp_format_option_reads_day_first_dates(tmp_path):
    path = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\nA,31/12/2020 14:05,1\n")
    df = rows(load(path, timestamp_format="%d/%m/%Y %H:%M"))
    assert df["timestamp"].iloc[0] == pd.Timestamp("2020-12-31 14:05")


def test_non_numeric_amount_is_rejected_with_example(tmp_path):
    path = write_csv(
        tmp_path / "t.csv", "customer_id,timestamp,amount\nA,2020-01-01,1\nB,2020-01-02,€12\nC,2020-01-03,x\n"
    )
    message = error_text(path)
    assert "'amount'" in message and "row 2" in message and "'€12'" in message and "1 more" in message


def test_empty_file_and_header_only_file(tmp_path):
    empty = write_csv(tmp_path / "empty.csv", "")
    assert "empty" in error_text(empty)
    header_only = write_csv(tmp_path / "header.csv", "customer_id,timestamp,amount\n")
    assert "no rows" in error_text(header_only)


def test_mixed_line_endings_are_named_with_the_fix(tmp_path):
    # Windows and Unix line ends in one file (a log appended to on two systems): the reader refuses it.
    path = tmp_path / "t.csv"
    path.write_bytes(b"customer_id,timestamp,amount\r\nA,2025-01-01,10\nA,2025-02-01,12\r\nB,2025-01-05,5\n")
    message = error_text(path)
    assert "lines end in more than one way: 2 end in \\r\\n (Windows), 2 end in \\n (Unix)" in message
    assert "one kind of line ending" in message
    # One kind throughout, even the old Mac's lone \r, reads.
    path.write_bytes(b"customer_id,timestamp,amount\rA,2025-01-01,10\rB,2025-01-05,5\r")
    assert len(rows(load(path))) == 2


def test_an_order_id_two_customers_use_counts_as_two_orders_and_is_warned_about(tmp_path):
    path = write_csv(
        tmp_path / "t.csv",
        "customer_id,timestamp,amount,order_id\nA,2025-01-01,10,O1\nB,2025-01-01,12,O1\nB,2025-02-01,5,O2\n",
    )
    report = load(path).report
    # As the features count them: A's O1, B's O1 and B's O2.
    assert report.ok and report.orders == 3
    warning = " ".join(w.message for w in report.warnings)
    assert (
        "1 order id is used by more than one customer (e.g. 'O1')" in warning and "--map order_id=" in warning
    )


def test_no_customer_ids_at_all(tmp_path):
    path = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\n,2020-01-01,1\n,2020-01-02,2\n")
    assert "customer_id" in error_text(path) and "every row" in error_text(path)


def test_missing_file_and_unsupported_type(tmp_path):
    assert "no such file" in error_text(tmp_path / "nope.csv")
    xlsx = write_csv(tmp_path / "t.xlsx", "x")
    assert "unsupported file type" in error_text(xlsx)


def test_missing_required_value_is_an_error(tmp_path):
    path = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\nA,2020-01-01,\n")
    message = error_text(path)
    assert "'amount'" in message and "empty in 1 row," in message


def test_warnings_are_counted_not_rejected(tmp_path):
    path = write_csv(
        tmp_path / "t.csv",
        "customer_id,timestamp,amount,order_id\n"
        "A,2023-01-01,10,o1\n"
        "A,2023-01-01,10,o1\n"  # exact duplicate
        "A,2023-01-05,-4,r1\n"  # refund
        "B,2023-03-01,0,o3\n"  # zero amount
        ",2023-03-02,7,o4\n",  # no customer id: dropped
    )
    shop = load(path)
    messages = " | ".join(w.message for w in shop.report.warnings)
    assert shop.report.ok
    assert "1 row is an exact duplicate of another row" in messages
    assert "1 row is a refund or return" in messages
    assert "1 row has a zero amount" in messages
    assert "1 row without a customer id was dropped" in messages
    assert len(rows(shop)) == 4
    assert shop.report.refund_share == pytest.approx(4 / 20)


def test_mapping_option_and_case_insensitive_names(tmp_path):
    path = write_csv(tmp_path / "t.csv", "CustomerID,InvoiceDate,Revenue\nA,2023-01-01,3\n")
    shop = load(
        path, mapping=parse_mapping(["customer_id=CustomerID", "timestamp=invoicedate", "amount=Revenue"])
    )
    assert rows(shop)[["customer_id", "amount"]].values.tolist() == [["A", 3.0]]


def test_mapping_to_a_missing_column_names_the_mapping(tmp_path):
    path = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\nA,2023-01-01,3\n")
    message = error_text(path, mapping={"amount": "Revenue"})
    assert "t.csv: column 'Revenue' is missing (mapped to 'amount' by amount=Revenue)" in message
    # The file has an amount column of its own: the fix is to drop the mapping, not to rename a column
    # to the name it already has.
    assert "or drop the mapping amount=Revenue to read its 'amount' column as 'amount'." in message
    assert "rename" not in message


def test_mapping_unknown_contract_column(tmp_path):
    path = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\nA,2023-01-01,3\n")
    assert "not a contract column" in error_text(path, mapping={"revenue": "amount"})


@pytest.mark.parametrize("bad", ["customer_id", "=x", "a="])
def test_parse_mapping_rejects_malformed_pairs(bad):
    with pytest.raises(ValueError, match="CONTRACT_COLUMN=YOUR_COLUMN"):
        parse_mapping([bad])


def test_events_and_customers_load_alongside(tmp_path):
    tx = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\nA,2023-01-01,3\n")
    ev = write_csv(tmp_path / "e.csv", "customer_id,timestamp,event_type\nA,2023-01-01,page_view\n")
    cu = write_csv(
        tmp_path / "c.csv",
        "customer_id,signup_date,country\nA,2022-12-02,FR\nA,2022-12-01,DE\n",
    )
    shop = load(tx, events=ev, customers=cu)
    assert shop.has_events and shop.has_customers
    customers = rows(shop, "customers")
    # A repeated id: the first row in the file is kept (not the smallest value), with a warning;
    # /predict_history keeps the first row of a request the same way (features.request).
    assert customers["country"].tolist() == ["FR"]
    assert any("more than once" in w.message for w in shop.report.warnings)


def test_events_of_a_type_no_feature_counts_are_warned_about(tmp_path):
    """A "click" passed `clv validate` without a word and counted as nothing, while /predict_history refuses it."""
    tx = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\nA,2023-01-01,3\n")
    ev = write_csv(
        tmp_path / "e.csv",
        "customer_id,timestamp,event_type\nA,2023-01-01,click\nA,2023-01-02,click\nA,2023-01-03,add_to_card\n"
        "A,2023-01-04,page_view\n",
    )
    warned = [w.message for w in load(tx, events=ev).report.warnings if w.column == "event_type"]
    assert len(warned) == 1
    assert "3 events are of a type no feature counts: 'click' (2), 'add_to_card' (1)" in warned[0]
    assert "Fix: rename a type that means one of" in warned[0]
    clean = write_csv(tmp_path / "clean.csv", "customer_id,timestamp,event_type\nA,2023-01-04,page_view\n")
    assert not [w for w in load(tx, events=clean).report.warnings if w.column == "event_type"]


def test_customer_ids_with_spaces_around_them_are_warned_about(tmp_path):
    """Seen: "  spaced " became "spaced" without a word, so a CRM join on the padded id found nobody."""
    tx = write_csv(
        tmp_path / "t.csv", 'customer_id,timestamp,amount\n"  spaced ",2023-01-01,3\nB,2023-01-02,4\n'
    )
    shop = load(tx)
    assert sorted(rows(shop)["customer_id"]) == ["B", "spaced"]
    assert any(
        "1 row has a customer id with spaces around it (read trimmed" in w.message
        for w in shop.report.warnings
    )
    clean = write_csv(tmp_path / "c.csv", "customer_id,timestamp,amount\nA,2023-01-01,3\n")
    assert not any("with spaces around" in w.message for w in load(clean).report.warnings)


def test_a_customers_file_without_customer_columns_is_warned_about(tmp_path):
    """Seen: `clv validate --customers` given a transactions log said OK, warning only of repeated ids."""
    tx = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\nA,2023-01-01,3\nA,2023-02-01,4\n")
    shop = load(tx, customers=tx)
    warned = [w.message for w in shop.report.warnings if w.table == "customers"]
    assert any(
        "none of the customer columns (signup_date, acquisition_channel, country, birth_date, email) is in this "
        "file, so it adds nothing; its columns are 'customer_id', 'timestamp', 'amount'. Fix: pass the "
        "customers table as --customers" in w
        for w in warned
    ), warned
    cu = write_csv(tmp_path / "c.csv", "customer_id,country\nA,FR\n")
    assert not [w for w in load(tx, customers=cu).report.warnings if w.table == "customers"]


def test_bad_events_file_is_reported_with_its_name(tmp_path):
    tx = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\nA,2023-01-01,3\n")
    ev = write_csv(tmp_path / "events.csv", "customer_id,when,event_type\nA,2023-01-01,page_view\n")
    message = error_text(tx, events=ev)
    assert "events.csv" in message and "'timestamp'" in message


def test_errors_do_not_raise_when_asked_for_a_report(tmp_path):
    path = write_csv(tmp_path / "t.csv", "customer_id,amount\nA,3\n")
    shop = load(path, raise_on_error=False)
    assert not shop.report.ok and shop.report.errors[0].column == "timestamp"


def test_events_may_name_their_items_under_the_shops_own_column_names(tmp_path):
    """Optional event columns (category, product_id) are mapped, typed and blank-as-missing as the
    transactions' are; one mapping serves both files."""
    tx = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount,Cat,SKU\nA,2023-01-01,3,shoes,42\n")
    ev = write_csv(
        tmp_path / "e.csv",
        "customer_id,timestamp,event_type,Cat,SKU\n"
        "A,2023-01-02,add_to_cart,shoes,42\nA,2023-01-02,page_view, ,\nA,2023-01-03,product_view,books,\n",
    )
    shop = load(tx, events=ev, mapping={"category": "Cat", "product_id": "SKU"})
    events = rows(shop, "events")
    assert list(events.columns) == ["customer_id", "timestamp", "event_type", "product_id", "category"]
    assert events["category"].fillna("-").tolist() == ["shoes", "-", "books"]  # blank is missing
    assert events["product_id"].fillna("-").tolist() == ["42", "-", "-"]
    assert rows(shop)["category"].tolist() == ["shoes"]


def test_events_without_the_item_columns_load_as_before(tmp_path):
    tx = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount,Cat\nA,2023-01-01,3,shoes\n")
    ev = write_csv(tmp_path / "e.csv", "customer_id,timestamp,event_type\nA,2023-01-02,add_to_cart\n")
    shop = load(tx, events=ev, mapping={"category": "Cat"})
    assert list(rows(shop, "events").columns) == ["customer_id", "timestamp", "event_type"]


def test_a_mapped_item_column_must_be_in_the_transactions(tmp_path):
    """The mapping names a transactions column; events alone having it is a broken mapping, not a log
    without categories."""
    tx = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount\nA,2023-01-01,3\n")
    ev = write_csv(tmp_path / "e.csv", "customer_id,timestamp,event_type,Cat\nA,2023-01-02,add_to_cart,x\n")
    message = error_text(tx, events=ev, mapping={"category": "Cat"})
    assert "t.csv: column 'Cat' is missing (mapped to 'category' by category=Cat)" in message
    assert "Fix: name one of the file's columns in the mapping (category=COLUMN)." in message


def test_parquet_events_with_numeric_product_ids_read_as_text(tmp_path):
    tx = write_csv(tmp_path / "t.csv", "customer_id,timestamp,amount,product_id\nA,2023-01-01,3,7\n")
    ev = tmp_path / "e.parquet"
    pd.DataFrame(
        {
            "customer_id": ["A"],
            "timestamp": pd.to_datetime(["2023-01-02"]),
            "event_type": ["product_view"],
            "product_id": [7],
        }
    ).to_parquet(ev)
    assert rows(load(tx, events=ev), "events")["product_id"].tolist() == ["7"]


def test_dates_in_the_future_or_before_1900_are_refused_as_a_request_refuses_them(tmp_path):
    """One row dated 2205 (a typo) moved the default cut-off two centuries ahead, and `clv train` trained
    and promoted a model there; `/predict_history` refuses such a date (serving.bodies)."""
    transactions = write_csv(
        tmp_path / "t.csv",
        "customer_id,timestamp,amount\nA,2023-01-01,10\nA,2205-12-20,10\nB,2023-06-01,5\nB,2024-01-02,5\n",
    )
    message = error_text(transactions)
    assert "column timestamp has 1 date in the future (after 2026-01-02) or before 1900" in message
    assert "row 2 (line 3) has 2205-12-20" in message and "Fix: correct the year" in message
    # A day of slack for time zones: an order of tomorrow (as NOW's clock reads it) is kept.
    today = write_csv(tmp_path / "ok.csv", "customer_id,timestamp,amount\nA,2023-01-01,10\nA,2026-01-02,10\n")
    assert load(today).report.ok
    customers = write_csv(tmp_path / "c.csv", "customer_id,birth_date\nA,1899-12-31\n")
    message = error_text(today, customers=customers)
    assert "column birth_date has 1 date in the future (after 2026-01-02) or before 1900" in message
