"""The retention what-if from the models: retention up N points, customer by customer.

The textbook answer (the page's textbook view) scales the whole base's value by the change in its
expected lifespan, churn / (churn - N points). This one uses each customer's own prediction instead:

    value if alive  v_i = predicted_clv_i / p_alive_i
    after the lift  predicted_clv'_i = v_i x min(p_alive_i + N / 100, 1)   (max(..., 0) for N < 0)

Assumption: a customer's predicted value is her probability of being alive times what she is worth
if alive. That is exact for the buy-till-you-die base, whose conditional expectation of purchases
E[Y(t) | x, t_x, T] is P(alive) x the purchases of a live customer (Fader, Hardie and Lee 2005,
"Counting your customers the easy way"), and an approximation for the boosted model on top of it.
The lift raises the probability of being alive and leaves the value if alive as it is (a retained
customer buys as the live ones do). A customer already certainly alive (p_alive = 1) gains nothing.
Below P_ALIVE_FLOOR the ratio is unstable (both numbers are near 0), so p_alive is taken as the
floor there: her value if alive is at most 1 / P_ALIVE_FLOOR times her prediction, an underestimate,
never a blow-up.

A customer whose p_alive is empty (the log shows no drop-out, `models.predictor`) is not reached: whether
she is still a customer is not known, so neither is what keeping her adds. Her value stays as predicted and
`p_alive_unknown` counts her; on such a log nobody is reached and the what-if changes nothing.

Profit: extra value x margin (x 1 without a margin: a revenue figure) - retention_cost x customers
contacted, where the customers contacted are those the lift reaches (p_alive < 1 for N > 0): the
lift is assumed bought with `[economics] retention_cost` per customer reached (nothing for N <= 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

P_ALIVE_FLOOR = 0.01


def alive_value(predicted_clv: np.ndarray, p_alive: np.ndarray) -> np.ndarray:
    """Value if alive per customer (same unit as `predicted_clv`): predicted_clv / max(p_alive, floor)."""
    return np.asarray(predicted_clv, float) / np.maximum(np.asarray(p_alive, float), P_ALIVE_FLOOR)


def retention_what_if(
    scores: pd.DataFrame, lift_points: float, margin: float | None, retention_cost: float = 0.0
) -> dict[str, float]:
    """Total predicted value and profit before and after raising every customer's p_alive by
    `lift_points` percentage points (from -100 to 100), as the module docstring derives.

    `scores`: a score table (`predicted_clv`, `p_alive`; one row per customer). Returns customers,
    contacted (customers the lift changes), p_alive_unknown (customers with an empty p_alive, not
    reached: module docstring), value_before, value_after, value_change (in the unit of
    predicted_clv over the model's horizon), value_change_share (value_change / value_before, NaN when
    there is no value), profit_before, profit_after (value x margin, after: minus the retention cost),
    retention_spend (retention_cost x contacted) and profit_change. ValueError for a lift outside
    -100..100 or missing columns.
    """
    if not -100 <= lift_points <= 100:
        raise ValueError(f"a retention lift is from -100 to 100 percentage points, got {lift_points}")
    missing = [c for c in ("predicted_clv", "p_alive") if c not in scores.columns]
    if missing:
        raise ValueError(f"the score table lacks {', '.join(missing)}; re-score with `clv score`")
    value = scores["predicted_clv"].to_numpy(float)
    p_alive = np.clip(scores["p_alive"].to_numpy(float), 0.0, 1.0)
    unknown = np.isnan(p_alive)
    lifted = np.clip(p_alive + lift_points / 100, 0.0, 1.0)
    # Where the lift changes nothing the value is left exactly as predicted (no round trip through the ratio).
    changed = (lifted != p_alive) & ~unknown
    after = np.where(changed, alive_value(value, p_alive) * lifted, value)
    unit = 1.0 if margin is None else float(margin)
    contacted = int(changed.sum())
    before_total, after_total = float(value.sum()), float(after.sum())
    # Lowering retention (N < 0) is a scenario, not a campaign: nobody is paid to leave.
    spend = retention_cost * contacted if lift_points > 0 else 0.0
    return {
        "lift_points": float(lift_points),
        "customers": int(len(value)),
        "contacted": contacted,
        "p_alive_unknown": int(unknown.sum()),
        "value_before": before_total,
        "value_after": after_total,
        "value_change": after_total - before_total,
        "value_change_share": (after_total - before_total) / before_total if before_total else float("nan"),
        "profit_before": before_total * unit,
        "profit_after": after_total * unit - spend,
        "retention_spend": spend,
        "profit_change": (after_total - before_total) * unit - spend,
    }
