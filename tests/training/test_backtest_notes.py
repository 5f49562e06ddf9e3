"""What `clv train` says of its own backtest: a ranking no better than chance, a window shorter than the
horizon, a standard baseline that ranked customers better than the model it serves."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pandas as pd

from models import metrics
from models.predictor import CLVPredictor
from training.backtest import BASE, BGNBD, MODEL, PARETO, TEXTBOOK, Backtest

CUTOFF = dt.date(2025, 1, 1)


def backtest_with(spearman: float, n: int) -> Backtest:
    table = pd.DataFrame(
        {"spearman": [spearman, 0.0], "normalized_gini": [0.5, 0.0], "top_decile_capture": [0.3, 0.0]},
        index=[MODEL, BASE],
    )
    fitted = SimpleNamespace(predictor=SimpleNamespace(kind_="hybrid"))
    return Backtest(CUTOFF, 90, None, table, pd.DataFrame({"x": np.zeros(n)}), fitted, None)


def test_a_ranking_within_chance_is_said_and_a_real_one_is_not():
    # The young apparel shop: Spearman 0.067 on 600 customers, served without a word.
    note = backtest_with(0.067, 600).chance_note()
    assert note is not None and "600 customers no better than chance" in note and "0.067" in note
    # Just under the line (0.067213 on 600), the note tells the two apart: it read "0.0672, below 0.0672".
    assert "0.06719, below 0.06721" in backtest_with(0.067193, 600).chance_note()
    # 1.645 / sqrt(599) = 0.067 is the line; well above it, or with many customers, nothing is said.
    assert backtest_with(0.2, 600).chance_note() is None
    assert backtest_with(0.067, 20_000).chance_note() is None


def test_a_churn_model_within_chance_is_said_and_a_real_one_is_not():
    """Seen on a log of 200 one-time buyers: churn AUC 0.279 on the backtest, said nowhere (only a Spearman
    within chance was). The line is 0.5 + 1.645 sqrt((n + 1) / (12 n0 n1)): 0.5 + 0.0673 for 100 of 200."""
    backtest = backtest_with(0.5, 200)
    backtest.metrics["churn_auc"] = [0.279, 0.6]
    backtest.frame["actual_churned"] = np.arange(200) % 2 == 0
    note = backtest.chance_note()
    assert (
        note is not None and "no order no better than chance could (churn AUC 0.2790, below 0.5673)" in note
    )
    assert "Spearman" not in note
    backtest.metrics["churn_auc"] = [0.6, 0.6]
    assert backtest.chance_note() is None
    # Both at once: one sentence says both.
    both = backtest_with(0.01, 200)
    both.metrics["churn_auc"] = [0.52, 0.6]
    both.frame["actual_churned"] = np.arange(200) % 2 == 0
    assert "(Spearman 0.0100, below 0.1166) and told who would place no order" in both.chance_note()
    # Everybody bought (or nobody did): no AUC to read.
    both.frame["actual_churned"] = False
    assert "churn AUC" not in both.chance_note()


def test_a_window_shorter_than_the_horizon_is_said_with_the_history_a_whole_one_needs():
    # Log B of issue 17: half a year of history, a 183-day horizon, a backtest window of 91 days.
    short = backtest_with(0.5, 100)
    short.horizon_days = 91
    note = short.short_window_note(183, CUTOFF - dt.timedelta(days=91))
    assert note is not None
    assert "91 days, shorter than the 183-day horizon" in note and "of the 182 days of history" in note
    assert "checks a 91-day forecast, not the 183-day one served" in note and "366 days of history" in note
    assert backtest_with(0.5, 100).short_window_note(90, CUTOFF - dt.timedelta(days=400)) is None


def test_a_metric_the_backtest_could_not_measure_is_named_as_in_its_table():
    """The note read "could not measure spearman", the setting's identifier, beside a table headed "Spearman"."""
    backtest = backtest_with(float("nan"), 50)
    backtest.metrics.loc[MODEL, "top_decile_capture"] = np.nan
    backtest.frame["actual_revenue"] = 0.0
    why = "(none of its 50 customers bought in the 90 days after 2025-01-01)"
    assert backtest.unranked_note("spearman") == (
        f"the backtest could not measure Spearman {why}, so how well the model ranks is unchecked"
    )
    assert backtest.unranked_note("top_decile_capture").startswith(
        f"the backtest could not measure top 10% {why}"
    )
    assert backtest.unranked_note("normalized_gini") is None


