"""Fitting at a cut-off, and the backtest: the model against the baselines on a held-out window.

The backtest trains with data up to a cut-off t and compares predictions with what customers
actually did in (t, t + H]. Value metrics use net revenue in the window clipped at zero (a customer
cannot be worth less than nothing to a campaign); churn metrics use "no purchase in the window".
Baselines, fitted on the same data at the same cut-off:
- textbook: average order value x purchase rate x expected lifespan (models.textbook.BasicCLV);
- BG/NBD + Gamma-Gamma and Pareto/NBD + Gamma-Gamma (models.btyd_clv.BTYDCLV), with each purchase
  model's P(no purchase in the window) for churn.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from clv.config import Settings
from features.contract import Shop
from features.engine import from_duckdb, to_pandas
from features.labels import attach_labels
from features.pipeline import build_features, compute_features
from features.snapshots import date_range, make_snapshots
from models import metrics
from models.btyd_clv import BTYDCLV
from models.predictor import CLVPredictor
from models.textbook import BasicCLV
from training.windows import WindowPlan, backtest_horizon, plan_windows

Progress = Callable[[str], None]
MODEL = "hybrid (BTYD+XGBoost)"
BTYD = "BG/NBD + GG"
PARETO = "Pareto/NBD + GG"
TEXTBOOK = "textbook"
# Short column headers for the backtest tables printed by `clv train` and benchmarks/backtest.py.
METRIC_LABELS = {
    "spearman": "Spearman",
    "normalized_gini": "Gini",
    "top_decile_capture": "top 10%",
    "decile_mape": "decile MAPE",
    "aggregate_error": "total err",
    "churn_auc": "churn AUC",
    "brier": "Brier",
    "interval_coverage": "coverage",
}


@dataclass(frozen=True)
class ShopData:
    """The shop's canonical tables as Ibis expressions, and the span of its transactions."""

    transactions: ir.Table
    events: ir.Table | None
    customers: ir.Table | None
    first_date: dt.date
    last_date: dt.date

    @classmethod
    def from_shop(cls, shop: Shop) -> ShopData:
        backend = from_duckdb(shop.con)
        transactions = backend.table("transactions")
        first, last = date_range(transactions)
        return cls(
            transactions,
            backend.table("events") if shop.has_events else None,
            backend.table("customers") if shop.has_customers else None,
            first,
            last,
        )

    def since(self, start: dt.date) -> ShopData:
        """The same shop with its history starting at `start` (for short-history experiments)."""
        begin = ibis.timestamp(dt.datetime.combine(start, dt.time()))
        events = None if self.events is None else self.events.filter(self.events.timestamp >= begin)
        return ShopData(
            self.transactions.filter(self.transactions.timestamp >= begin),
            events,
            self.customers,
            start,
            self.last_date,
        )

    def features(self, as_of: dt.date) -> pd.DataFrame:
        return compute_features(self.transactions, as_of, self.events, self.customers)

    def features_with_labels(self, as_of: dt.date, horizon_days: int) -> pd.DataFrame:
        table = build_features(self.transactions, as_of, self.events, self.customers)
        labelled = attach_labels(table, self.transactions, as_of, horizon_days)
        return to_pandas(labelled.order_by("customer_id"))

    def snapshots(self, plan: WindowPlan) -> pd.DataFrame:
        return to_pandas(
            make_snapshots(self.transactions, plan.cutoffs, plan.label_days, self.events, self.customers)
        )


@dataclass
class Fit:
    predictor: CLVPredictor
    plan: WindowPlan
    reference: pd.DataFrame


