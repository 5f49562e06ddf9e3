"""Rolling-origin window planning: labels never reach past the cut-off."""

from __future__ import annotations

import datetime as dt

import pytest

from training.windows import NotEnoughHistory, backtest_horizon, plan_windows

START = dt.date(2023, 1, 1)


def test_long_history_uses_the_full_horizon():
    cutoff = START + dt.timedelta(days=730)
    plan = plan_windows(START, cutoff, 365, spacing_days=90, n_snapshots=4)
    assert plan.label_days == 365
    assert len(plan.cutoffs) == 4 and plan.cutoffs == sorted(plan.cutoffs)
    assert plan.cutoffs[-1] + dt.timedelta(days=365) == cutoff
    assert all((c - START).days >= 90 for c in plan.cutoffs)
    assert all(c + dt.timedelta(days=plan.label_days) <= cutoff for c in plan.cutoffs)


def test_nine_months_of_history_for_a_nine_month_horizon_uses_shorter_labels():
    cutoff = START + dt.timedelta(days=270)
    plan = plan_windows(START, cutoff, 270, spacing_days=90, n_snapshots=4)
    assert plan.label_days == 135
    assert len(plan.cutoffs) == 2
    assert all(c + dt.timedelta(days=135) <= cutoff and (c - START).days >= 90 for c in plan.cutoffs)


def test_too_short_a_history_is_a_clear_error():
    with pytest.raises(NotEnoughHistory, match="too short to train"):
        plan_windows(START, START + dt.timedelta(days=100), 365)


def test_backtest_horizon_shrinks_with_short_histories():
    assert backtest_horizon(START, START + dt.timedelta(days=1095), 365) == 365
    assert backtest_horizon(START, START + dt.timedelta(days=540), 270) == 270
    assert backtest_horizon(START, START + dt.timedelta(days=300), 365) == 150
