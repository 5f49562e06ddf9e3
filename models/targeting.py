"""Targeting rules: segments and next best actions from predictions and RFM.

Thresholds are relative to the customer base: `fit` learns them from the base's predictions
(quantiles), so "high value" means the same thing for a small shop and a large one, and a single
customer scored at request time is judged against the base the model was trained on.
Batch scoring and the HTTP service both call `TargetingRules.apply`.

Segments, in order of precedence (the first that matches wins):

| segment | when | action |
|---|---|---|
| new | first purchase within `new_customer_days` | welcome_series |
| vip | predicted value in the top (1 - high_value_quantile), churn risk below the at-risk line | upsell |
| high_value_at_risk | predicted value in the top, churn risk at or above the at-risk line | retention_offer |
| lapsed_valuable | past spend in the top (1 - valuable_history_quantile), p_alive below `lapsed_p_alive` | win_back |
| active_low_value | predicted value below the `low_value_quantile`, churn risk below the line | cross_sell |
| nurture | everyone else | nurture |
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

SEGMENT_ACTIONS = {
    "new": "welcome_series",
    "vip": "upsell",
    "high_value_at_risk": "retention_offer",
    "lapsed_valuable": "win_back",
    "active_low_value": "cross_sell",
    "nurture": "nurture",
}
SEGMENTS = tuple(SEGMENT_ACTIONS)
ACTIONS = tuple(dict.fromkeys(SEGMENT_ACTIONS.values()))
REQUIRED = ("predicted_clv", "churn_prob", "p_alive", "tenure_days", "monetary_total")


class TargetingRules(BaseEstimator):
    """Base-relative thresholds (learned by `fit`) and the rules that turn predictions into actions.

    Parameters are quantiles of the base (0-1) except `lapsed_p_alive` (a probability) and
    `new_customer_days` (days since the first purchase).
    """

    def __init__(
        self,
        high_value_quantile: float = 0.8,
        low_value_quantile: float = 0.5,
        at_risk_churn_quantile: float = 0.6,
        valuable_history_quantile: float = 0.8,
        lapsed_p_alive: float = 0.3,
        new_customer_days: int = 60,
    ):
        self.high_value_quantile = high_value_quantile
        self.low_value_quantile = low_value_quantile
        self.at_risk_churn_quantile = at_risk_churn_quantile
        self.valuable_history_quantile = valuable_history_quantile
        self.lapsed_p_alive = lapsed_p_alive
        self.new_customer_days = new_customer_days

    def fit(self, predictions: pd.DataFrame, y=None) -> TargetingRules:
        _check(predictions)
        if not 0 < self.low_value_quantile < self.high_value_quantile < 1:
            raise ValueError("need 0 < low_value_quantile < high_value_quantile < 1")
        clv = predictions["predicted_clv"].to_numpy(float)
        self.value_edges_ = np.quantile(clv, np.linspace(0.1, 0.9, 9))
        self.high_value_ = float(np.quantile(clv, self.high_value_quantile))
        self.low_value_ = float(np.quantile(clv, self.low_value_quantile))
        self.at_risk_ = float(
            np.quantile(predictions["churn_prob"].to_numpy(float), self.at_risk_churn_quantile)
        )
        self.valuable_history_ = float(
            np.quantile(predictions["monetary_total"].to_numpy(float), self.valuable_history_quantile)
        )
        return self

    def thresholds(self) -> dict[str, float]:
        """The learned thresholds in plain numbers, for reports and the model card."""
        check_is_fitted(self, "high_value_")
        return {
            "high_value_clv": self.high_value_,
            "low_value_clv": self.low_value_,
            "at_risk_churn_prob": self.at_risk_,
            "valuable_history_revenue": self.valuable_history_,
            "lapsed_p_alive": self.lapsed_p_alive,
            "new_customer_days": self.new_customer_days,
        }

    def apply(self, predictions: pd.DataFrame) -> pd.DataFrame:
        """Segment, next_best_action, value_decile (1-10, 10 highest) and a one-line reason per row."""
        check_is_fitted(self, "high_value_")
        _check(predictions)
        clv = predictions["predicted_clv"].to_numpy(float)
        churn = predictions["churn_prob"].to_numpy(float)
        p_alive = predictions["p_alive"].to_numpy(float)
        tenure = predictions["tenure_days"].to_numpy(float)
        history = predictions["monetary_total"].to_numpy(float)

        is_new = tenure <= self.new_customer_days
        high = clv >= self.high_value_
        at_risk = churn >= self.at_risk_
        lapsed = (history >= self.valuable_history_) & (p_alive < self.lapsed_p_alive)
        low = clv < self.low_value_
        conditions = [is_new, high & ~at_risk, high & at_risk, lapsed, low & ~at_risk]
        segment = np.select(conditions, list(SEGMENTS[:5]), default="nurture")

        reasons = np.select(
            conditions,
            [
                _fmt("first purchase {} days ago", tenure, "{:.0f}"),
                _fmt("predicted value {} is in the top band", clv, "{:,.0f}")
                + ", churn risk "
                + _pct(churn)
                + " is low",
                _fmt("predicted value {} is in the top band", clv, "{:,.0f}")
                + ", churn risk "
                + _pct(churn)
                + " is high",
                _fmt("spent {} so far", history, "{:,.0f}")
                + ", probability still active only "
                + _pct(p_alive),
                _fmt("predicted value {} is below the median band", clv, "{:,.0f}") + ", still active",
            ],
            default=_fmt("predicted value {}", clv, "{:,.0f}") + ", churn risk " + _pct(churn),
        )
        return pd.DataFrame(
            {
                "segment": segment,
                "next_best_action": pd.Series(segment).map(SEGMENT_ACTIONS).to_numpy(),
                "value_decile": (np.searchsorted(self.value_edges_, clv, side="right") + 1).astype("int64"),
                "reason": reasons,
            },
            index=predictions.index,
        )


def _check(predictions: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in predictions.columns]
    if missing:
        raise ValueError(f"targeting needs columns {', '.join(missing)}")
    if predictions.empty:
        raise ValueError("targeting needs at least one customer")


def _fmt(template: str, values: np.ndarray, spec: str) -> np.ndarray:
    return np.array([template.format(spec.format(v)) for v in values], dtype=object)


def _pct(values: np.ndarray) -> np.ndarray:
    return np.array([f"{v:.0%}" for v in values], dtype=object)
