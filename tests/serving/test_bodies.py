"""Request bodies on their own: what a history row may hold, and how a refusal is worded (no model)."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from pydantic import ValidationError

from features.request import compute_features_for_columns, compute_features_for_request
from features.schema import EVENT_TYPES, EVENTS, TRANSACTIONS
from serving.bodies import HistoryRequest, PredictRequest, to_columns
from serving.messages import describe_validation

GOOD = {"customer_id": "a", "timestamp": "2025-01-01", "amount": 5}
SOON = (dt.date.today() + dt.timedelta(days=30)).isoformat()


def refusal(body: dict | str) -> str:
    """The 400 message a body gets (it must get one)."""
    with pytest.raises(ValidationError) as caught:
        if isinstance(body, str):
            HistoryRequest.model_validate_json(body)
        else:
            HistoryRequest.model_validate(body)
    return describe_validation(caught.value.errors())


def second_row(**change) -> dict:
    return {"transactions": [GOOD, {**GOOD, **change}]}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        # Values no order has: each names the column, the row and the fix.
        ({"amount": 10**500}, "transactions.amount, row 2: 10000000000000000000...0000000000 (501"),
        (
            {"amount": 1e308},
            "transactions.amount, row 2: 1e+308 is not a plausible value; send a finite number",
        ),
        ({"amount": 2**64}, "transactions.amount, row 2: 18446744073709551616 is not a plausible value"),
        (
            {"amount": True},
            "transactions.amount, row 2: a boolean (True) is not a number; send a plain number",
        ),
        ({"amount": "12,50"}, "transactions.amount, row 2: str ('12,50') is not a number"),
        ({"quantity": float("nan")}, "transactions.quantity, row 2: nan is not a plausible value"),
        # Dates: ISO 8601 text only, from 1900 to today.
        (
            {"timestamp": "02/11/2025"},
            "transactions.timestamp, row 2: cannot read '02/11/2025' as a date; send ISO",
        ),
        (
            {"timestamp": 1735689600000},
            "transactions.timestamp, row 2: an epoch number (1735689600000) is not a date",
        ),
        ({"timestamp": "20251102"}, "cannot read '20251102' as a date"),
        ({"timestamp": "0001-01-01"}, "transactions.timestamp, row 2: 0001-01-01 is before 1900"),
        ({"timestamp": "9999-12-31T00:00:00Z"}, "9999-12-31T00:00:00Z is in the future; send dates between"),
        ({"timestamp": SOON}, f"{SOON} is in the future"),
        # Ids: text or whole numbers.
        (
            {"customer_id": {"a": 1}},
            "transactions.customer_id, row 2: an object ({'a': 1}) is not an id or text",
        ),
        ({"customer_id": ["a"]}, "a list (['a']) is not an id"),
        ({"customer_id": 1.5}, "a number with a decimal point or an exponent (1.5) is not an id"),
        ({"customer_id": False}, "a boolean (False) is not an id"),
        ({"customer_id": 1e2}, "a number with a decimal point or an exponent (100.0) is not an id"),
        ({"customer_id": " "}, "transactions.customer_id, row 2 is empty"),
        ({"order_id": {"x": 1}}, "transactions.order_id, row 2: an object"),
        ({"ammount": 5}, "transactions.ammount, row 2 is not a column of transactions; its columns are"),
    ],
)
def test_bad_transaction_values_are_refused_with_column_row_and_fix(change, says):
    assert says in refusal(second_row(**change))


def test_a_500_digit_amount_in_json_text_is_refused():
    body = '{"transactions": [{"customer_id": "a", "timestamp": "2025-01-01", "amount": 1%s}]}' % ("0" * 500)
    assert "transactions.amount, row 1" in refusal(body)


def test_unknown_event_types_are_refused_with_the_known_ones():
    body = {
        "transactions": [GOOD],
        "events": [{"customer_id": "a", "timestamp": "2025-01-01", "event_type": "x"}],
    }
    assert (
        f"events.event_type, row 1: unknown event type 'x'; use one of {', '.join(EVENT_TYPES)}"
        in refusal(body)
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"as_of": "9999-01-01", "transactions": [GOOD]}, "as_of: 9999-01-01 is in the future"),
        ({"as_of": 20250101, "transactions": [GOOD]}, "as_of: an epoch number"),
        ({"transactions": []}, "transactions is empty; send at least one row with customer_id, timestamp"),
        (
            {"transactions": [GOOD], "customers": [{"customer_id": "a", "birth_date": "1850-01-01"}]},
            "before 1900",
        ),
    ],
)
def test_bad_cut_offs_and_tables_are_refused(body, says):
    assert says in refusal(body)


def test_many_bad_rows_are_summed_up_not_listed():
    message = refusal({"transactions": [{**GOOD, "amount": True}] * 100})
    assert message.count("is not a number") == 5 and message.endswith("(and 95 more problems)")


def test_good_rows_become_contract_frames():
    body = HistoryRequest.model_validate(
        {
            "transactions": [
                {"customer_id": 42, "timestamp": "2025-11-02T10:15:00+01:00", "amount": "59.90"},
                {"customer_id": "b", "timestamp": "2025-12-14", "amount": -5, "order_id": 7},
            ],
            "events": [],
        }
    )
    columns = to_columns(body.transactions, TRANSACTIONS)
    assert list(columns) == [*TRANSACTIONS.required, "amount", "order_id"]
    assert columns["customer_id"] == ["42", "b"]
    # Offsets are converted to UTC, as in the batch contract.
    assert columns["timestamp"] == [dt.datetime(2025, 11, 2, 9, 15), dt.datetime(2025, 12, 14)]
    assert columns["amount"] == [59.9, -5.0]
    assert columns["order_id"] == [None, "7"]
    assert body.events == []


def test_ids_and_text_are_trimmed_as_the_data_contract_trims_a_file():
    """A file's " 42" is customer 42 and its event type "add_to_cart " a cart (features.contract); a request
    kept both as sent, so the two paths counted different customers and events."""
    body = HistoryRequest.model_validate(
        {
            "transactions": [{**GOOD, "customer_id": " 42\t"}],
            "events": [{"customer_id": "42 ", "timestamp": "2025-01-01", "event_type": "add_to_cart "}],
        }
    )
    assert to_columns(body.transactions, TRANSACTIONS)["customer_id"] == ["42"]
    events = to_columns(body.events, EVENTS)
    assert events["customer_id"] == ["42"] and events["event_type"] == ["add_to_cart"]
    assert PredictRequest.model_validate({"customer_ids": [" 42"]}).customer_ids == ["42"]
    assert "customer_id" in refusal({"transactions": [{**GOOD, "customer_id": " \t "}]})


def test_predict_ids_are_text_or_whole_numbers():
    assert PredictRequest.model_validate({"customer_ids": ["a", 7]}).customer_ids == ["a", "7"]
    with pytest.raises(ValidationError) as caught:
        PredictRequest.model_validate_json(json.dumps({"customer_ids": ["a", {"b": 1}]}))
    assert "customer_ids.1: an object" in describe_validation(caught.value.errors())


def test_a_row_without_its_amount_in_a_log_with_amounts_is_refused_by_the_feature_path():
    """`amount` is optional for a whole history (each order then counts as 1), not for one row of it."""
    body = HistoryRequest.model_validate(second_row(amount=None))
    frame = pd.DataFrame(to_columns(body.transactions, TRANSACTIONS))
    with pytest.raises(ValueError, match=r"transactions.amount, row 2: .* not a finite number"):
        compute_features_for_request(frame, dt.date(2025, 12, 31))


def test_events_may_name_their_items_as_the_files_may():
    """category and product_id of events: optional, typed and refused as the transactions' are (one row model
    per contract table), and the features of a history do not depend on them."""
    cart = {"customer_id": "a", "timestamp": "2025-01-02", "event_type": "add_to_cart"}
    body = HistoryRequest.model_validate(
        {"transactions": [GOOD], "events": [{**cart, "category": "shoes", "product_id": 42}, cart]}
    )
    columns = to_columns(body.events, EVENTS)
    assert columns["category"] == ["shoes", None] and columns["product_id"] == ["42", None]
    plain = to_columns(
        HistoryRequest.model_validate({"transactions": [GOOD], "events": [cart, cart]}).events, EVENTS
    )
    transactions = to_columns(body.transactions, TRANSACTIONS)
    as_of = dt.date(2025, 1, 31)
    pd.testing.assert_frame_equal(
        compute_features_for_columns(transactions, as_of, columns),
        compute_features_for_columns(transactions, as_of, plain),
    )
    assert "events.category, row 1: an object ({'x': 1}) is not an id or text" in refusal(
        {"transactions": [GOOD], "events": [{**cart, "category": {"x": 1}}]}
    )
    assert (
        "events.product_id, row 1: a number with a decimal point or an exponent (1.5) is not an id"
        in refusal({"transactions": [GOOD], "events": [{**cart, "product_id": 1.5}]})
    )
