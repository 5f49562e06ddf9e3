"""The choice of the buy-till-you-die base (models.base_choice): MBG/CNBD-k only for regular buyers,
and only when it forecasts a window inside the history better beyond noise."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from models.base_choice import choose_base
from models.btyd_features import BASE_MODELS, REGULAR, BTYDFeatures
from models.mbgcnbd import simulate
from models.order_value import OWN_SPEND, SHOP_SPEND

# Regular buyers: a purchase every 3 to 4 weeks, and a one-in-six chance of leaving after each.
PARAMS = {"r": 3.0, "alpha": 4.0, "a": 1.0, "b": 5.0}
YEAR = 365


def young_shop(k: int, history_days: int, horizon_days: int, n: int, seed: int) -> pd.DataFrame:
    """A cohort acquired over `history_days`: the feature columns the base reads, at the cut-off, with
    the orders of the next `horizon_days` as `label_orders`. Every order is worth 1."""
    ages = np.random.default_rng(seed).uniform(1, history_days, n)
    X = simulate(PARAMS, ages, k=k, horizon_days=horizon_days, seed=seed + 1)
    repeat = X["btyd_frequency"] > 0
    return X.assign(
        customer_id=[f"c{i}" for i in range(n)],
        n_orders=X["btyd_frequency"] + 1,
        btyd_monetary=repeat.astype(float),
        monetary_mean=1.0,
        largest_order_value=1.0,
        largest_repeat_order_value=repeat.astype(float),
        monetary_total=X["btyd_frequency"] + 1.0,
        refund_share=0.0,
        label_orders=X["future_purchases"],
    )


def total_error(table: pd.DataFrame, base: BTYDFeatures) -> float:
    return float(base.base_orders(table, YEAR).sum() / table["label_orders"].sum() - 1)


def test_a_young_shop_of_regular_buyers_gets_the_regular_base():
    reference = young_shop(k=3, history_days=91, horizon_days=YEAR, n=1_500, seed=4)
    holdin = young_shop(k=3, history_days=45, horizon_days=45, n=1_500, seed=5)
    choice = choose_base(reference, lambda: holdin, 45)
    assert (choice.regularity_k, choice.models) == (3, (REGULAR,))
    assert "the base is MBG/CNBD-k" in choice.note and "deviance" in choice.note
    # What it is for: 13 weeks in, the default pair cannot see anyone leave and overshoots the year.
    chosen = total_error(reference, BTYDFeatures(reference, choice.regularity_k, choice.models))
    default = total_error(reference, BTYDFeatures(reference))
    assert abs(chosen) < abs(default) / 2


def test_poisson_buyers_keep_the_default_base():
    reference = young_shop(k=1, history_days=91, horizon_days=YEAR, n=1_500, seed=6)
    holdin = young_shop(k=1, history_days=45, horizon_days=45, n=1_500, seed=7)
    asked = []
    assert choose_base(reference, lambda: asked.append(1) or holdin, 45) == choose_base(reference)
    assert not asked  # the hold-in window's features are only computed for regular buyers
    assert choose_base(reference).models == BASE_MODELS and choose_base(reference).regularity_k == 1


def test_without_a_window_to_check_it_the_regular_model_is_a_feature_not_the_base():
    reference = young_shop(k=3, history_days=91, horizon_days=YEAR, n=1_500, seed=4)
    choice = choose_base(reference, None)
    assert (choice.regularity_k, choice.models) == (3, BASE_MODELS)
    assert "too short to check" in choice.note
    enriched = BTYDFeatures(reference, choice.regularity_k, choice.models).add(reference, YEAR)
    assert {f"{REGULAR}_expected_orders", f"{REGULAR}_p_alive"} <= set(enriched.columns)


def test_a_base_naming_an_unfitted_model_is_refused():
    reference = young_shop(k=1, history_days=91, horizon_days=YEAR, n=300, seed=8)
    with pytest.raises(ValueError, match="must name fitted models"):
        BTYDFeatures(reference, base=(REGULAR,))


def spending_shop(own_level: bool, n: int, seed: int) -> pd.DataFrame:
    """A year-old shop of Poisson buyers with amounts, and a 45-day window of labels. With `own_level`
    each customer's orders scatter around her own level (drawn once, log-normal); without it every
    order is drawn around the same level, so her past spend says nothing of her next."""
    table = young_shop(k=1, history_days=YEAR, horizon_days=45, n=n, seed=seed)
    rng = np.random.default_rng(seed + 2)
    level = rng.lognormal(4.0, 0.8, n) if own_level else np.full(n, np.exp(4.0 + 0.32))
    past_orders = table["n_orders"].to_numpy(float)
    orders = table["label_orders"].to_numpy(float)
    # The mean of k orders each Gamma(4, level / 4) is Gamma(4k, level / 4k).
    repeat = table["btyd_frequency"].to_numpy(float)
    repeat_mean = np.where(
        repeat > 0, rng.gamma(4 * np.maximum(repeat, 1), level / (4 * np.maximum(repeat, 1))), 0
    )
    mean = rng.gamma(4 * past_orders, level / (4 * past_orders))
    return table.assign(
        btyd_monetary=repeat_mean,
        monetary_mean=mean,
        monetary_total=past_orders * mean,
        # Each customer's orders alike: her largest is her mean.
        largest_order_value=mean,
        largest_repeat_order_value=repeat_mean,
        label_revenue=np.where(orders > 0, rng.gamma(4 * np.maximum(orders, 1), level / 4), 0.0),
    )


def test_a_shop_whose_customers_spend_at_their_own_level_keeps_gamma_gamma():
    reference = spending_shop(own_level=True, n=1_500, seed=10)
    holdin = spending_shop(own_level=True, n=1_500, seed=11)
    choice = choose_base(reference, lambda: holdin, 45)
    assert choice.spend == OWN_SPEND and choice.note == ""
    values = BTYDFeatures(reference, spend=choice.spend).add(reference, YEAR)["btyd_order_value"]
    assert values.nunique() > 100


def test_a_shop_whose_customers_spend_alike_values_every_order_at_the_shop_mean():
    reference = spending_shop(own_level=False, n=1_500, seed=12)
    holdin = spending_shop(own_level=False, n=1_500, seed=13)
    choice = choose_base(reference, lambda: holdin, 45)
    assert choice.spend == SHOP_SPEND
    assert "own spend did not predict" in choice.note and "absolute error" in choice.note
    values = BTYDFeatures(reference, spend=choice.spend).add(reference, YEAR)["btyd_order_value"]
    assert values.nunique() == 1
    # The one value is the shop's mean order value, not an arbitrary constant.
    assert values.iloc[0] == pytest.approx(reference["monetary_mean"].mean(), rel=0.1)


def test_without_a_window_to_check_it_gamma_gamma_stays():
    assert choose_base(spending_shop(own_level=False, n=1_500, seed=12), None).spend == OWN_SPEND


def test_the_backtest_row_of_the_base_names_what_it_values_orders_with():
    """Seen: on the apparel shop the backtest row read "BTYD base + Gamma-Gamma" while the run's note said
    every order was valued at the shop's mean."""
    from training.backtest import BASE, Backtest

    def label(reference: pd.DataFrame, holdin: pd.DataFrame) -> str:
        base = BTYDFeatures(reference, spend=choose_base(reference, lambda: holdin, 45).spend)
        return Backtest.labels(
            SimpleNamespace(base=SimpleNamespace(btyd_=base), not_fitted={}, baseline_spend={})
        )[BASE]

    alike = label(spending_shop(own_level=False, n=1_500, seed=12), spending_shop(False, 1_500, 13))
    assert alike == "BTYD base (MBG/NBD and Pareto/NBD) + the shop's mean order value"
    own = label(spending_shop(own_level=True, n=1_500, seed=10), spending_shop(True, 1_500, 11))
    assert own == "BTYD base (MBG/NBD and Pareto/NBD) + Gamma-Gamma"
    orders = young_shop(k=1, history_days=YEAR, horizon_days=45, n=500, seed=3)  # no amounts: 1 each
    assert label(orders, orders) == "BTYD base (MBG/NBD and Pareto/NBD) + a value of 1 per order"


