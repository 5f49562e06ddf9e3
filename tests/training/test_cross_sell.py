"""Suggestions for the score table: one row per customer, and a reason that is true when there is none."""

from __future__ import annotations

import pandas as pd

from models.cross_sell import CoPurchase, CrossSell
from training.cross_sell import FittedCrossSell, suggestions


def test_no_suggestion_says_whether_she_bought_nothing_or_already_buys_everything_regularly():
    items = pd.DataFrame({"item": ["fashion", "books"], "n_customers": [10, 5]})
    empty = pd.DataFrame({"item": [], "other": [], "n_customers": []})
    counts = CoPurchase(items, 12, items, 12, items, empty)
    model = CrossSell(top_k=3, regular_orders=2, min_pair_customers=10).fit(counts)
    bought = pd.DataFrame(
        [("A", "fashion", 3), ("A", "books", 2), ("C", "fashion", 1)],
        columns=["customer_id", "item", "n_orders"],
    )
    out = suggestions(FittedCrossSell(model, bought, "category"), pd.Series(["A", "B", "C"]))
    out = out.set_index("customer_id")
    assert out.loc["C", "cross_sell"] == "fashion; books"  # once is not regularly: offered again
    assert out.loc["B", "cross_sell_reason"] == "no suggestion: no purchase with a category yet"
    assert out.loc["A", "cross_sell"] == ""
    assert (
        out.loc["A", "cross_sell_reason"]
        == "no suggestion: she already buys every category there is regularly"
    )
