"""The marketer page's segment table says what the rows say."""

from __future__ import annotations

import pandas as pd

from serving.page import segment_table


def test_the_segment_table_shows_the_action_its_rows_carry():
    """An active_low_value customer without a cross-sell suggestion is nurtured; the page said "cross_sell"
    for 7 rows that all said nurture (a log without categories)."""
    scores = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "segment": ["active_low_value", "active_low_value", "active_low_value", "vip", "vip"],
            "next_best_action": ["nurture", "nurture", "cross_sell", "upsell", "upsell"],
            "predicted_clv": [1.0, 2.0, 3.0, 50.0, 70.0],
            "churn_prob": [0.1, 0.3, 0.2, 0.1, 0.3],
        }
    )
    table = [(r["segment"], r["action"], r["customers"], r["total_value"]) for r in segment_table(scores)]
    assert table == [
        ("vip", "upsell", 2, 120.0),
        ("active_low_value", "cross_sell", 1, 3.0),
        ("active_low_value", "nurture", 2, 3.0),
    ]
