"""Backtest plots people would rather look at than read. Each function returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from models import metrics  # noqa: E402


def gain_curve(actual: np.ndarray, predictions: dict[str, np.ndarray]) -> Figure:
    """Cumulative share of actual value captured when customers are taken in order of each prediction."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    actual = np.clip(np.asarray(actual, float), 0, None)
    share = np.arange(1, len(actual) + 1) / len(actual)
    for name, pred in {"perfect": actual, **predictions}.items():
        order = np.lexsort((actual, -np.asarray(pred, float)))
        ax.plot(
            share,
            np.cumsum(actual[order]) / actual.sum(),
            label=name,
            lw=1.2 if name != "perfect" else 0.8,
            ls="--" if name == "perfect" else "-",
        )
    ax.plot([0, 1], [0, 1], color="grey", lw=0.6, ls=":", label="random")
    ax.set(
        xlabel="share of customers (ranked by prediction)",
        ylabel="share of actual revenue",
        title="Cumulative gain",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def deciles(actual: np.ndarray, predicted: np.ndarray) -> Figure:
    """Mean predicted vs mean actual value per decile of prediction."""
    pred_mean, actual_mean = metrics.decile_table(actual, predicted)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    x = np.arange(1, len(pred_mean) + 1)
    ax.bar(x - 0.2, pred_mean, width=0.4, label="predicted")
    ax.bar(x + 0.2, actual_mean, width=0.4, label="actual")
    ax.set(
        xlabel="decile of predicted CLV (10 = highest)",
        ylabel="mean value per customer",
        title="Predicted vs actual by decile",
        xticks=x,
    )
    ax.legend()
    fig.tight_layout()
    return fig


def calibration(churned: np.ndarray, probabilities: dict[str, np.ndarray]) -> Figure:
    """Observed churn rate against predicted probability, per probability bin."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=0.8, label="perfectly calibrated")
    for name, prob in probabilities.items():
        mean_pred, observed, count = metrics.calibration_table(churned, prob)
        keep = count > 0
        ax.plot(mean_pred[keep], observed[keep], marker="o", label=name)
    ax.set(
        xlabel="predicted churn probability",
        ylabel="observed churn rate",
        title="Churn calibration",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def importance(gain: pd.Series, top: int = 20) -> Figure:
    """Total gain of the most important features of the value model."""
    gain = gain.head(top)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(gain) + 1.2))
    ax.barh(gain.index, gain.to_numpy() / gain.sum())
    ax.set(xlabel="share of total gain (top features)", title="Feature importance (CLV model)")
    fig.tight_layout()
    return fig


def distribution(predicted_clv: np.ndarray) -> Figure:
    """Histogram of predicted CLV on a log scale (CLV is long-tailed)."""
    values = np.asarray(predicted_clv, float)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(np.log10(1 + values), bins=50)
    ticks = np.arange(0, np.ceil(np.log10(1 + values.max() if len(values) else 1)) + 1)
    ax.set_xticks(ticks, [f"{10**t - 1:,.0f}" for t in ticks])
    ax.set(xlabel="predicted CLV (log scale)", ylabel="customers", title="Distribution of predicted CLV")
    fig.tight_layout()
    return fig
