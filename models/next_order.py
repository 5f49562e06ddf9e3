"""When a customer's next order is due, from the purchase models, given she is still a customer.

A date for a customer who has almost surely left would be a wrong number on a row a marketer acts
on, so the date is conditional on the customer being alive at the cut-off (the row's `p_alive` says
how likely that is) and is left empty, with the reason, when she is probably gone or would probably
not order within `max_days` even as a customer (by the row's own churn_prob and p_alive).

Per customer and base model (`models.btyd_features`), W is her time to the next order while she is a
customer, and q(d) = P(W > d | alive at the cut-off):
- BG/NBD and MBG/NBD (Fader, Hardie and Lee 2005) drop a customer out only at a purchase, so an alive
  customer's next order comes at rate lambda ~ Gamma(r + x, alpha + T): q(d) = ((alpha + T) /
  (alpha + T + d))^(r + x), which is also 1 - (1 - P(no purchase in d)) / P(alive) of the model;
- MBG/CNBD-k (Platzer and Reutterer 2016): the same identity on its P(no purchase), the exact
  residual of her current Erlang-k gap;
- Pareto/NBD (Schmittlein, Morrison and Colombo 1987) lets a customer die between purchases; "while
  she is a customer" leaves that out, so q(d) is the same gamma-rate expression as BG/NBD's with its
  own r and alpha (its lambda and mu are independent).
The base's q is the mean of its models' q in log-odds (as the base averages its probabilities). The
row's own numbers then fix the chance of an order within the horizon H = `max_days` while a customer:
b = (1 - churn_prob) / p_alive (capped to [0, 1]; with the full model served churn_prob comes from
the stacks, which correct the base, so the base's own 1 - q(H) would contradict the row). Whether she
orders within H is the row's, when within H is the base's: P(W <= d | alive) = b (1 - q(d)) /
(1 - q(H)) for d <= H. A row that agrees with the base keeps the base's median; a customer the
stacks find likelier to buy gets an earlier date, never day 1 for b = 1 (which a shift of q in
log-odds or a proportional hazard gave: on the seed 7 demo shop their median absolute error was 104
and 45 days against 29 for this rule, the base alone 30). Then
- `days_to_next_order` = the median of W: the smallest d with P(W <= d | alive) >= 1/2, on a log-spaced grid of
  `GRID_POINTS` days from 1 to H, interpolated linearly in log d; so P(an order by then) is
  p_alive / 2 (as p_alive x 1/2), which the backtest checks ("ordered by then" calibration). There is
  a date exactly when b >= 1/2, so the date, its reason, p_alive and churn_prob never disagree;
- `avg_days_between_orders`: the customer's own mean gap between purchase days (feature
  `gap_mean_days`), empty for a customer with one purchase day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from models.btyd_features import BTYDFeatures
from models.btyd_fit import Summary
from models.targeting import in_words, percent, percents

GRID_POINTS = 24
DUE = 0.5  # the date is the median: half of the customers like her who stay have ordered by then
_EPS = 1e-9


def quiet_while_customer(btyd: BTYDFeatures, summary: Summary, days: float) -> np.ndarray:
    """q(days) of the module docstring for the base's models, averaged in log-odds."""
    quiet = []
    for name in btyd.base:
        model = btyd.purchases[name]
        if name == "pareto" or name in ("bgnbd", "mbgnbd"):
            r, alpha = model.params_["r"], model.params_["alpha"]
            age = summary.age / model.time_scale
            q = np.exp(
                (r + summary.x) * (np.log(alpha + age) - np.log(alpha + age + days / model.time_scale))
            )
        else:
            alive = np.clip(np.asarray(model.p_alive(summary), float), _EPS, 1)
            none = np.asarray(model.p_no_purchase(summary, days), float)
            q = 1 - (1 - none) / alive
        quiet.append(np.clip(q, _EPS, 1 - _EPS))
    return expit(np.mean([logit(q) for q in quiet], axis=0))


