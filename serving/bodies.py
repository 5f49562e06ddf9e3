"""Request and response bodies of the HTTP API, and the checks every row of a history passes.

The rows of `POST /predict_history` are typed from the data contract (`features.schema`): a column
is required or optional there, and its logical type decides what a JSON value may be. The checks are
as strict as `clv validate` is with files, and name the table, column, row and fix:

- ids and text: a JSON string or whole number (not a float, boolean, list or object);
- dates and times: ISO 8601 text only (2025-03-01, 2025-03-01T10:00:00+01:00; offsets are converted
  to UTC), from 1900 up to today; no epoch numbers, no "02/11/2025" (day or month first?);
- numbers: finite JSON numbers (or plain numeric text) no larger than 1e12 in size; not booleans;
- event types: one of `features.schema.EVENT_TYPES`.

Validated rows become columns (`to_columns`), which `serving.batching` stacks into one table per
batch for `features.request.compute_features_for_columns`.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import time
from functools import partial
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    create_model,
    field_validator,
)

from config import CAMPAIGN_NAMES
from features.contract import EARLIEST, ISO_TIMESTAMP, PLAIN_NUMBER, WHITESPACE, latest_allowed
from features.contract import MAX_ABS_AMOUNT as MAX_ABS_NUMBER
from features.schema import CUSTOMERS, EVENT_TYPES, EVENTS, TRANSACTIONS, TableSchema

_ISO = re.compile(ISO_TIMESTAMP, re.ASCII)
_NUMBER = re.compile(PLAIN_NUMBER, re.ASCII)
_ISO_HOW = "send ISO 8601 text, e.g. 2025-03-01 or 2025-03-01T10:00:00+01:00"


def _latest() -> dt.datetime:
    return _latest_in(int(time.time()))


@functools.lru_cache(maxsize=1)
def _latest_in(second: int) -> dt.datetime:
    # Once per second, not once per value: reading the clock was half the cost of checking a time.
    return latest_allowed(dt.datetime.fromtimestamp(second + 1, dt.UTC).replace(tzinfo=None))


def _kind_of(value: Any) -> str:
    # JSON's 1e2 is a float too: "a fraction (100.0)" named the wrong fault.
    decimal = "a number with a decimal point or an exponent"
    return {bool: "a boolean", dict: "an object", list: "a list", float: decimal}.get(
        type(value), type(value).__name__
    )


def parse_id(value: Any, required: bool = True) -> str | None:
    """Ids and text columns: JSON strings or whole numbers, as text, trimmed as the data contract trims a
    file's (an event type "add_to_cart " counted in a file and not in a request)."""
    if value is None:
        return _absent(required, "text or a whole number")
    if isinstance(value, str):
        if not (text := value.strip(WHITESPACE)):
            return _absent(required, "text or a whole number")
        return text
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(
        f"{_kind_of(value)} ({_show(value)}) is not an id or text; send a string or a whole number"
    )


def parse_number(value: Any, required: bool = True) -> float | None:
    """Amounts and quantities: finite numbers within +-MAX_ABS_NUMBER."""
    if value is None:
        return _absent(required, "a number")
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(
            f"{_kind_of(value)} ({_show(value)}) is not a number; send a plain number such as 19.90 "
            "(no currency sign, a dot as decimal separator)"
        )
    # Compared before converting: a 500-digit integer has no float.
    if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > MAX_ABS_NUMBER:
        raise ValueError(
            f"{_show(value)} is not a plausible value; send a finite number between "
            f"-{MAX_ABS_NUMBER:.0e} and {MAX_ABS_NUMBER:.0e} (check the unit and the column)"
        )
    return float(value)


def parse_timestamp(value: Any, required: bool = True) -> dt.datetime | None:
    """ISO 8601 text, as a naive UTC datetime from 1900 to today."""
    if value is None:
        return _absent(required, "an ISO 8601 date or time")
    if not isinstance(value, str):
        what = "an epoch number" if isinstance(value, int | float) and not isinstance(value, bool) else None
        raise ValueError(f"{what or _kind_of(value)} ({_show(value)}) is not a date; {_ISO_HOW}")
    text = value.strip()
    try:
        if not _ISO.fullmatch(text):
            raise ValueError
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"cannot read {_show(value)} as a date; {_ISO_HOW}") from None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    if not EARLIEST <= stamp <= _latest():
        raise ValueError(
            f"{text} is {'before 1900' if stamp < EARLIEST else 'in the future'}; send dates between "
            f"1900-01-01 and today (check the year)"
        )
    return stamp


def parse_date(value: Any, required: bool = True) -> dt.date | None:
    stamp = parse_timestamp(value, required)
    return None if stamp is None else stamp.date()


