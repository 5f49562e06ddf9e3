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


def outcomes(carted_hits: int, carted_misses: int, item: str = "toys") -> pd.DataFrame:
    """Interest at the window's start and whether it was bought next: carts of `item`, no views."""
    n = carted_hits + carted_misses
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "item": [item] * n,
            "carted": [True] * n,
            "bought_next": [True] * carted_hits + [False] * carted_misses,
        }
    )


def interest(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "item", "carted", "last_date"])
    frame["last_date"] = pd.to_datetime(frame["last_date"]).dt.date
    return frame


def with_interest(found: pd.DataFrame) -> CoPurchase:
    counts_ = counts()
    counts_.interest = found
    return counts_


def test_a_carted_item_not_bought_is_offered_first_with_its_date():
    # Half of 40 carts of toys were bought next; the prior, 51 / 502, expects 4.06: lift 21 / 5.06.
    model = CrossSell(top_k=2, regular_orders=2, min_pair_customers=10).fit(with_interest(outcomes(20, 20)))
    assert (
        model.interest_lift_["carted"] > 4 and model.interest_lift_["viewed"] == 1.0
    )  # no views: no evidence
    seen = interest([("A", "toys", True, "2025-03-02"), ("A", "fashion", True, "2025-03-01")])
    ranked = model.rank(bought([("A", "fashion", 3)]), interest=seen)
    # Toys rise above shoes (her complement); fashion, carted too, is hers regularly: never offered.
    assert ranked["item"].tolist() == ["toys", "shoes"]
    out = model.predict(bought([("A", "fashion", 3)]), interest=seen).set_index("customer_id")
    assert out.loc["A", "cross_sell_reason"].startswith(
        "toys: carted on 2025-03-02, not bought (4.15x likelier"
    )


def test_interest_that_was_not_bought_next_before_is_no_reason():
    model = CrossSell(top_k=2, regular_orders=2, min_pair_customers=10).fit(with_interest(outcomes(0, 40)))
    assert model.interest_lift_["carted"] < 1
    seen = interest([("A", "toys", True, "2025-03-02")])
    out = model.predict(bought([("A", "fashion", 3)]), interest=seen)
    assert "carted" not in out.loc[0, "cross_sell_reason"]


def test_without_event_items_the_suggestions_are_as_before():
    plain = CrossSell(top_k=3, regular_orders=2, min_pair_customers=10).fit(counts())
    assert plain.interest_lift_ == {}
    customers = bought([("A", "fashion", 1), ("B", "toys", 1)])
    seen = interest([("A", "toys", True, "2025-03-02")])
    pd.testing.assert_frame_equal(plain.predict(customers, interest=seen), plain.predict(customers))
    # Interest on, but the customer has none: her suggestions do not change either.
    model = CrossSell(top_k=3, regular_orders=2, min_pair_customers=10).fit(with_interest(outcomes(20, 20)))
    pd.testing.assert_frame_equal(model.predict(customers, interest=seen.iloc[:0]), plain.predict(customers))
