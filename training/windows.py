"""Choosing the validation window, the training cut-offs and their label windows: every cut-off a model is
fitted or validated at is chosen here (`features.snapshots` computes features and labels at the ones given).

The model that predicts from a cut-off `t` over H days is chosen and fitted on windows that all end
at or before `t`, so labels never reach past it:

- The *validation window* (V, V + L_val]: the predictor's stacks (`models.stacking`) are fitted and
  checked there, on the features at V. It is as long as the history allows up to H and ends at `t`
  (V = t - L_val), so it is the most recent complete stretch; with a horizon shorter than a year
  and a year of history to spare it is instead the same season one year earlier (V = t - 365,
  L_val = H), because a quarter's level depends on its season (a Q4 peak) more than on its recency.
  When L_val < H the predictor stretches predictions to H per customer with the buy-till-you-die
  time profile.
- *Boosted training windows* (c, c + L] at cut-offs c every `spacing_days`: those whose labels end
  before the validation window starts (c + L <= V) fit the boosted models that feed the stacks,
  so the stacks are judged on outcomes no model saw. A window overlapping the validation window
  would let the trees memorise those outcomes (the same customers buying in the same months): on a
  600-customer cohort that made a boosted churn model look 8 points of AUC better than the
  buy-till-you-die base on validation while it was 4 points worse the next year. The later windows
  (c + L <= t) join only the final refit. L is at most half of the history left before V, so that
  several such windows fit.

Every cut-off has at least `min_history_days` of data before it, and the validation cut-off at least
H days (or `min_history_days` if more), so that the stacks are fitted on histories like the ones they
score. With less than `MIN_LABEL_DAYS` left for the validation window the plan is empty (`btyd_only`):
only the buy-till-you-die models can be fitted, on the history as it is; with no room for boosted
windows, the stacks go without them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# Why a plan has no validation window when the history is the reason (`WindowPlan.why_base_only`), as the
# predictor says it when fitted without one.
from models.predictor import NO_VALIDATION_WINDOW

MIN_LABEL_DAYS = 28
YEAR = 365
# The shortest backtest window (`backtest_horizon`), and so the least history `clv train` needs before its
# cut-off: the window and at least a day before it to fit on.
MIN_BACKTEST_DAYS = 7
MIN_TRAINING_DAYS = MIN_BACKTEST_DAYS + 1


class NotEnoughHistory(ValueError):
    """The data is too short to train at this cut-off; the message says how much is needed."""


@dataclass(frozen=True)
class WindowPlan:
    validation_cutoff: dt.date | None
    validation_days: int
    label_days: int
    cutoffs: list[dt.date]
    # Why there is no validation window when it is not the history's length (e.g. a backtest chose the base).
    base_only_reason: str = ""

    @property
    def btyd_only(self) -> bool:
        """True when there is no validation window: only the buy-till-you-die models are fitted."""
        return self.validation_cutoff is None

    @property
    def validated_cutoffs(self) -> list[dt.date]:
        """The boosted training cut-offs whose labels end before the validation window starts."""
        return [c for c in self.cutoffs if c + dt.timedelta(days=self.label_days) <= self.validation_cutoff]

    @property
    def why_base_only(self) -> str:
        """Why there is no validation window (meaningful when `btyd_only`)."""
        return self.base_only_reason or NO_VALIDATION_WINDOW

    def describe(self) -> str:
        if self.btyd_only:
            return f"{self.why_base_only}: buy-till-you-die models only"
        validation = f"validation window {self.validation_days} days from {self.validation_cutoff}"
        if not self.cutoffs:
            return validation + ", no room for boosted training windows"
        return (
            f"{validation}; {len(self.cutoffs)} boosted training cut-offs from {self.cutoffs[0]} to "
            f"{self.cutoffs[-1]}, label window {self.label_days} days"
        )


def plan_windows(
    first_date: dt.date,
    cutoff: dt.date,
    horizon_days: int,
    spacing_days: int = 30,
    n_snapshots: int = 6,
    min_history_days: int = 90,
) -> WindowPlan:
    """The windows for a model that predicts from `cutoff` over `horizon_days` (module docstring).

    `n_snapshots` limits both the validated and the later boosted cut-offs. Raises NotEnoughHistory
    when `cutoff` is not after the first transaction date.
    """
    available = (cutoff - first_date).days
    if available < 1:
        raise NotEnoughHistory(
            f"the cut-off {cutoff} leaves no history: the first transaction is on {first_date}. "
            "Fix: use a later --as-of."
        )
    # The stacks learn how the base's errors depend on a customer's history; validated on a shop much
    # younger than the one scored, they do not transfer (demo shop, nine months of history and horizon:
    # validated 90 days in, the stacked model ranked 0.10 Spearman below the base on the next nine
    # months; 136 days in, 0.06 below). So the validation cut-off needs a horizon of history before it.
    # The noise gate of the stacks does not make half a horizon enough: with H / 2 the same shop,
    # transactions only, served a full model that lost beyond noise on every column (Spearman -0.050,
    # total -30.6% against +5% for the base).
    needed = max(min_history_days, horizon_days)
    if horizon_days < YEAR and available - YEAR >= needed:
        validation_days, validation = horizon_days, cutoff - dt.timedelta(days=YEAR)
    else:
        validation_days = min(horizon_days, available - needed)
        validation = cutoff - dt.timedelta(days=validation_days)
    if horizon_days < MIN_LABEL_DAYS:
        # Not the history: a 2-year log with a 7-day horizon was told its history was too short.
        return WindowPlan(
            None,
            0,
            0,
            [],
            f"the horizon of {horizon_days} days is shorter than the shortest validation window "
            f"({MIN_LABEL_DAYS} days)",
        )
    if validation_days < MIN_LABEL_DAYS:
        return WindowPlan(None, 0, 0, [])
    earliest = first_date + dt.timedelta(days=min_history_days)
    room = (validation - earliest).days
    if room < MIN_LABEL_DAYS:
        return WindowPlan(validation, validation_days, 0, [])
    label_days = min(validation_days, max(MIN_LABEL_DAYS, room // 2))
    last_validated = validation - dt.timedelta(days=label_days)
    validated = _spaced(last_validated, earliest, spacing_days, n_snapshots)
    later = _spaced(
        cutoff - dt.timedelta(days=label_days),
        last_validated + dt.timedelta(days=1),
        spacing_days,
        n_snapshots,
    )
    return WindowPlan(validation, validation_days, label_days, sorted(validated + later))


def _spaced(start: dt.date, end: dt.date, spacing_days: int, limit: int) -> list[dt.date]:
    """Up to `limit` dates from `start` back to `end` (inclusive), `spacing_days` apart."""
    dates = []
    while start >= end and len(dates) < limit:
        dates.append(start)
        start -= dt.timedelta(days=spacing_days)
    return dates


def holdin_window(first_date: dt.date, cutoff: dt.date, horizon_days: int) -> tuple[dt.date, int] | None:
    """(start, days) of the window inside the history on which `models.base_choice` compares the two
    bases: the last min(H, half the history) days before `cutoff`, so that as much history comes
    before it as the window is long; None when that is under `MIN_LABEL_DAYS`."""
    days = min(horizon_days, (cutoff - first_date).days // 2)
    if days < MIN_LABEL_DAYS:
        return None
    return cutoff - dt.timedelta(days=days), days


def backtest_horizon(first_date: dt.date, as_of: dt.date, horizon_days: int) -> int:
    """The longest window up to H for which a backtest still leaves as much history before it.

    Half the data to train on, the other half to test on, at most H and at least `MIN_BACKTEST_DAYS`.
    """
    available = (as_of - first_date).days
    return int(max(MIN_BACKTEST_DAYS, min(horizon_days, available // 2)))