def days_to_next_order(
    btyd: BTYDFeatures, features: pd.DataFrame, max_days: int, buys_if_alive: np.ndarray | None = None
) -> np.ndarray:
    """Median days (float, >= 1) from the cut-off to the next order while a customer; NaN beyond `max_days`.

    `buys_if_alive`: per customer, P(an order within `max_days` | alive) the median must agree with
    (module docstring); None keeps the base's own.
    """
    grid = np.unique(np.round(np.geomspace(1, max_days, GRID_POINTS)))
    summary = Summary.of(features)
    quiet = np.column_stack([quiet_while_customer(btyd, summary, float(d)) for d in grid])
    if buys_if_alive is not None:
        quiet = pinned(quiet, 1 - np.asarray(buys_if_alive, float))
    return median_days(grid, quiet)


def pinned(quiet: np.ndarray, quiet_at_end: np.ndarray) -> np.ndarray:
    """`quiet` (customers x grid days, falling along a row, last column at the horizon H) with the
    chance of an order by each day scaled per row so that the last column is `quiet_at_end`:
    whether she orders within H is the row's, when within H is the base's (module docstring). Each
    row keeps falling, so its median is within the grid exactly when `quiet_at_end` <= DUE."""
    end = np.clip(quiet_at_end, 0, 1)
    ordered = 1 - quiet
    shifted = 1 - ordered * ((1 - end) / ordered[:, -1])[:, None]
    # Exactly the row's number at the horizon, so rounding cannot put a date on a row with b < 1/2.
    shifted[:, -1] = end
    return shifted


def median_days(grid: np.ndarray, quiet: np.ndarray) -> np.ndarray:
    """Per row of `quiet` (q at the `grid` days), the day where q crosses DUE, interpolated in log
    days; NaN when it does not cross within the grid."""
    # q(d) falls with d; the first grid point at or below DUE brackets the median with the one before it.
    below = quiet <= DUE
    first = np.argmax(below, axis=1)
    days = np.full(len(quiet), np.nan)
    found = below.any(axis=1)
    days[found & (first == 0)] = grid[0]
    inner = np.flatnonzero(found & (first > 0))
    hi, lo = first[inner], first[inner] - 1
    q_lo, q_hi = quiet[inner, lo], quiet[inner, hi]
    share = np.where(q_lo > q_hi, (q_lo - DUE) / np.maximum(q_lo - q_hi, 1e-12), 1.0)
    log_days = np.log(grid[lo]) + np.clip(share, 0, 1) * (np.log(grid[hi]) - np.log(grid[lo]))
    days[inner] = np.exp(log_days)
    return days


def buys_if_alive(p_alive: np.ndarray, churn_prob: np.ndarray) -> np.ndarray:
    """b = P(an order in the horizon | alive) = (1 - churn_prob) / p_alive, capped to [0, 1] (0 when
    p_alive is 0): a dead customer places no order, so 1 - churn_prob = p_alive x b."""
    alive = np.asarray(p_alive, float)
    buys = 1 - np.asarray(churn_prob, float)
    return np.clip(np.divide(buys, alive, out=np.zeros_like(alive), where=alive > 0), 0, 1)


