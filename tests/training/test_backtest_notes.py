"""What `clv train` says of its own backtest: a ranking no better than chance, a window shorter than the
horizon, a standard baseline that ranked customers better than the model it serves."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pandas as pd

from models import metrics
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


def test_a_window_shorter_than_the_horizon_is_said_with_the_history_a_whole_one_needs():
    # Log B of issue 17: half a year of history, a 183-day horizon, a backtest window of 91 days.
    short = backtest_with(0.5, 100)
    short.horizon_days = 91
    note = short.short_window_note(183, CUTOFF - dt.timedelta(days=91))
    assert note is not None
    assert "91 days, shorter than the 183-day horizon" in note and "of the 182 days of history" in note
    assert "checks a 91-day forecast, not the 183-day one served" in note and "366 days of history" in note
    assert backtest_with(0.5, 100).short_window_note(90, CUTOFF - dt.timedelta(days=400)) is None


def backtest_of(predictions: dict[str, np.ndarray], actual: np.ndarray, kind: str = "hybrid") -> Backtest:
    """A backtest whose table is computed from the predictions, as `training.backtest.backtest` does."""
    frame = pd.DataFrame({"actual_revenue": actual, **predictions})
    table = pd.DataFrame(
        {model: metrics.value_metrics(actual, frame[model].to_numpy()) for model in predictions}
    ).T
    fitted = SimpleNamespace(predictor=SimpleNamespace(kind_=kind))
    base = SimpleNamespace(
        kind_="base", btyd_=SimpleNamespace(spend=SimpleNamespace(describe=lambda: "Gamma-Gamma"))
    )
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
        "on the backtest BG/NBD + Gamma-Gamma ranked customers better than the served full"
    )
    assert f"{backtest.ranking(BGNBD):.4f} vs {backtest.ranking(MODEL):.4f}" in note
    assert "beyond noise" in note and "ahead in 100% of bootstrap resamples" in note
    # Where the history left only the base to fit, the note names the base (the model row is the base's).
    backtest.fit.predictor.kind_ = "base"
    assert "better than the served base, beyond noise" in backtest.baseline_notes(seed=0)[0]


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