def fit_at(
    data: ShopData,
    cutoff: dt.date,
    horizon_days: int,
    settings: Settings,
    progress: Progress = lambda _: None,
    discount_rate: float = 0.0,
) -> Fit:
    """Fit the hybrid model to predict from `cutoff` over `horizon_days`, using only data up to `cutoff`.

    `discount_rate` stays 0 in backtests, where predictions are compared with undiscounted revenue.
    """
    train = settings.train
    plan = plan_windows(
        data.first_date,
        cutoff,
        horizon_days,
        train.snapshot_spacing_days,
        train.n_snapshots,
        train.min_history_days,
    )
    progress(f"snapshots: {plan.describe()}")
    snapshots = data.snapshots(plan)
    progress(f"features at {cutoff}")
    reference = data.features(cutoff)
    progress(f"fitting on {len(snapshots):,} snapshot rows")
    predictor = CLVPredictor(
        horizon_days=horizon_days,
        label_days=plan.label_days,
        value_objective=train.value_objective,
        coverage=train.interval_coverage,
        margin=train.margin,
        discount_rate=discount_rate,
        targeting=settings.targeting.model_dump(),
        seed=train.seed,
    ).fit(snapshots, reference)
    return Fit(predictor, plan, reference)


@dataclass
class Backtest:
    cutoff: dt.date
    horizon_days: int
    plan: WindowPlan
    metrics: pd.DataFrame  # one row per model, one column per metric
    frame: pd.DataFrame  # per customer: actuals and every model's predictions
    fit: Fit

    def model_metrics(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.metrics.loc[MODEL].items() if pd.notna(v)}


def backtest(
    data: ShopData,
    as_of: dt.date,
    horizon_days: int,
    settings: Settings,
    progress: Progress = lambda _: None,
    cutoff: dt.date | None = None,
) -> Backtest:
    """Train up to the backtest cut-off, predict the window after it, and score every model.

    By default the window is the last complete one before `as_of`; with a short history it is
    shorter than the horizon (`training.windows.backtest_horizon`).
    """
    if cutoff is None:
        horizon_days = backtest_horizon(data.first_date, as_of, horizon_days, settings.train.min_history_days)
        cutoff = as_of - dt.timedelta(days=horizon_days)
    fit = fit_at(data, cutoff, horizon_days, settings, progress)
    progress(f"scoring the window {cutoff} + {horizon_days} days")
    actual = data.features_with_labels(cutoff, horizon_days)
    reference = fit.reference
    if not actual["customer_id"].equals(reference["customer_id"]):
        actual = actual.set_index("customer_id").loc[reference["customer_id"]].reset_index()
    revenue = np.clip(actual["label_revenue"].to_numpy(float), 0, None)
    churned = actual["label_churned"].to_numpy(bool)

    predicted = fit.predictor.predict(reference)
    btyd = BTYDCLV().fit(reference)
    pareto = BTYDCLV(purchase_model="pareto_nbd").fit(reference)
    textbook = BasicCLV().fit(reference)
    bgnbd = btyd.purchases_
    frame = pd.DataFrame(
        {
            "customer_id": reference["customer_id"].to_numpy(),
            "actual_revenue": revenue,
            "actual_churned": churned,
            MODEL: predicted["predicted_clv"].to_numpy(),
            BTYD: np.asarray(btyd.predict_clv(reference, horizon_days), dtype=float),
            PARETO: np.asarray(pareto.predict_clv(reference, horizon_days), dtype=float),
            TEXTBOOK: np.asarray(textbook.predict_clv(reference, horizon_days), dtype=float),
            "low": predicted["predicted_clv_low"].to_numpy(),
            "high": predicted["predicted_clv_high"].to_numpy(),
            "churn_" + MODEL: predicted["churn_prob"].to_numpy(),
            "churn_" + BTYD: np.asarray(bgnbd.p_no_purchase(reference, horizon_days), dtype=float),
            "churn_" + PARETO: np.asarray(
                pareto.purchases_.p_no_purchase(reference, horizon_days), dtype=float
            ),
        }
    )
    rows = {}
    for name in (MODEL, BTYD, PARETO, TEXTBOOK):
        row = metrics.value_metrics(revenue, frame[name].to_numpy())
        if "churn_" + name in frame:
            row.update(metrics.churn_metrics(churned, frame["churn_" + name].to_numpy()))
        rows[name] = row
    rows[MODEL]["interval_coverage"] = metrics.interval_coverage(revenue, frame["low"], frame["high"])
    return Backtest(cutoff, horizon_days, fit.plan, pd.DataFrame(rows).T, frame, fit)
