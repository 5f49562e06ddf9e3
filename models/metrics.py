"""Evaluation metrics for CLV and churn predictions (pure numpy; used by backtests and tests).

Ranking metrics say whether the model puts the valuable customers first; calibration metrics say
whether the totals are right; churn metrics say whether churners are separated and probabilities honest.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import brier_score_loss, roc_auc_score


def _arrays(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D and of equal length, got {y_true.shape} and {y_pred.shape}"
        )
    if not len(y_true):
        raise ValueError("cannot evaluate on zero customers")
    return y_true, y_pred


def spearman(y_true, y_pred) -> float:
    """Rank correlation between actual and predicted value (ties averaged)."""
    y_true, y_pred = _arrays(y_true, y_pred)
    if np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return 0.0
    return float(spearmanr(y_true, y_pred).statistic)


def _gini(y_true: np.ndarray, order_by: np.ndarray) -> float:
    # Sort by the score descending; ties broken by actual ascending so a constant score earns nothing.
    order = np.lexsort((y_true, -order_by))
    cumulative = np.cumsum(y_true[order]) / y_true.sum()
    n = len(y_true)
    return float(cumulative.sum() / n - (n + 1) / (2 * n))


def normalized_gini(y_true, y_pred) -> float:
    """Gini of the prediction's ranking divided by the Gini of the perfect ranking (1 = perfect, 0 = random)."""
    y_true, y_pred = _arrays(y_true, y_pred)
    y_true = np.clip(y_true, 0, None)
    if y_true.sum() <= 0:
        return 0.0
    perfect = _gini(y_true, y_true)
    return _gini(y_true, y_pred) / perfect if perfect > 0 else 0.0


def top_share_capture(y_true, y_pred, share: float = 0.1) -> float:
    """Share of total actual value earned by the top `share` of customers ranked by prediction."""
    y_true, y_pred = _arrays(y_true, y_pred)
    y_true = np.clip(y_true, 0, None)
    total = y_true.sum()
    if total <= 0:
        return 0.0
    k = max(1, int(round(share * len(y_true))))
    order = np.lexsort((y_true, -y_pred))  # ties: no credit for luck
    return float(y_true[order[:k]].sum() / total)


def top_decile_capture(y_true, y_pred) -> float:
    return top_share_capture(y_true, y_pred, 0.1)


def decile_table(y_true, y_pred, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Mean predicted and mean actual value per decile of prediction (decile 1 = lowest)."""
    y_true, y_pred = _arrays(y_true, y_pred)
    order = np.argsort(y_pred, kind="stable")
    bins = np.array_split(order, n_bins)
    predicted = np.array([y_pred[b].mean() if len(b) else np.nan for b in bins])
    actual = np.array([y_true[b].mean() if len(b) else np.nan for b in bins])
    return predicted, actual


def decile_mape(y_true, y_pred, n_bins: int = 10) -> float:
    """Mean absolute percentage error of the decile totals; deciles whose actual total is 0 are skipped."""
    predicted, actual = decile_table(y_true, y_pred, n_bins)
    mask = np.abs(actual) > 1e-9
    if not mask.any():
        return float("nan")
    return float(np.mean(np.abs(predicted[mask] - actual[mask]) / np.abs(actual[mask])))


def aggregate_error(y_true, y_pred) -> float:
    """Relative error of the predicted total: (sum predicted - sum actual) / sum actual."""
    y_true, y_pred = _arrays(y_true, y_pred)
    total = y_true.sum()
    return float((y_pred.sum() - total) / total) if total else float("nan")


def mae(y_true, y_pred) -> float:
    y_true, y_pred = _arrays(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def rmse(y_true, y_pred) -> float:
    y_true, y_pred = _arrays(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def interval_coverage(y_true, low, high) -> float:
    """Share of actual values inside [low, high]."""
    y_true = np.asarray(y_true, dtype=float)
    return float(np.mean((y_true >= np.asarray(low)) & (y_true <= np.asarray(high))))


def churn_auc(churned, churn_prob) -> float:
    churned = np.asarray(churned, dtype=int)
    if churned.min() == churned.max():
        return float("nan")
    return float(roc_auc_score(churned, np.asarray(churn_prob, dtype=float)))


def brier(churned, churn_prob) -> float:
    return float(
        brier_score_loss(np.asarray(churned, dtype=int), np.clip(np.asarray(churn_prob, dtype=float), 0, 1))
    )


def calibration_table(churned, churn_prob, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean predicted probability, observed rate and count per equal-width probability bin."""
    churned = np.asarray(churned, dtype=float)
    prob = np.clip(np.asarray(churn_prob, dtype=float), 0, 1)
    idx = np.minimum((prob * n_bins).astype(int), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.bincount(idx, prob, n_bins) / count
        observed = np.bincount(idx, churned, n_bins) / count
    return mean_pred, observed, count


def value_metrics(y_true, y_pred) -> dict[str, float]:
    """All CLV metrics in one dict, keyed by the names used in MLflow and reports."""
    return {
        "spearman": spearman(y_true, y_pred),
        "normalized_gini": normalized_gini(y_true, y_pred),
        "top_decile_capture": top_decile_capture(y_true, y_pred),
        "decile_mape": decile_mape(y_true, y_pred),
        "aggregate_error": aggregate_error(y_true, y_pred),
        "mae": mae(y_true, y_pred),
        "rmse": rmse(y_true, y_pred),
    }


def churn_metrics(churned, churn_prob) -> dict[str, float]:
    return {"churn_auc": churn_auc(churned, churn_prob), "brier": brier(churned, churn_prob)}
