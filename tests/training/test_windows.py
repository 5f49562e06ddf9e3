"""Window planning: a validation window no boosted model saw, labels never past the cut-off, and short
histories falling back to the buy-till-you-die models instead of failing."""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest

from training.windows import (
    MIN_LABEL_DAYS,
    NO_VALIDATION_WINDOW,
    YEAR,
    NotEnoughHistory,
    backtest_horizon,
    holdin_window,
    plan_windows,
)

START = dt.date(2023, 1, 1)
DAY = dt.timedelta(days=1)


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


def assert_honest(plan, first: dt.date, cutoff: dt.date, horizon: int, min_history: int = 90) -> None:
    """The properties every plan must have (training/windows.py)."""
    assert plan.cutoffs == sorted(plan.cutoffs) and len(set(plan.cutoffs)) == len(plan.cutoffs)
    if plan.btyd_only:
        assert plan.cutoffs == [] and plan.validated_cutoffs == [] and plan.validation_days == 0
        return
    validation_end = plan.validation_cutoff + days(plan.validation_days)
    assert MIN_LABEL_DAYS <= plan.validation_days <= horizon
    assert validation_end <= cutoff, "the validation labels end at or before the cut-off"
    assert (plan.validation_cutoff - first).days >= max(min_history, horizon)
    if plan.cutoffs:
        assert MIN_LABEL_DAYS <= plan.label_days <= plan.validation_days
        assert plan.validated_cutoffs, "some boosted windows end before the validation window"
    for c in plan.cutoffs:
        assert (c - first).days >= min_history
        assert c + days(plan.label_days) <= cutoff, "all labels end at or before the cut-off"
    for c in plan.validated_cutoffs:
        assert c in plan.cutoffs
        assert c + days(plan.label_days) <= plan.validation_cutoff, "validated labels end before validation"
    later = [c for c in plan.cutoffs if c not in plan.validated_cutoffs]
    assert all(c + days(plan.label_days) > plan.validation_cutoff for c in later)


def test_two_years_for_a_one_year_horizon_validates_on_the_last_year():
    cutoff = START + days(730)
    plan = plan_windows(START, cutoff, 365, spacing_days=30, n_snapshots=4)
    assert not plan.btyd_only
    assert plan.validation_days == 365 and plan.validation_cutoff == cutoff - days(365)
    # The boosted labels are shorter than the horizon so that several windows fit before validation.
    assert plan.label_days < 365
    assert len(plan.validated_cutoffs) == 4 and len(plan.cutoffs) == 8
    assert plan.validated_cutoffs[-1] + days(plan.label_days) == plan.validation_cutoff
    assert plan.cutoffs[-1] + days(plan.label_days) == cutoff, "the last refit window ends at the cut-off"
    assert_honest(plan, START, cutoff, 365)
    assert "validation window 365 days" in plan.describe()


def test_a_quarter_is_validated_on_the_same_season_a_year_earlier():
    cutoff = START + days(730)
    plan = plan_windows(START, cutoff, 90)
    assert plan.validation_days == 90 and plan.validation_cutoff == cutoff - days(YEAR)
    assert_honest(plan, START, cutoff, 90)


def test_fifteen_months_for_a_nine_month_horizon_validates_after_nine_months_of_history():
    cutoff = START + days(450)
    plan = plan_windows(START, cutoff, 270, spacing_days=30, n_snapshots=4)
    assert plan.validation_cutoff == START + days(270), "a horizon of history before the validation window"
    assert plan.validation_days == 180
    assert_honest(plan, START, cutoff, 270)


def test_nine_months_of_history_for_a_nine_month_horizon_is_btyd_only():
    """Validated 90 days into the shop, the stacks learned on histories unlike the ones they score."""
    plan = plan_windows(START, START + days(270), 270, spacing_days=30, n_snapshots=4)
    assert plan.btyd_only and plan.describe() == f"{NO_VALIDATION_WINDOW}: buy-till-you-die models only"


def test_a_history_too_short_for_a_validation_window_is_btyd_only_not_an_error():
    for available in (1, 30, 100, 365 + MIN_LABEL_DAYS - 1):
        plan = plan_windows(START, START + days(available), 365)
        assert plan.btyd_only, available
        assert plan.cutoffs == [] and plan.validation_cutoff is None
        assert "buy-till-you-die models only" in plan.describe()
    assert not plan_windows(START, START + days(365 + MIN_LABEL_DAYS), 365).btyd_only
    assert not plan_windows(START, START + days(90 + MIN_LABEL_DAYS), 60).btyd_only


def test_no_history_before_the_cut_off_is_a_clear_error_without_negative_days():
    for cutoff in (START, START - days(10)):
        with pytest.raises(NotEnoughHistory, match="leaves no history") as info:
            plan_windows(START, cutoff, 365)
        message = str(info.value)
        assert str(START) in message and "--as-of" in message
        assert not re.search(r"(?<![\w-])-\d", message), "no negative number of days"


@pytest.mark.parametrize("min_history", [0, 90])
def test_every_plan_is_honest(min_history):
    """A grid of histories, horizons, spacings and counts: the invariants hold for all."""
    for available, horizon, spacing, n in itertools.product(
        (2, 40, 120, 200, 300, 400, 500, 730, 1100), (7, 30, 90, 180, 365, 730), (7, 30, 90), (1, 3, 6)
    ):
        cutoff = START + days(available)
        plan = plan_windows(START, cutoff, horizon, spacing, n, min_history)
        assert_honest(plan, START, cutoff, horizon, min_history)
        assert len(plan.validated_cutoffs) <= n and len(plan.cutoffs) - len(plan.validated_cutoffs) <= n


def test_backtest_horizon_shrinks_with_short_histories():
    assert backtest_horizon(START, START + days(1095), 365) == 365
    assert backtest_horizon(START, START + days(540), 270) == 270
    assert backtest_horizon(START, START + days(300), 365) == 150
    assert backtest_horizon(START, START + days(3), 365) == 7


@pytest.mark.parametrize(
    ("history", "horizon", "expected"),
    [(90, 364, 45), (365, 364, 182), (1460, 364, 364), (730, 91, 91), (50, 364, None)],
)
def test_the_holdin_window_ends_at_the_cut_off_with_as_much_history_before_it(history, horizon, expected):
    cutoff = START + days(history)
    window = holdin_window(START, cutoff, horizon)
    if expected is None:  # under MIN_LABEL_DAYS: nothing to check the base on
        assert window is None
        return
    start, length = window
    assert length == expected and start + days(length) == cutoff
    assert (start - START).days >= length


def test_a_horizon_shorter_than_any_validation_window_says_so_not_that_the_history_is_short():
    """`clv train --horizon-days 7` on a two-year log was told its history was too short."""
    plan = plan_windows(START, START + days(730), 7)
    assert plan.btyd_only
    assert plan.describe().startswith(
        f"the horizon of 7 days is shorter than the shortest validation window ({MIN_LABEL_DAYS} days)"
    )