def backtest_of(predictions: dict[str, np.ndarray], actual: np.ndarray, kind: str = "hybrid") -> Backtest:
    """A backtest whose table is computed from the predictions, as `training.backtest.backtest` does."""
    frame = pd.DataFrame({"actual_revenue": actual, **predictions})
    table = pd.DataFrame(
        {model: metrics.value_metrics(actual, frame[model].to_numpy()) for model in predictions}
    ).T
    fitted = SimpleNamespace(predictor=SimpleNamespace(kind_=kind))
    base = CLVPredictor()
    base.kind_, base.btyd_, base.p_alive_range_ = "base", described("Gamma-Gamma"), (0.4, 1.0)
    spend = {BGNBD: "Gamma-Gamma", PARETO: "Gamma-Gamma"}
    return Backtest(CUTOFF, 90, None, table, frame, fitted, base, baseline_spend=spend)


def test_a_baseline_that_ranked_better_than_the_served_model_beyond_noise_is_said():
    """Issue 17: on log B the hybrid lost to BG/NBD on the backtest and was served without a word."""
    rng = np.random.default_rng(4)
    n = 3_000
    actual = rng.gamma(0.5, 100.0, n) * (rng.random(n) < 0.4)
    signal = np.log1p(actual)
    served = signal + rng.normal(0, 3.0, n)  # a weak ranking
    pareto = served + rng.normal(0, 0.3, n)  # the served ranking, a little shaken: ahead by a hair
    backtest = backtest_of(
        {
            MODEL: served,
            BASE: signal + rng.normal(0, 3.5, n),  # weaker still: the full model is served
            PARETO: pareto,
            BGNBD: signal + rng.normal(0, 0.5, n),  # far better: beyond noise
            TEXTBOOK: signal + rng.normal(0, 6.0, n),  # worse: nothing to say
        },
        actual,
    )
    assert backtest.served == MODEL
    assert backtest.ranking(BGNBD) > backtest.ranking(PARETO) > backtest.ranking(MODEL)
    assert backtest.ranking(TEXTBOOK) < backtest.ranking(MODEL)
    # The baseline a hair ahead is within noise (ahead in 42% of the resamples): nothing to warn of.
    (note,) = backtest.baseline_notes(seed=0)
    assert note.startswith(
        "on the backtest BG/NBD + Gamma-Gamma ranked customers better than the full model, as fitted at the "
        "backtest's cut-off"
    )
    assert f"{backtest.ranking(BGNBD):.4f} vs {backtest.ranking(MODEL):.4f}" in note
    assert "beyond noise" in note and "ahead in 100% of bootstrap resamples" in note
    assert "clv train serves only its own full model or its base, never BG/NBD + Gamma-Gamma, so" in note
    # Where the history left only the base to fit, the note names the base (the model row is the base's).
    backtest.fit.predictor.kind_ = "base"
    assert (
        "better than the base, as fitted at the backtest's cut-off, beyond noise"
        in backtest.baseline_notes(seed=0)[0]
    )


def test_no_baseline_note_when_the_served_model_ranks_best_or_a_baseline_was_not_fitted():
    rng = np.random.default_rng(8)
    n = 2_000
    actual = rng.gamma(0.5, 100.0, n)
    signal = np.log1p(actual)
    predictions = {
        MODEL: signal + rng.normal(0, 0.5, n),
        BASE: signal + rng.normal(0, 1.0, n),
        BGNBD: signal + rng.normal(0, 1.0, n),
        PARETO: signal + rng.normal(0, 1.0, n),
        TEXTBOOK: signal + rng.normal(0, 1.0, n),
    }
    assert backtest_of(predictions, actual).baseline_notes(seed=0) == []
    # A baseline that ranks exactly as the served model does (the base's pair, say) is not "better".
    assert backtest_of({**predictions, PARETO: predictions[MODEL]}, actual).baseline_notes(seed=0) == []
    # A baseline that could not be fitted has no predictions to compare (its table row is empty).
    predictions[BGNBD] = signal
    unfitted = backtest_of(predictions, actual)
    unfitted.not_fitted = {BGNBD: "fewer than 20 repeat buyers"}
    assert unfitted.baseline_notes(seed=0) == []


