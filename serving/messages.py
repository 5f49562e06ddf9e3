"""How request problems are worded for people: the API's error bodies and `clv export`'s messages.

Kept apart from serving.api so that the command line can use it without loading the service.
"""

from __future__ import annotations

EXAMPLE = 'send a JSON object, e.g. {"customer_ids": ["c1", "c2"]}'


def describe_validation(errors) -> str:
    """One readable sentence per problem, e.g. "customer_ids: Input should be a valid list"."""
    parts = []
    for error in errors:
        if error.get("type") == "json_invalid":
            return f"malformed JSON body ({error.get('ctx', {}).get('error', 'cannot parse')}); {EXAMPLE}"
        location = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        message = error.get("msg", "invalid")
        if error.get("type") == "missing":
            if location == "body":
                return f"the request has no body; {EXAMPLE}"
            message = "this field is required"
        parts.append(f"{location}: {message}")
    return "; ".join(parts)
