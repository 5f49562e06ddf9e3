"""`clv train` says when its backtest found the served model's ranking no better than chance."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pandas as pd

from training.backtest import BASE, MODEL, Backtest


def backtest_with(spearman: float, n: int) -> Backtest:
    metrics = pd.DataFrame(
        {"spearman": [spearman, 0.0], "normalized_gini": [0.5, 0.0], "top_decile_capture": [0.3, 0.0]},
        index=[MODEL, BASE],
    )
    fitted = SimpleNamespace(predictor=SimpleNamespace(kind_="hybrid"))
    return Backtest(dt.date(2025, 1, 1), 90, None, metrics, pd.DataFrame({"x": np.zeros(n)}), fitted, None)


def test_a_ranking_within_chance_is_said_and_a_real_one_is_not():
    # The young apparel shop: Spearman 0.067 on 600 customers, served without a word.
    note = backtest_with(0.067, 600).chance_note()
    assert note is not None and "600 customers no better than chance" in note and "0.067" in note
    # 1.645 / sqrt(599) = 0.067 is the line; well above it, or with many customers, nothing is said.
    assert backtest_with(0.2, 600).chance_note() is None
    assert backtest_with(0.067, 20_000).chance_note() is None
