"""How request problems are worded for people: the API's error bodies and `clv export`'s messages, and the
refusals the command line and the service share.

Kept apart from serving.api so that the command line can use it without loading the service.
"""

from __future__ import annotations

import re

from features.schema import SCHEMAS

# What a valid body looks like, by endpoint, for the messages about a missing or unreadable body.
BODY_EXAMPLES = {
    "/predict": '{"customer_ids": ["c1", "c2"]}',
    "/predict_history": '{"transactions": [{"customer_id": "c1", "timestamp": "2025-03-01", "amount": 19.90}]}',
    "/export": '{"segment": ["vip"], "top": "500"}',
    "/campaigns": '{"campaign": "win_back"} (or {} for every list)',
}


# Acquisition economics (`clv economics`, `GET /economics`) on a log without amounts. Spend is money; such a
# log's model counts customer value in orders (each worth 1), so every ratio of the two would be a wrong number.
ECONOMICS_NEEDS_AMOUNTS = (
    "no acquisition economics for this log: it has no amount column, so the model values customers in "
    "orders (every order counts as 1), while spend is money; CLV:CAC, payback months and profit CLV would "
    "divide orders by money. Fix: use a transactions log with an amount per order (a column of another "
    "name is mapped with --map amount=COLUMN or [data] mapping), then `clv train` and `clv score` on it."
)


# How to send a query parameter right, by name, for the messages about a bad one.
QUERY_FIXES = {
    "retention_lift": "send percentage points from -100 to 100, e.g. /economics?retention_lift=5",
}


def example(path: str = "/predict") -> str:
    """How to send a body to the endpoint at `path` (that of /predict for other paths)."""
    body = BODY_EXAMPLES.get(path.rstrip("/"), BODY_EXAMPLES["/predict"])
    return f"send a JSON object, e.g. {body}"


# A history of 5,000 bad rows needs a few examples, not 5,000 sentences.
SHOWN_PROBLEMS = 5


def describe_validation(errors, path: str = "/predict", names: dict[str, str] | None = None) -> str:
    """One readable sentence per problem, e.g. "transactions.amount, row 3: true is not a number; ...";
    `path` is the endpoint, whose body example a missing or malformed body is answered with.
    `names`: field -> what the caller calls it (the command line's options, e.g. churn_min -> --churn-min),
    for the field a problem is in, and in the message of a problem of the whole body (no "body: " then)."""
    parts = []
    for error in errors:
        if error.get("type") == "json_invalid":
            return (
                f"malformed JSON body ({error.get('ctx', {}).get('error', 'cannot parse')}); {example(path)}"
            )
        loc = [p for p in error.get("loc", ()) if p != "body"]
        message = error.get("msg", "invalid").removeprefix("Value error, ")
        if error.get("type") == "missing":
            if not loc:
                return f"the request has no body; {example(path)}"
            message = "this field is required"
        if not loc and error.get("type") in _NOT_AN_OBJECT:
            return f"the body is {_json_kind(error.get('input'))}, not a JSON object; {example(path)}"
        if error.get("type") == "extra_forbidden" and len(loc) == 3 and loc[0] in SCHEMAS:
            message = f"is not a column of {loc[0]}; its columns are {', '.join(SCHEMAS[loc[0]].columns)}"
        if len(loc) == 2 and loc[0] == "query" and loc[1] in QUERY_FIXES:
            message = f"{message}; {QUERY_FIXES[loc[1]]}"
        # "transactions is empty", not "transactions: is empty": a message that goes on from its field.
        sep = " " if message.startswith("is ") else ": "
        parts.append(_renamed(loc, message, names, sep) if names else f"{_where(loc)}{sep}{message}")
    shown = "; ".join(parts[:SHOWN_PROBLEMS])
    return shown + (
        f" (and {len(parts) - SHOWN_PROBLEMS} more problems)" if len(parts) > SHOWN_PROBLEMS else ""
    )


# Pydantic's error types for a body that is valid JSON but not an object (null, a list, a number...).
_NOT_AN_OBJECT = {"model_type", "model_attributes_type", "dict_type"}


def _json_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    return "not an object"


def _where(loc: list) -> str:
    """`transactions.amount, row 3` for a cell of a table (rows count from 1), `a.b.0` otherwise."""
    if len(loc) == 3 and loc[0] in SCHEMAS and isinstance(loc[1], int):
        return f"{loc[0]}.{loc[2]}, row {loc[1] + 1}"
    return ".".join(str(p) for p in loc) or "body"


def _renamed(loc: list, message: str, names: dict[str, str], sep: str = ": ") -> str:
    """A problem where the fields are named as in `names`: "--churn-min: ..." for a field, and the
    fields in the message of the whole body's problem ("--churn-min (0.9) is above --churn-max (0.2)")."""
    if loc:
        where = _where(loc)
        return f"{names.get(where, where)}{sep}{message}"
    return re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b", lambda m: names[m.group(1)], message)