def scorable(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with the remaining columns the predictor reads at a cut-off (`features.pipeline` names)."""
    return table.assign(
        customer_id=[f"c{i}" for i in range(len(table))],
        as_of=pd.Timestamp("2025-06-30"),
        tenure_days=table["btyd_age"],
        recency_days=table["btyd_age"] - table["btyd_recency"],
        gap_mean_days=table["btyd_recency"] / table["btyd_frequency"].where(table["btyd_frequency"] > 0),
        monetary_total=table["n_orders"] * table["monetary_mean"],
    )


def test_the_baselines_and_the_served_base_name_what_was_really_used_on_a_log_without_amounts():
    """Seen on the grocery log (no amounts, values in orders): the backtest rows read "BG/NBD + Gamma-Gamma"
    and "Pareto/NBD + Gamma-Gamma" (a Gamma-Gamma run to its bound, p = q = 8,103, for 1.00004 per order),
    and the note on the served base, on `GET /model` and in the MLflow run, said "(MBG/NBD and Pareto/NBD,
    Gamma-Gamma)" where no Gamma-Gamma was fitted. Both now say what valued the orders, in the same words."""
    from models.btyd_clv import BTYDCLV
    from models.predictor import CLVPredictor
    from training.backtest import BASE, BGNBD, PARETO, Backtest

    orders = young_shop(k=1, history_days=YEAR, horizon_days=45, n=500, seed=3)  # no amounts: 1 each
    buyers = orders[orders["n_orders"] > 0]
    baselines = {BGNBD: BTYDCLV(purchase_model="bgnbd"), PARETO: BTYDCLV(purchase_model="pareto_nbd")}
    spend = {name: model.fit(buyers).describe_spend() for name, model in baselines.items()}
    assert spend == {BGNBD: "a value of 1 per order", PARETO: "a value of 1 per order"}
    assert (
        baselines[BGNBD].predict_clv(orders, 45) == baselines[BGNBD].purchases_.expected_purchases(orders, 45)
    ).all()
    served = CLVPredictor(horizon_days=45).fit(None, None, scorable(orders))
    labels = Backtest.labels(SimpleNamespace(base=served, not_fitted={}, baseline_spend=spend))
    assert labels[BASE] == "BTYD base (MBG/NBD and Pareto/NBD) + a value of 1 per order"
    assert (
        labels[BGNBD] == "BG/NBD + a value of 1 per order"
        and labels[PARETO] == "Pareto/NBD + a value of 1 per order"
    )
    assert served.notes_ == [
        "no room before the cut-off for a validation window to check boosted models and stacks: serving the "
        "buy-till-you-die base (MBG/NBD and Pareto/NBD, a value of 1 per order)"
    ]
    # Too few repeat buyers for Gamma-Gamma (under 20): each buyer's own mean, in the note as in the label.
    few = spending_shop(own_level=True, n=1_500, seed=10)
    few = few[(few["btyd_frequency"] == 0) | (few.index.isin(few.index[few["btyd_frequency"] > 0][:15]))]
    served = CLVPredictor(horizon_days=45).fit(None, None, scorable(few))
    assert served.btyd_.spend.describe() == "each buyer's own mean order value"
    assert served.notes_[0].endswith("(MBG/NBD and Pareto/NBD, each buyer's own mean order value)")