def described(text: str) -> SimpleNamespace:
    return SimpleNamespace(
        describe=lambda: text, base=("mbgnbd", "pareto"), spend=SimpleNamespace(describe=lambda: text)
    )


def test_a_served_base_other_than_the_backtests_is_said_and_the_same_one_is_not():
    """Seen on the grocery log with a year of history: the backtest's base was MBG/CNBD-k, the served one MBG/NBD
    and Pareto/NBD, and only two separate notes, far apart, told a reader that the table's base row was not the
    served base's skill."""
    backtest = backtest_with(0.5, 100)
    backtest.base = SimpleNamespace(btyd_=described("MBG/CNBD-k, a value of 1 per order"))
    served = SimpleNamespace(kind_="base", btyd_=described("MBG/NBD and Pareto/NBD, a value of 1 per order"))
    note = backtest.base_change_note(served)
    assert note is not None and note.startswith(
        f"the backtest's base row (MBG/CNBD-k, a value of 1 per order, chosen by the base's rules at its cut-off "
        f"{CUTOFF}) is not the base served (MBG/NBD and Pareto/NBD, a value of 1 per order, chosen by the same"
    )
    assert backtest.base_change_note(SimpleNamespace(kind_="base", btyd_=backtest.base.btyd_)) is None
    assert backtest.base_change_note(SimpleNamespace(kind_="hybrid", btyd_=served.btyd_)) is None


def test_an_order_above_the_outlier_fence_explains_the_baselines_errors():
    """Case 15 (one order of 2.5e9 among orders of about 60): the backtest showed the standard baselines at a
    decile MAPE of 132,748 and a total error of 283,376, with no word why."""
    backtest = backtest_with(0.5, 3)
    backtest.base = SimpleNamespace(btyd_=SimpleNamespace(spend=SimpleNamespace(fence_=812.5)))
    backtest.fit.reference = pd.DataFrame({"largest_order_value": [61.0, 2.5e9, 58.0]})
    note = backtest.outlier_note()
    assert note is not None and note.startswith(
        "1 customer bought an order above the outlier fence of 812.50"
    )
    assert "(the largest 2,500,000,000.00)" in note and "count it in full" in note
    backtest.fit.reference = pd.DataFrame({"largest_order_value": [61.0, 812.5, 58.0]})
    assert backtest.outlier_note() is None


def test_base_and_baselines_that_found_no_drop_out_are_said_to_be_one_model():
    """Seen on the young apparel shop (45 days of history before the backtest's cut-off): the base's row and
    both BTYD baselines' read the same to the third decimal, with no word why. Every customer was alive with
    probability 0.99999, and without drop-out the three models are the same NBD model of purchase rates."""
    rng = np.random.default_rng(0)
    actual = rng.gamma(0.5, 100.0, 400)
    value = rng.gamma(2.0, 10.0, 400)
    churn = rng.uniform(0.7, 0.95, 400)
    predictions = {BASE: value, BGNBD: value * (1 + 1e-5), PARETO: value * (1 - 2e-5), TEXTBOOK: value[::-1]}
    backtest = backtest_of(predictions, actual, kind="base")
    backtest.frame["churn_" + BASE] = backtest.frame["churn_" + BGNBD] = churn
    backtest.frame["churn_" + PARETO] = churn + 1e-6
    backtest.base.p_alive_range_ = (0.99999, 1.0)
    note = backtest.no_dropout_note()
    assert note == (
        "the fit at the backtest's cut-off 2025-01-01 found no drop-out (its P(alive) spans only 99.999% to "
        "100.000% over the buyers), and without drop-out BG/NBD, Pareto/NBD and the base are the same NBD model, "
        "so their rows read alike"
    )
    # With one baseline not fitted, the note names the rows there are.
    backtest.not_fitted = {PARETO: "fewer than 10 repeat buyers"}
    assert "without drop-out BG/NBD and the base are the same NBD model" in backtest.no_dropout_note()
    backtest.not_fitted = {}
    # Some customers judged gone: the models differ in how, so their rows are not one model's.
    backtest.base.p_alive_range_ = (0.4, 1.0)
    assert backtest.no_dropout_note() is None
    # Everyone alive but the predictions apart (one baseline 5% higher on every customer): nothing to explain.
    backtest.base.p_alive_range_ = (0.99999, 1.0)
    backtest.frame[BGNBD] = value * 1.05
    assert backtest.no_dropout_note() is None