def parse_event_type(value: Any, required: bool = True) -> str | None:
    text = parse_id(value, required)
    if text is not None and text not in EVENT_TYPES:
        raise ValueError(f"unknown event type {_show(text)}; use one of {', '.join(EVENT_TYPES)}")
    return text


def _absent(required: bool, what: str) -> None:
    if required:
        raise ValueError(f"is empty; every row needs {what} here")
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-10:]} ({len(text)} characters)"


_ID_SCHEMA = {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]}
_TIME_SCHEMA = {"type": "string", "format": "date-time", "examples": ["2025-03-01T10:00:00+01:00"]}
_KINDS = {
    "string": (parse_id, _ID_SCHEMA),
    "float64": (parse_number, {"type": "number", "minimum": -MAX_ABS_NUMBER, "maximum": MAX_ABS_NUMBER}),
    "timestamp": (parse_timestamp, _TIME_SCHEMA),
    "date": (parse_date, {"type": "string", "format": "date", "examples": ["2025-03-01"]}),
    "event_type": (parse_event_type, {"type": "string", "enum": list(EVENT_TYPES)}),
}


def _row_model(schema: TableSchema) -> type[BaseModel]:
    """A Pydantic model of one row of a contract table (unknown columns are refused)."""
    fields: dict[str, Any] = {}
    for name, kind in schema.columns.items():
        parse, json_schema = _KINDS["event_type" if name == "event_type" else kind]
        required = name in schema.required
        if not required:
            json_schema = {"anyOf": [json_schema, {"type": "null"}]}
        annotated = Annotated[
            Any, PlainValidator(partial(parse, required=required)), WithJsonSchema(json_schema)
        ]
        fields[name] = (annotated, ... if required else None)
    return create_model(
        f"{schema.name.title()}Row",
        __config__=ConfigDict(extra="forbid", title=f"{schema.name} row"),
        **fields,
    )


TransactionRow = _row_model(TRANSACTIONS)
EventRow = _row_model(EVENTS)
CustomerRow = _row_model(CUSTOMERS)


Columns = dict[str, list]


def to_columns(rows: list[BaseModel], schema: TableSchema) -> Columns:
    """Validated rows as {column: values}, with the required columns and the optional ones any row has.

    Plain lists, not a DataFrame: a frame costs about a millisecond to build whatever its size, which
    per request was a third of the service's time under load; the batch goes from lists to Arrow.
    """
    given = set().union(*(row.model_fields_set for row in rows)) if rows else set()
    return {
        c: [getattr(row, c) for row in rows] for c in schema.columns if c in schema.required or c in given
    }


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_ids: list[Annotated[Any, PlainValidator(parse_id), WithJsonSchema(_ID_SCHEMA)]] = Field(
        description="customer ids as in the score table (strings or whole numbers)"
    )


class HistoryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    as_of: Annotated[
        Any,
        PlainValidator(partial(parse_date, required=False)),
        WithJsonSchema({"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]}),
    ] = Field(None, description="cut-off date (ISO 8601); default: the last transaction's date")
    transactions: list[TransactionRow] = Field(description="rows of the transactions contract")  # type: ignore[valid-type]
    events: list[EventRow] | None = Field(  # type: ignore[valid-type]
        None,
        description="the customers' events; [] when they have none (needed if the model was trained with events)",
    )
    customers: list[CustomerRow] | None = Field(  # type: ignore[valid-type]
        None, description="the customers' attributes; [] when there are none"
    )

    @field_validator("transactions")
    @classmethod
    def _not_empty(cls, rows):
        if not rows:
            raise ValueError(f"is empty; send at least one row with {', '.join(TRANSACTIONS.required)}")
        return rows


class CampaignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign: str | None = Field(
        None,
        description=f"one of {', '.join(CAMPAIGN_NAMES)}: that list as CSV; none: a summary of every list",
    )

    @field_validator("campaign")
    @classmethod
    def _known_campaign(cls, value):
        if value is not None and value not in CAMPAIGN_NAMES:
            raise ValueError(f"unknown campaign {str(value)[:40]!r}; choose from {', '.join(CAMPAIGN_NAMES)}")
        return value


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer of the API."""

    error: str = Field(description="what is wrong and how to fix it")
    unknown_ids: list[str] | None = Field(None, description="POST /predict: the ids not in the score table")


class PredictResponse(BaseModel):
    predictions: list[dict[str, Any]] = Field(
        description="score-table rows of the known ids, in request order"
    )
    unknown_ids: list[str]


class HistoryResponse(BaseModel):
    model_version: str
    as_of: str
    predictions: list[dict[str, Any]] = Field(
        description="one row per customer with a transaction by as_of (a refund-only one is no_purchase)"
    )
    left_out: list[str] = Field(description="the customers sent whose transactions all come after as_of")


class ReloadResponse(BaseModel):
    reloaded: bool
    model_version: str
    customers: int
