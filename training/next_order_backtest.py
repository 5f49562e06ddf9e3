"""The next-order backtest: the model's next order date against "last order + average gap".

At the backtest cut-off t both predict, for each customer, the day of her next order; the window
(t, t + H] says when she actually ordered first (`features.labels.next_order_label`). Both are
scored on the same customers: those with a model date (`models.next_order`: alive enough, due
within H) and a naive one (two purchase days or more). Metrics: `models.metrics.next_order_metrics`.
- `model`: the date given alive; P(an order by then) = p_alive / 2, as the date is the median given alive
  (1/2 where the model found no drop-out: its date is then the median of the next order, `models.next_order`);
- `naive`: last order + the customer's mean gap between purchase days, at least 1 day after t (an
  overdue customer's date would otherwise be in the past); it states no probability, so "ordered by
  then" is compared with 1/2, what a due date means.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from features.engine import to_pandas
from features.labels import next_order_label
from models import metrics
from training.shop_data import ShopData

MODEL, NAIVE = "model", "naive"
NEXT_ORDER_LABELS = {MODEL: "model (median given alive)", NAIVE: "last order + average gap"}
NEXT_ORDER_METRIC_LABELS = {
    "median_abs_error_days": "median abs err (days)",
    "ordered_by_then": "ordered by then",
    "predicted_by_then": "predicted",
    "calibration_error": "calibration err",
    "n_customers": "customers",
}


def naive_days(reference: pd.DataFrame) -> np.ndarray:
    """Days after the cut-off of last order + mean gap (at least 1); NaN with one purchase day."""
    gap = reference["gap_mean_days"].to_numpy(float)
    return np.where(
        np.isfinite(gap), np.maximum(gap - reference["recency_days"].to_numpy(float), 1.0), np.nan
    )


def backtest_next_order(
    data: ShopData,
    cutoff: dt.date,
    horizon_days: int,
    reference: pd.DataFrame,
    predicted: pd.DataFrame,
    alive_known: bool = True,
) -> pd.DataFrame:
    """One row per method (NEXT_ORDER_LABELS ids), one column per metric, on the window after `cutoff`.

    `reference`: the features at the cut-off; `predicted`: the served predictor's output for it (same order);
    `alive_known`: whether that predictor found drop-out (`CLVPredictor.dropout_found`).
    """
    actual = to_pandas(next_order_label(data.transactions, cutoff, horizon_days))
    days = actual.set_index("customer_id")["days_to_next_order"].astype(float)
    actual_days = days.reindex(reference["customer_id"]).to_numpy(float)
    model = predicted["days_to_next_order"].to_numpy(float)
    naive = naive_days(reference)
    both = np.isfinite(model) & np.isfinite(naive)
    model_prob = (predicted["p_alive"].to_numpy(float) if alive_known else np.ones(len(predicted))) / 2
    rows = {
        MODEL: metrics.next_order_metrics(
            actual_days[both], np.ceil(model[both]), model_prob[both], horizon_days
        ),
        NAIVE: metrics.next_order_metrics(
            actual_days[both], np.ceil(naive[both]), np.full(both.sum(), 0.5), horizon_days
        ),
    }
    return pd.DataFrame(rows).T
