"""Choosing the training cut-offs and label window for a cut-off date and horizon.

Rolling origin: snapshots at cut-offs c_1 < ... < c_k, each with a label window of L days that
ends at or before the cut-off `t` the model will predict from, so labels never reach past `t`.
L equals the horizon H when the history allows it; with a short history (a shop that has nine
months of data and wants a nine-month horizon) L is shorter, and the predictor stretches its
window-L predictions to H per customer with the buy-till-you-die time profile.

Short histories: after `min_history_days`, three quarters of what is left goes to the label window
and the last quarter separates two cut-offs (the later one calibrates). On the nine-month demo
case a long window with two cut-offs beat two disjoint half-length windows: the stretch from L to
H is the least reliable step, so L should be as long as the data allows (see benchmarks/backtest.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from features.snapshots import choose_cutoffs

MIN_LABEL_DAYS = 28


class NotEnoughHistory(ValueError):
    """The data is too short to train at this cut-off; the message says how much is needed."""


@dataclass(frozen=True)
class WindowPlan:
    label_days: int
    cutoffs: list[dt.date]

    def describe(self) -> str:
        return (
            f"{len(self.cutoffs)} cut-offs from {self.cutoffs[0]} to {self.cutoffs[-1]}, "
            f"label window {self.label_days} days"
        )


def plan_windows(
    first_date: dt.date,
    cutoff: dt.date,
    horizon_days: int,
    spacing_days: int = 90,
    n_snapshots: int = 4,
    min_history_days: int = 90,
) -> WindowPlan:
    """Label window and training cut-offs for a model that predicts from `cutoff`.

    Every training cut-off c has at least `min_history_days` of data before it and c + L <= cutoff.
    """
    available = (cutoff - first_date).days
    if available - horizon_days >= min_history_days:
        label_days = horizon_days
    else:
        label_days = min(horizon_days, (available - min_history_days) * 3 // 4)
    if label_days < MIN_LABEL_DAYS:
        need = min_history_days + -(-4 * MIN_LABEL_DAYS // 3)
        raise NotEnoughHistory(
            f"{available} days of history before {cutoff} is too short to train: need at least {need} days "
            f"({min_history_days} days of history, then a label window of at least {MIN_LABEL_DAYS} days). "
            "Fix: use a later --as-of, more data, or a smaller [train] min_history_days."
        )
    spacing = min(spacing_days, label_days, max(1, available - min_history_days - label_days))
    cutoffs = choose_cutoffs(first_date, cutoff, label_days, spacing, n_snapshots, min_history_days)
    return WindowPlan(label_days, cutoffs)


def backtest_horizon(
    first_date: dt.date, as_of: dt.date, horizon_days: int, min_history_days: int = 90
) -> int:
    """The longest window up to H for which a backtest still has a trainable history before it."""
    available = (as_of - first_date).days
    # Half the data to train on (at least min history + two short windows), the rest to test on.
    usable = available - (min_history_days + 2 * MIN_LABEL_DAYS)
    return int(max(MIN_LABEL_DAYS, min(horizon_days, available // 2, usable)))
