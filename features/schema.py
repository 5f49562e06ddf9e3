"""The data contract: canonical table names, columns and types, in one place.

Every stage boundary is a table declared here. Loading (`features.contract`) maps a shop's
files onto these names and types; everything downstream may rely on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TableSchema:
    """Columns of one input table: required ones must be present, optional ones may be."""

    name: str
    required: dict[str, str]
    optional: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> dict[str, str]:
        return {**self.required, **self.optional}


# Types are logical: "string", "timestamp" (naive, UTC), "date", "float64".
TRANSACTIONS = TableSchema(
    name="transactions",
    required={"customer_id": "string", "timestamp": "timestamp"},
    # Without `amount` every order is worth 1 (features.contract), so values are counted in orders.
    optional={
        "amount": "float64",
        "order_id": "string",
        "quantity": "float64",
        "product_id": "string",
        "category": "string",
        "channel": "string",
    },
)

EVENTS = TableSchema(
    name="events",
    required={"customer_id": "string", "timestamp": "timestamp", "event_type": "string"},
    # What a product_view, add_to_cart or checkout_start was about: "viewed or carted, not bought"
    # cross-sell evidence (features.interest) when the transactions name their items the same way.
    optional={"product_id": "string", "category": "string"},
)

CUSTOMERS = TableSchema(
    name="customers",
    required={"customer_id": "string"},
    optional={
        "signup_date": "date",
        "acquisition_channel": "string",
        "country": "string",
        "birth_date": "date",
        "email": "string",
    },
)

SCHEMAS = {s.name: s for s in (TRANSACTIONS, EVENTS, CUSTOMERS)}

# Event types the behavioural features count; other event types are kept but not featurised.
EVENT_TYPES = (
    "session_start",
    "page_view",
    "product_view",
    "add_to_cart",
    "checkout_start",
    "email_open",
    "email_click",
    "support_ticket",
    "review",
)

# Columns every score table carries (README, "Score columns"); `predicted_profit` is added when a margin is set.
SCORE_COLUMNS = (
    "customer_id",
    "predicted_clv",
    "predicted_clv_low",
    "predicted_clv_high",
    "churn_prob",
    "p_alive",
    "expected_orders",
    "expected_aov",
    "segment",
    "next_best_action",
    "value_decile",
    "next_order_date",
    "avg_days_between_orders",
    "next_order_reason",
    "cross_sell",
    "cross_sell_reason",
    "as_of",
    "horizon_days",
    "model_version",
)
# Added by the scorer, not by the model: when and with what the scores were made.
SCORER_COLUMNS = ("as_of", "horizon_days", "model_version")
# Added by the scorer: the date from the model's `days_to_next_order` and as_of, the suggestions from the
# shop's purchases by as_of (`training.suggestions`).
DERIVED_COLUMNS = ("next_order_date", "cross_sell", "cross_sell_reason")
# Score columns added after score tables were first written: an older table is still served, these empty.
LATER_SCORE_COLUMNS = (
    "next_order_date",
    "avg_days_between_orders",
    "next_order_reason",
    "cross_sell",
    "cross_sell_reason",
)
