"""Evaluation metrics for CLV and churn predictions (pure numpy; used by backtests, benchmarks and tests).

The definitions are those of the shared accuracy bench, `bench/score.py` in the project's shared folder
(`/work/shared/bench/score.py` on the development machines), which scores held-out real logs; the
project's own numbers must be comparable with it. tests/models/test_metrics.py pins values computed with
that script, and compares with it live when it is present. For y = actual value, p = prediction:

- spearman: Spearman rank correlation of p and y, tied values given their average rank.
- normalized_gini: Gini of y with customers ordered by p, divided by the Gini of y ordered by itself.
  Customers with tied p are given their group's mean y: the expected value under a random tie-break.
- top_decile_capture: share of the total y held by the top 10% of customers by p (round(n / 10), at
  least one, Python rounding), again the expected value under a random tie-break at the boundary.
- decile_mape: customers sorted by p ascending (ties broken by a shuffle with a fixed seed) into 10
  equal bins (customer i of the order goes to bin i * 10 // n); the mean over bins of
  |sum p - sum y| / sum y. Bins whose sum y is not positive are left out (`decile_zero_bins` counts them).
- aggregate_error: sum p / sum y - 1.
- churn_auc, brier: ROC AUC and Brier score of the churn probability (clipped to [0, 1]) for "no purchase
  in the window".

Undefined values are NaN, never a made-up 0: Spearman of a constant prediction or of constant actuals,
Gini, top-decile capture and aggregate error when the actuals sum to 0, decile MAPE when no bin has
positive actuals, churn AUC when everyone (or no one) churned. The reference prints those as null.
Predictions must be finite (the reference refuses non-finite ones too): a NaN prediction is a bug to fix
where it is made, not a number to rank.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import brier_score_loss, roc_auc_score

# The reference shuffles ties in decile_mape with numpy's default_rng(0).
DECILE_SEED = 0


def _arrays(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D and of equal length, got {y_true.shape} and {y_pred.shape}"
        )
    if not len(y_true):
        raise ValueError("cannot evaluate on zero customers")
    if not np.isfinite(y_pred).all():
        raise ValueError(f"y_pred has {int((~np.isfinite(y_pred)).sum())} non-finite values")
    return y_true, y_pred


def _tie_mean(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """y_true replaced by the mean of y_true among the customers with the same prediction."""
    _, group = np.unique(y_pred, return_inverse=True)
    return (np.bincount(group, y_true) / np.bincount(group))[group]


def spearman(y_true, y_pred) -> float:
    """Spearman rank correlation of actual and predicted value (average ranks for ties).

    NaN when either side is constant (no ranking to compare), as in the reference.
    """
    y_true, y_pred = _arrays(y_true, y_pred)
    if np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return float("nan")
    return float(spearmanr(y_pred, y_true).statistic)


def _gini(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Gini of y_true ordered by y_pred descending, tied predictions given their group's mean y_true."""
    order = np.argsort(-y_pred, kind="stable")
    a = _tie_mean(y_true, y_pred)[order]
    n = len(a)
    return float((np.cumsum(a) / a.sum()).sum() / n - (n + 1) / (2 * n))


def normalized_gini(y_true, y_pred) -> float:
    """Gini of the prediction's ordering over the Gini of the perfect one (1 = perfect, about 0 = random).

    A constant prediction scores exactly 0 (every customer gets the mean). NaN when the actuals sum to 0.
    """
    y_true, y_pred = _arrays(y_true, y_pred)
    if y_true.sum() == 0:
        return float("nan")
    perfect = _gini(y_true, y_true)
    return _gini(y_true, y_pred) / perfect if perfect != 0 else float("nan")


def top_share_capture(y_true, y_pred, share: float = 0.1) -> float:
    """Share of the total actual value held by the top `share` of customers ranked by prediction.

    The top is round(share x n) customers (at least one); customers tied at the boundary count with their
    group's mean actual value (the expected capture under a random tie-break). NaN when the actuals sum to 0.
    """
    y_true, y_pred = _arrays(y_true, y_pred)
    total = y_true.sum()
    if total == 0:
        return float("nan")
    k = max(1, int(round(len(y_pred) * share)))
    order = np.argsort(-y_pred, kind="stable")
    return float(_tie_mean(y_true, y_pred)[order][:k].sum() / total)


