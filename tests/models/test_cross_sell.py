"""Cross-sell suggestions: complements rise above popular items, what is bought regularly is never offered."""

from __future__ import annotations

import pandas as pd

from models.cross_sell import CoPurchase, CrossSell, recall_at_k


def counts(products: pd.DataFrame | None = None) -> CoPurchase:
    # 1,000 customers; "fashion" is the most popular, but "shoes" follows "fashion" far more than chance.
    items = pd.DataFrame({"item": ["fashion", "books", "shoes", "toys"], "n_customers": [600, 400, 200, 150]})
    return CoPurchase(
        items=items,
        n_customers=1000,
        sources=items.assign(n_customers=items["n_customers"] // 2),
        n_sources=500,
        next_items=pd.DataFrame(
            {"item": ["fashion", "books", "shoes", "toys"], "n_customers": [150, 120, 60, 50]}
        ),
        next_pairs=pd.DataFrame(
            {
                "item": ["fashion", "fashion", "books", "books"],
                "other": ["shoes", "books", "toys", "fashion"],
                "n_customers": [54, 20, 40, 3],  # books -> fashion is below the support: no evidence
            }
        ),
        products=products,
    )


def bought(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "item", "n_orders"])


def test_a_complement_of_what_she_buys_comes_before_a_popular_item():
    model = CrossSell(top_k=2, regular_orders=2, min_pair_customers=10).fit(counts())
    ranked = model.rank(bought([("A", "fashion", 3)]))
    assert ranked["item"].tolist() == ["shoes", "books"]  # fashion is hers regularly: never offered
    assert ranked.loc[0, "source"] == "fashion" and ranked.loc[0, "lift"] > 1
    baseline = model.rank(bought([("A", "fashion", 3)]), rules=False)
    assert baseline["item"].tolist() == ["books", "shoes"]  # most popular first


def test_reasons_quote_the_rule_or_the_popularity_and_name_a_product():
    products = pd.DataFrame(
        {"category": ["shoes", "shoes", "books"], "product_id": ["S1", "S2", "B1"], "n_customers": [5, 9, 4]}
    )
    model = CrossSell(top_k=3, regular_orders=2, min_pair_customers=10).fit(counts(products))
    out = model.predict(bought([("A", "fashion", 1), ("B", "toys", 1)])).set_index("customer_id")
    assert "shoes (e.g. S2)" in out.loc["A", "cross_sell"].split("; ")
    assert "bought next by 18% of fashion buyers (1.48x" in out.loc["A", "cross_sell_reason"]
    assert "popular (bought by" in out.loc["B", "cross_sell_reason"]


def test_recall_and_hit_rate_at_k():
    ranked = pd.DataFrame({"customer_id": ["A", "A", "B"], "rank": [1, 2, 1], "item": ["x", "y", "z"]})
    later = pd.DataFrame({"customer_id": ["A", "A", "B"], "item": ["y", "w", "q"]})
    result = recall_at_k(ranked, later, k=2)
    assert result == {"hit_rate": 0.5, "recall": 0.25, "n_customers": 2.0}