def next_order(
    btyd: BTYDFeatures,
    features: pd.DataFrame,
    p_alive: np.ndarray,
    churn_prob: np.ndarray,
    min_p_alive: float,
    max_days: int,
    alive_known: bool = True,
) -> pd.DataFrame:
    """Columns days_to_next_order (float days after the cut-off, NaN when left empty),
    avg_days_between_orders (float days, NaN for one purchase day) and next_order_reason (text), one
    row per row of `features` (which carries `gap_mean_days`). The scorer turns the days into
    `next_order_date` = as_of + ceil(days) (`next_order_date`).

    `p_alive` and `churn_prob` are the row's own (over `max_days`). The date is left empty for a
    customer with `p_alive` below `min_p_alive` or whose chance of an order within `max_days` given
    alive, (1 - churn_prob) / p_alive, is below 1/2 (then the median is beyond `max_days`); the
    reason says which and quotes the numbers.

    `alive_known` False (the base found no drop-out, `models.predictor`): `p_alive` is not known (NaN, or
    only its lower bound 1 - churn_prob, which read as an estimate would make every customer "probably no
    longer a customer" and certain to order if alive) and is not read. The date is then not conditioned
    on her being a customer: it is the median of her time to the next order, shown when her chance of an
    order within `max_days`, 1 - churn_prob, is at least 1/2 (P(an order by then) = 1/2).
    """
    churn = np.asarray(churn_prob, float)
    alive = np.asarray(p_alive, float) if alive_known else np.ones_like(churn)
    chance = buys_if_alive(alive, churn)
    days = days_to_next_order(btyd, features, max_days, chance)
    show = (alive >= min_p_alive) & np.isfinite(days)
    return pd.DataFrame(
        {
            "days_to_next_order": np.where(show, days, np.nan),
            "avg_days_between_orders": features["gap_mean_days"].to_numpy(float),
            "next_order_reason": [
                timing_reason(a, c, b, s, min_p_alive, max_days)
                if alive_known
                else unconditional_timing_reason(c, s, max_days)
                for a, c, b, s in zip(alive, churn, chance, show, strict=True)
            ],
        },
        index=features.index,
    )


def timing_reason(
    p_alive: float, churn_prob: float, chance: float, shown: bool, min_p_alive: float, max_days: int
) -> str:
    """The row's next_order_reason, quoting the numbers the date (or its absence) follows from."""
    if p_alive < min_p_alive:
        alive, line = percents(p_alive, min_p_alive)
        return f"left empty: probably no longer a customer (p_alive {in_words(alive)}, below the {line} line)"
    # Why the date is there or not: her chance of an order within the horizon if still a customer.
    chance_text = (
        f"within {max_days} days: (1 - churn_prob {percent(churn_prob)}) / p_alive {percent(p_alive)}"
    )
    if shown:
        # The chance is capped at 1 where churn_prob sits at its floor 1 - p_alive (the churn model expected
        # her to order more surely than the base that she is alive): a bound, not a certainty.
        return (
            f"median date of her next order if still a customer (p_alive {percent(p_alive)}); if she is, an "
            f"order {chance_text} {_equals(percent(min(chance, 0.999)))}"
        )
    chance_shown, due = percents(chance, DUE)
    return f"left empty: even if still a customer, unlikely to order {chance_text} {_equals(chance_shown)} < {due}"


def unconditional_timing_reason(churn_prob: float, shown: bool, max_days: int) -> str:
    """The next_order_reason where the log shows no drop-out (`next_order`'s `alive_known` False): the date
    and its absence follow from the chance of an order within the horizon alone."""
    chance, due = percents(1 - churn_prob, DUE)
    unknown = "the log shows no drop-out, so whether she is still a customer is not known"
    within = f"within {max_days} days"
    if shown:
        return (
            f"median date of her next order (an order {within}: 1 - churn_prob {_equals(chance)}); {unknown}"
        )
    return f"left empty: unlikely to order {within} (1 - churn_prob is {in_words(chance)}, below {due}); {unknown}"


def _equals(shown: str) -> str:
    """'= 73%', or '> 99%' and '< 1%' for a bound (it read '= >99%')."""
    return f"{shown[0]} {shown[1:]}" if shown[:1] in "<>" else f"= {shown}"


def next_order_date(as_of: pd.Series, days: pd.Series) -> pd.Series:
    """as_of + ceil(days) as dates (datetime.date; None where days is NaN): the due day, not an instant."""
    whole = np.ceil(days.to_numpy(float))
    known = np.isfinite(whole)
    dates = pd.to_datetime(as_of).to_numpy() + pd.to_timedelta(np.where(known, whole, 0), unit="D")
    return pd.Series(pd.Series(dates).dt.date.to_numpy(object), index=as_of.index).where(known, None)
