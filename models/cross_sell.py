"""Cross-sell suggestions: what to offer a customer next, from what customers bought next before.

Item-to-item association rules (Agrawal, Imielinski and Swami 1993; lift as in Brin et al. 1997,
"Dynamic itemset counting and implication rules for market basket data") read in time order, so a
rule says what buying i is followed by, which is what a suggestion is for. Over the window (S, D]
of the last `window_days` before the cut-off D (`features.copurchase`), for the N customers who
bought by S, n_i of whom had item i by S, and m_j of whom bought j in the window (not regularly
before), m_ij of them after having i:
- confidence(i -> j) = m_ij / n_i: the share of i's buyers who bought j next;
- lift(i -> j) = confidence / P(j), with P(j) = (m_j + 1) / (N + 2) (Laplace): how much likelier j
  came next among i's buyers than among all; i -> i is "bought again".
Rules seen for fewer than `min_pair_customers` customers are not used (lift 1: no evidence).

A customer's score for an item j she does not buy regularly (in `regular_orders` orders or more) is
the naive Bayes combination of P(j) and the evidence of what she bought, S:
log P(j) + sum over i in S of log lift(i -> j): P(j | S) up to a factor common to every j, when the
items of S are independent given j. So an item her purchases say nothing about ranks by how often it
comes next, and a complement of what she buys rises above it. Each suggestion's reason quotes her
strongest rule (highest lift above 1), or the item's popularity when no rule speaks for it. The
popularity baseline of the backtest ranks by the share of customers who bought each item by D; it is
what a model serves where its backtest found it better (`training.cross_sell`).

A log without items gets no suggestions (the reason says so); a log shorter than the window has no
rules, and suggestions are then the popular items. Items are categories (or products when the log
has no category); with products too, each suggested category names its best-selling product.

Interest (`features.interest`, when events name their items): an item a customer viewed or carted
in the last days and did not buy since is one more piece of evidence, log lift(carted) or
log lift(viewed), added to its score. Each lift is learned before the cut-off, over the window
(S, D]: over the pairs (customer, item) of interest at S, the number bought next over the number
the prior alone expects, sum of P(item), smoothed as (bought + 1) / (expected + 1), so a few pairs
say little and no pairs give lift 1. Such a suggestion's reason says when she carted (or viewed) it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

NO_ITEMS = "no suggestion: the transactions have no category or product column"
RANKED_COLUMNS = (
    "customer_id", "rank", "item", "score", "source", "confidence", "lift", "seen", "seen_date", "seen_lift"
)  # fmt: skip
CARTED, VIEWED = "carted", "viewed"


@dataclass
class CoPurchase:
    """The counts suggestions are fitted on (`features.copurchase`), at cut-off D with window start S."""

    items: pd.DataFrame  # item, n_customers: buyers of each item by D
    n_customers: int  # customers with an item by D
    sources: pd.DataFrame  # item, n_customers: buyers of each item by S
    n_sources: int  # customers with an item by S (N of the module docstring)
    next_items: pd.DataFrame  # item, n_customers (m_j)
    next_pairs: pd.DataFrame  # item, other, n_customers (m_ij)
    products: pd.DataFrame | None = None  # category, product_id, n_customers
    # customer_id, item, carted, bought_next (features.interest.interest_outcomes); None: events name no items
    interest: pd.DataFrame | None = None


class CrossSell(BaseEstimator):
    """Suggestions from time-ordered association rules. `top_k` per customer; `regular_orders`: orders
    with an item from which the customer buys it regularly (excluded); `min_pair_customers`: support of
    a used rule."""

    def __init__(self, top_k: int = 3, regular_orders: int = 2, min_pair_customers: int = 10):
        self.top_k = top_k
        self.regular_orders = regular_orders
        self.min_pair_customers = min_pair_customers

    def fit(self, counts: CoPurchase) -> CrossSell:
        """Sets rules_ (item, other, confidence, lift), prior_ (P(j) per item, log-scored first),
        popularity_ (share of customers who bought each item by D, most popular first), products_
        (category -> best-selling product) and interest_lift_ ({"carted": lift, "viewed": lift}; empty
        when the counts have no interest)."""
        bought = counts.items.set_index("item")["n_customers"].astype(float)
        share = (bought / max(counts.n_customers, 1)).rename("share").rename_axis("item").reset_index()
        share = share.sort_values(["share", "item"], ascending=[False, True], kind="stable")
        self.popularity_ = share.set_index("item")["share"]
        n = float(counts.n_sources)
        following = counts.next_items.set_index("item")["n_customers"].astype(float)
        if n > 0:
            prior = (following.reindex(self.popularity_.index).fillna(0.0) + 1) / (n + 2)
            self.prior_ = prior.sort_values(ascending=False, kind="stable")
        else:  # no window before the cut-off: how often an item comes next is unknown
            self.prior_ = self.popularity_
        rules = counts.next_pairs[counts.next_pairs["n_customers"] >= self.min_pair_customers].copy()
        having = counts.sources.set_index("item")["n_customers"].astype(float)
        rules["confidence"] = rules["n_customers"] / having.reindex(rules["item"]).to_numpy()
        rules["lift"] = rules["confidence"] / self.prior_.reindex(rules["other"]).to_numpy()
        rules = rules[np.isfinite(rules["lift"]) & (rules["lift"] > 0)]
        self.rules_ = rules[["item", "other", "confidence", "lift"]].reset_index(drop=True)
        self.products_ = {}
        if counts.products is not None and not counts.products.empty:
            best = counts.products.sort_values(
                ["n_customers", "product_id"], ascending=[False, True], kind="stable"
            )
            self.products_ = best.drop_duplicates("category").set_index("category")["product_id"].to_dict()
        self.interest_lift_ = {} if counts.interest is None else self._interest_lift(counts.interest)
        return self

    def _interest_lift(self, outcomes: pd.DataFrame) -> dict[str, float]:
        """Bought next over expected by the prior, per kind of interest, smoothed towards 1."""
        expected = outcomes["item"].map(self.prior_).fillna(self.prior_.min() if len(self.prior_) else 0.0)
        frame = outcomes.assign(expected=expected.astype(float), bought=outcomes["bought_next"].astype(float))
        lifts = {}
        for kind, carted in ((CARTED, True), (VIEWED, False)):
            rows = frame[frame["carted"].astype(bool) == carted]
            lifts[kind] = float((rows["bought"].sum() + 1) / (rows["expected"].sum() + 1))
        return lifts

    def rank(
        self, customer_items: pd.DataFrame, rules: bool = True, interest: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """RANKED_COLUMNS: up to `top_k` suggestions per customer of `customer_items` (customer_id, item,
        n_orders), best first. `score`: log P(j | S) up to a constant; `source`, `confidence`, `lift`: her
        strongest rule for the item (None / NaN without one). `rules=False` gives the popularity baseline.
        `interest` (customer_id, item, carted, last_date: `features.interest.interest_items`) adds the
        learned interest lifts; `seen` ("carted", "viewed" or None), `seen_date` and `seen_lift` say which."""
        check_is_fitted(self, "rules_")
        owned = customer_items[["customer_id", "item", "n_orders"]]
        regular = owned[owned["n_orders"] >= self.regular_orders][["customer_id", "item"]]
        key = ["customer_id", "item"]
        customers = owned["customer_id"].drop_duplicates()
        # Enough popular items to leave top_k after removing the most any customer buys regularly.
        most_regular = int(regular.groupby("customer_id").size().max()) if len(regular) else 0
        prior = self.prior_ if rules else self.popularity_
        popular = prior.sort_values(ascending=False, kind="stable").head(self.top_k + most_regular)
        candidates = pd.DataFrame(
            {
                "customer_id": np.repeat(customers.to_numpy(), len(popular)),
                "item": np.tile(popular.index.to_numpy(), len(customers)),
            }
        )
        evidence = pd.DataFrame(columns=[*key, "evidence", "source", "confidence", "lift"])
        if rules and not self.rules_.empty:
            found = owned[["customer_id", "item"]].merge(self.rules_, on="item")
            found = found.rename(columns={"item": "source", "other": "item"})
            found["log_lift"] = np.log(found["lift"].to_numpy(float))
            total = found.groupby(key, sort=False)["log_lift"].sum().rename("evidence")
            best = found[found["lift"] > 1].sort_values(
                ["lift", "source"], ascending=[False, True], kind="stable"
            )
            best = best.drop_duplicates(key).set_index(key)[["source", "confidence", "lift"]]
            evidence = total.to_frame().join(best).reset_index()
            candidates = pd.concat([candidates, evidence[key]], ignore_index=True).drop_duplicates(key)
        seen = self._seen(interest, customers) if rules else None
        if seen is not None:
            candidates = pd.concat([candidates, seen[key]], ignore_index=True).drop_duplicates(key)
        candidates = candidates.merge(regular.assign(_regular=True), on=key, how="left")
        candidates = candidates[candidates["_regular"].isna()].drop(columns="_regular")
        candidates = candidates.merge(evidence, on=key, how="left")
        if seen is None:
            seen = pd.DataFrame(columns=[*key, "seen", "seen_date", "seen_lift"])
        candidates = candidates.merge(seen, on=key, how="left")
        # An item nobody bought by D (only viewed) has no prior; it ranks as the least likely item.
        floor = float(prior.min()) if len(prior) else 1.0
        log_prior = np.log(candidates["item"].map(prior).fillna(floor).to_numpy(float))
        log_seen = np.log(candidates["seen_lift"].astype(float).fillna(1.0).to_numpy(float))
        candidates["score"] = log_prior + candidates["evidence"].fillna(0.0).to_numpy(float) + log_seen
        candidates = candidates.sort_values(
            ["customer_id", "score", "item"], ascending=[True, False, True], kind="stable"
        )
        candidates["rank"] = candidates.groupby("customer_id").cumcount() + 1
        ranked = candidates[candidates["rank"] <= self.top_k]
        return ranked[list(RANKED_COLUMNS)].reset_index(drop=True)

    def _seen(self, interest: pd.DataFrame | None, customers: pd.Series) -> pd.DataFrame | None:
        """customer_id, item, seen, seen_date, seen_lift of the ranked customers; None without interest."""
        if interest is None or not self.interest_lift_:
            return None
        seen = interest[interest["customer_id"].isin(customers)]
        kind = np.where(seen["carted"].astype(bool), CARTED, VIEWED)
        return pd.DataFrame(
            {
                "customer_id": seen["customer_id"].to_numpy(),
                "item": seen["item"].to_numpy(),
                "seen": kind,
                "seen_date": pd.to_datetime(seen["last_date"]).dt.strftime("%Y-%m-%d").to_numpy(),
                "seen_lift": pd.Series(kind).map(self.interest_lift_).to_numpy(float),
            }
        )

    def predict(
        self, customer_items: pd.DataFrame, interest: pd.DataFrame | None = None, rules: bool = True
    ) -> pd.DataFrame:
        """customer_id, cross_sell ("; "-separated suggestions, best first) and cross_sell_reason, one
        row per customer of `customer_items`; `interest` and `rules` as in `rank` (without rules every
        reason is the item's popularity)."""
        ranked = self.rank(customer_items, rules=rules, interest=interest)
        label = ranked["item"].astype(str)
        product = ranked["item"].map(self.products_)
        label = label.where(product.isna(), label + " (e.g. " + product.astype(str) + ")")
        share = (ranked["confidence"].astype(float) * 100).round().astype("Int64").astype(str)
        lift = ranked["lift"].astype(float).map("{:.2f}".format)
        pop = (ranked["item"].map(self.popularity_) * 100).round().astype("Int64").astype(str)
        why = ranked["item"].astype(str) + np.where(
            ranked["source"].isna(),
            ": popular (bought by " + pop + "% of customers)",
            np.where(
                ranked["source"] == ranked["item"],
                ": bought again by " + share + "% of its buyers (" + lift + "x the average)",
                ": bought next by "
                + share
                + "% of "
                + ranked["source"].astype(str)
                + " buyers ("
                + lift
                + "x the average)",
            ),
        )
        # Interest that raised the item is her own reason, and the most concrete one.
        raised = ranked["seen_lift"].astype(float).fillna(1.0).to_numpy() > 1
        seen = (
            ranked["item"].astype(str)
            + ": "
            + ranked["seen"].astype(str)
            + " on "
            + ranked["seen_date"].astype(str)
            + ", not bought ("
            + ranked["seen_lift"].astype(float).map("{:.2f}".format)
            + "x likelier next)"
        )
        why = np.where(raised, seen, why)
        grouped = pd.DataFrame({"customer_id": ranked["customer_id"], "label": label, "why": why})
        out = grouped.groupby("customer_id", sort=False).agg(
            cross_sell=("label", "; ".join), cross_sell_reason=("why", "; ".join)
        )
        return out.reset_index()


def hits_at_k(ranked: pd.DataFrame, bought: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per customer with at least one item in `bought`: hit (one of her items is in her top k) and recall
    (the share of her items there). `ranked`: customer_id, rank, item (`CrossSell.rank`); `bought`:
    customer_id, item of the items each customer bought in the window that were suggestible (not bought
    regularly before). Indexed by customer_id, sorted."""
    top = ranked[ranked["rank"] <= k][["customer_id", "item"]].drop_duplicates()
    bought = bought[["customer_id", "item"]].drop_duplicates()
    hits = bought.merge(top, on=["customer_id", "item"], how="left", indicator=True)
    hits["hit"] = hits["_merge"] == "both"
    per_customer = hits.groupby("customer_id")["hit"].agg(["sum", "count"])
    return pd.DataFrame(
        {"hit": per_customer["sum"] > 0, "recall": per_customer["sum"] / per_customer["count"]},
        index=per_customer.index,
    )


def recall_at_k(ranked: pd.DataFrame, bought: pd.DataFrame, k: int) -> dict[str, float]:
    """Hit rate and recall at k of suggestions against what customers bought next (`hits_at_k`, summed up by
    `hit_rates`)."""
    return hit_rates(hits_at_k(ranked, bought, k))


def hit_rates(per_customer: pd.DataFrame) -> dict[str, float]:
    """Over the customers of `hits_at_k`: hit_rate = share with one of their items in their top k, recall =
    mean share of their items in their top k, and n_customers evaluated (NaN rates without customers)."""
    if per_customer.empty:
        return {"hit_rate": float("nan"), "recall": float("nan"), "n_customers": 0.0}
    return {
        "hit_rate": float(per_customer["hit"].mean()),
        "recall": float(per_customer["recall"].mean()),
        "n_customers": float(len(per_customer)),
    }