def top_decile_capture(y_true, y_pred) -> float:
    return top_share_capture(y_true, y_pred, 0.1)


def _decile_bins(y_pred: np.ndarray, n_bins: int, seed: int) -> np.ndarray:
    """Bin (0 = lowest prediction) of each customer: equal-count bins, ties in a fixed random order."""
    n = len(y_pred)
    jitter = np.random.default_rng(seed).permutation(n)
    order = np.lexsort((jitter, y_pred))  # ascending prediction, ties by the shuffle
    bins = np.empty(n, dtype=int)
    bins[order] = np.arange(n) * n_bins // n
    return bins


def decile_sums(
    y_true, y_pred, n_bins: int = 10, seed: int = DECILE_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum of predicted and of actual value and customer count per bin of prediction (bin 0 = lowest)."""
    y_true, y_pred = _arrays(y_true, y_pred)
    bins = _decile_bins(y_pred, n_bins, seed)
    return (
        np.bincount(bins, y_pred, n_bins),
        np.bincount(bins, y_true, n_bins),
        np.bincount(bins, minlength=n_bins),
    )


def decile_table(y_true, y_pred, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Mean predicted and mean actual value per decile of prediction (decile 1 = lowest), the bins of
    `decile_mape`; NaN for a bin without customers (fewer customers than bins)."""
    predicted, actual, count = decile_sums(y_true, y_pred, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return predicted / count, actual / count


def decile_mape(y_true, y_pred, n_bins: int = 10, seed: int = DECILE_SEED) -> float:
    """Mean over prediction deciles of |sum predicted - sum actual| / sum actual.

    Deciles whose actual sum is not positive are left out (`decile_zero_bins`); NaN when all are.
    """
    predicted, actual, _ = decile_sums(y_true, y_pred, n_bins, seed)
    ok = actual > 0
    if not ok.any():
        return float("nan")
    return float(np.mean(np.abs(predicted[ok] - actual[ok]) / actual[ok]))


def decile_zero_bins(y_true, y_pred, n_bins: int = 10, seed: int = DECILE_SEED) -> int:
    """How many non-empty deciles `decile_mape` leaves out because their actual sum is not positive."""
    _, actual, count = decile_sums(y_true, y_pred, n_bins, seed)
    return int(((actual <= 0) & (count > 0)).sum())


def aggregate_error(y_true, y_pred) -> float:
    """Relative error of the predicted total: sum predicted / sum actual - 1 (NaN when the actuals sum to 0)."""
    y_true, y_pred = _arrays(y_true, y_pred)
    total = y_true.sum()
    return float(y_pred.sum() / total - 1) if total else float("nan")


def mae(y_true, y_pred) -> float:
    y_true, y_pred = _arrays(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def rmse(y_true, y_pred) -> float:
    y_true, y_pred = _arrays(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def poisson_deviances(y_true, y_pred) -> np.ndarray:
    """Per-customer Poisson deviance of expected counts, 2 (y ln(y / mu) - (y - mu)) (McCullagh and
    Nelder 1989, section 2.3), with mu floored at 1e-9: a proper score for expected counts."""
    y = np.asarray(y_true, dtype=float)
    mu = np.clip(np.asarray(y_pred, dtype=float), 1e-9, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        own = np.where(y > 0, y * np.log(y / mu), 0.0)
    return 2 * (own - (y - mu))


def interval_coverage(y_true, low, high) -> float:
    """Share of actual values inside [low, high]."""
    y_true = np.asarray(y_true, dtype=float)
    return float(np.mean((y_true >= np.asarray(low)) & (y_true <= np.asarray(high))))


def _churn_arrays(churned, churn_prob) -> tuple[np.ndarray, np.ndarray]:
    churned = np.asarray(churned).astype(int)
    prob = np.asarray(churn_prob, dtype=float)
    if churned.shape != prob.shape or churned.ndim != 1 or not len(churned):
        raise ValueError(
            f"churned and churn_prob must be 1-D, non-empty and of equal length, got "
            f"{churned.shape} and {prob.shape}"
        )
    if not np.isfinite(prob).all():
        raise ValueError(f"churn_prob has {int((~np.isfinite(prob)).sum())} non-finite values")
    return churned, np.clip(prob, 0, 1)


def churn_auc(churned, churn_prob) -> float:
    """ROC AUC of the churn probability (clipped to [0, 1]) for churned = no purchase in the window.

    NaN when only one class is present (the reference raises there)."""
    churned, prob = _churn_arrays(churned, churn_prob)
    if churned.min() == churned.max():
        return float("nan")
    return float(roc_auc_score(churned, prob))


def brier(churned, churn_prob) -> float:
    """Mean squared error of the churn probability (clipped to [0, 1]) against churned (0/1)."""
    churned, prob = _churn_arrays(churned, churn_prob)
    return float(brier_score_loss(churned, prob))


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


def bootstrap_gains(gain, n: int, seed: int, resamples: int = 100) -> np.ndarray:
    """A paired gain on `resamples` bootstrap resamples of n customers (Efron and Tibshirani 1993, ch. 6).

    `gain(rows)` scores the candidate against the reference on the customers at positions `rows` (an
    integer array of length n, drawn with replacement); returns the `resamples` gains (NaN where a
    resample leaves the gain undefined). Callers read a low quantile of them: a gain above 0 in 95% of
    the resamples is one beyond noise.
    """
    rng = np.random.default_rng(seed)
    return np.array([gain(rng.integers(0, n, n)) for _ in range(resamples)], dtype=float)


def low_mean_gain(gain: np.ndarray, seed: int, resamples: int = 100) -> float:
    """The 5% bootstrap quantile of the mean of a per-customer paired `gain` (`bootstrap_gains`): above 0,
    the candidate is ahead beyond noise."""
    gain = np.asarray(gain, dtype=float)
    return float(
        np.nanquantile(bootstrap_gains(lambda rows: gain[rows].mean(), len(gain), seed, resamples), 0.05)
    )


def calibration_error(happened, prob, n_bins: int = 10) -> float:
    """Expected calibration error: the count-weighted mean |predicted - observed| over the bins of
    `calibration_table` (Naeini, Cooper and Hauskrecht 2015); 0 is perfectly calibrated."""
    mean_pred, observed, count = calibration_table(happened, prob, n_bins)
    used = count > 0
    if not used.any():
        return float("nan")
    return float(np.sum(count[used] * np.abs(mean_pred[used] - observed[used])) / count[used].sum())


def next_order_metrics(actual_days, predicted_days, p_by_then, horizon_days: int) -> dict[str, float]:
    """How well a predicted next-order day (days after the cut-off) did on a window of `horizon_days`.

    `actual_days`: days to the first order in the window (NaN: none); `p_by_then`: the predicted
    P(an order by the predicted day). Over the customers with a prediction:
    - median_abs_error_days: median |predicted - actual| over those who ordered in the window;
    - ordered_by_then: share who ordered by the predicted day, over those whose day is in the window
      (for a later day the window cannot tell); predicted_by_then: mean `p_by_then` over the same;
    - calibration_error: `calibration_error` of "ordered by then" against `p_by_then` over the same.
    """
    actual = np.asarray(actual_days, dtype=float)
    predicted = np.asarray(predicted_days, dtype=float)
    prob = np.asarray(p_by_then, dtype=float)
    has = np.isfinite(predicted)
    ordered = has & np.isfinite(actual)
    inside = has & (predicted <= horizon_days)
    by_then = np.isfinite(actual[inside]) & (actual[inside] <= predicted[inside])
    return {
        "median_abs_error_days": float(np.median(np.abs(predicted[ordered] - actual[ordered])))
        if ordered.any()
        else float("nan"),
        "ordered_by_then": float(by_then.mean()) if inside.any() else float("nan"),
        "predicted_by_then": float(prob[inside].mean()) if inside.any() else float("nan"),
        "calibration_error": calibration_error(by_then, prob[inside]) if inside.any() else float("nan"),
        "n_customers": float(has.sum()),
    }
