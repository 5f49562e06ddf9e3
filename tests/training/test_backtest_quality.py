"""On the demo shop the hybrid model must beat the baselines fitted on the same data.

Two backtests: the full history (three years, one-year horizon), where the hybrid must win, and the
short-history case real shops often have (nine months of history, a nine-month horizon, most customers
with one order), where it must win or the backtest must say the base is better.
Ranking metrics decide (Spearman, normalized Gini, top-decile revenue capture); churn is judged
against BG/NBD's probability of no purchase in the window, not 1 - P(alive).
"""

from __future__ import annotations

import datetime as dt

import pytest

from config import load_settings
from demo.shop import write_demo_shop
from features.contract import load_shop
from training.backtest import BASE, BGNBD, MODEL, PARETO, TEXTBOOK, backtest
from training.shop_data import ShopData

RANKING = ("spearman", "normalized_gini", "top_decile_capture")
NINE_MONTHS = 273


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    write_demo_shop(out, n_customers=20_000, seed=42)
    shop = load_shop(out / "transactions.parquet", out / "events.parquet", out / "customers.parquet")
    return ShopData.from_shop(shop)


def assert_hybrid_wins(result):
    table = result.metrics
    print(f"\nbacktest from {result.cutoff}, {result.horizon_days} days, {result.plan.describe()}")
    print(table.round(3).to_string())
    for baseline in (BGNBD, PARETO, TEXTBOOK):
        for metric in RANKING:
            assert table.loc[MODEL, metric] > table.loc[baseline, metric], (metric, baseline)
    for baseline in (BGNBD, PARETO):
        assert table.loc[MODEL, "churn_auc"] > table.loc[baseline, "churn_auc"], baseline
    # About the 80% asked for, and not so wide that it says nothing: a row whose low end is 0 (buying
    # nothing is likelier than the lower tail) gets the one-sided [0, 80% quantile] (models.intervals);
    # with the central interval's upper end it held every zero and the upper tail besides (0.935 here).
    assert 0.75 <= table.loc[MODEL, "interval_coverage"] <= 0.9
    assert abs(table.loc[MODEL, "aggregate_error"]) < 0.15


def test_hybrid_beats_baselines_over_a_year(demo):
    result = backtest(demo, demo.last_date, load_settings(train={"horizon_days": 365}))
    assert result.plan.validation_days == 365, "the stacks are validated on a whole year"
    assert result.fit.predictor.kind_ == "hybrid" and not result.base_wins()
    assert_hybrid_wins(result)


def test_nine_months_of_history_never_serves_a_model_its_backtest_found_worse(demo):
    """A young shop: too little history for a validation window a horizon into it (the stacks would learn
    on a younger base than the one they score), so the model is the buy-till-you-die base; or a hybrid the
    backtest ranks below the base, and `clv train` serves the base; or a hybrid that beats the baselines."""
    start = demo.last_date - dt.timedelta(days=2 * NINE_MONTHS)
    short = demo.since(start)
    cutoff = start + dt.timedelta(days=NINE_MONTHS)
    features = short.features(cutoff)
    assert (features["n_orders"] == 1).mean() > 0.4, (
        "the short-history case should be mostly one-order customers"
    )
    result = backtest(
        short, short.last_date, load_settings(train={"horizon_days": NINE_MONTHS}), cutoff=cutoff
    )
    print(result.metrics.round(3).to_string())
    if not result.checked():
        # Too little history to validate anything beyond the base at this cut-off: the model is the base.
        assert result.fit.predictor.kind_ == "base" and result.fit.predictor.notes_
        assert result.metrics.loc[MODEL, "spearman"] == result.metrics.loc[BASE, "spearman"]
        # The served base's interval is measured too (its table row and /model used to show none).
        assert (
            result.model_metrics()["interval_coverage"] == result.metrics.loc[BASE, "interval_coverage"] > 0
        )
    elif result.base_wins():
        assert result.served == BASE and "base is served" in result.base_wins_reason()
        # What the registry gate compares and /model shows are the served base's numbers.
        assert result.model_metrics()["spearman"] == result.metrics.loc[BASE, "spearman"]
    else:
        assert_hybrid_wins(result)
