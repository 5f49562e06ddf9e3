"""Fitting at a cut-off, and the backtest: the model against the baselines on a held-out window.

The backtest trains with data up to a cut-off t and compares predictions with what customers
actually did in (t, t + H]. Value metrics use net revenue in the window clipped at zero (a customer
cannot be worth less than nothing to a campaign); churn metrics use "no purchase in the window".
Rows (model ids, with display names in `Backtest.labels`), all fitted on the same data at the cut-off:
- `model`: the predictor as `clv train` fits it (`models.predictor`);
- `base`: its buy-till-you-die base alone (MBG/NBD and Pareto/NBD with Gamma-Gamma), which it serves
  when the boosted and stacked parts do not earn their place;
- `bgnbd_gg`, `pareto_gg`: BG/NBD and Pareto/NBD with Gamma-Gamma fitted on the customers who
  purchased, as the standard libraries fit them (models.btyd_clv.BTYDCLV), each purchase model's
  P(no purchase in the window) for churn. With too few repeat buyers for Gamma-Gamma they are not
  fitted: their rows stay empty and `Backtest.not_fitted` says why (the model's own order value
  falls back, `models.order_value`, so it still trains);
- `textbook`: average order value x purchase rate x expected lifespan (models.textbook.BasicCLV).
On the same window: the served model's next order dates against "last order + average gap"
(`training.next_order_backtest`) and the cross-sell suggestions against the most popular items
(`training.cross_sell`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from config import Settings
from models import metrics
from models.base_choice import choose_base
from models.btyd_clv import BTYDCLV
from models.btyd_features import describe_base
from models.gamma_gamma import TooFewRepeatBuyers
from models.predictor import CLVPredictor
from models.stacking import ranking_score
from models.textbook import BasicCLV
from training.cross_sell import CrossSellBacktest, backtest_cross_sell
from training.next_order_backtest import backtest_next_order
from training.shop_data import ShopData
from training.windows import WindowPlan, backtest_horizon, holdin_window, plan_windows

Progress = Callable[[str], None]
MODEL, BASE, BGNBD, PARETO, TEXTBOOK = "model", "base", "bgnbd_gg", "pareto_gg", "textbook"
# The standard baselines' purchase models; Backtest.labels adds what each fitted one valued orders with.
BASELINE_PURCHASES = {BGNBD: "BG/NBD", PARETO: "Pareto/NBD"}
MODEL_LABELS = {
    MODEL: "model (as served)",
    BASE: "BTYD base",  # Backtest.labels adds what it values orders with
    **{model: f"{name} + Gamma-Gamma" for model, name in BASELINE_PURCHASES.items()},
    TEXTBOOK: "textbook formula",
}
RANKING = ("spearman", "normalized_gini", "top_decile_capture")
# Short column headers for the backtest tables printed by `clv train`.
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
    discount: bool = False,
    base_only: bool = False,
) -> Fit:
    """Fit the model to predict from `cutoff` over `horizon_days`, using only data up to `cutoff`.

    `discount` applies `settings.train.discount_rate`; backtests leave it off, because their predictions
    are compared with undiscounted revenue. `base_only` fits the buy-till-you-die base alone (when a
    backtest found the hybrid worse).
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
    if base_only:
        plan = WindowPlan(None, 0, 0, [], "the backtest ranked the buy-till-you-die base better")
    progress(plan.describe())
    snapshots = data.snapshots(plan) if plan.cutoffs else None
    validation = (
        None if plan.btyd_only else data.features_with_labels(plan.validation_cutoff, plan.validation_days)
    )
    progress(f"features at {cutoff}")
    reference = data.features(cutoff)
    progress("choosing the buy-till-you-die base")
    holdin = holdin_window(data.first_date, cutoff, horizon_days)
    base = choose_base(
        reference,
        None if holdin is None else lambda: data.features_with_labels(*holdin),
        0 if holdin is None else holdin[1],
        train.seed,
    )
    progress("fitting")
    predictor = CLVPredictor(
        horizon_days=horizon_days,
        validation_days=plan.validation_days or None,
        label_days=plan.label_days or None,
        coverage=train.interval_coverage,
        margin=train.margin,
        discount_rate=train.discount_rate if discount else 0.0,
        targeting={**settings.targeting.model_dump(), "value_unit": data.value_unit},
        regularity_k=base.regularity_k,
        base_models=base.models,
        spend=base.spend,
        seed=train.seed,
    ).fit(snapshots, validation, reference, plan.why_base_only)
    if base_only:
        predictor.notes_ = []  # the caller says why (Backtest.base_wins_reason), not "history too short"
    if base.note:
        predictor.notes_.insert(0, base.note)
    return Fit(predictor, plan, reference)


@dataclass
class Backtest:
    cutoff: dt.date
    horizon_days: int
    plan: WindowPlan
    metrics: pd.DataFrame  # one row per model id, one column per metric
    frame: pd.DataFrame  # per customer: actuals and every model's predictions
    fit: Fit
    base: CLVPredictor  # the fitted predictor's base alone (the same object when it is one)
    next_order: pd.DataFrame | None = None  # training.next_order_backtest: model and naive rows
    cross_sell: CrossSellBacktest | None = None  # None when the log has no category or product column
    not_fitted: dict[str, str] = field(default_factory=dict)  # model id -> why it has no predictions
    # Fitted baseline id -> what it valued orders with (models.btyd_clv.BTYDCLV.describe_spend).
    baseline_spend: dict[str, str] = field(default_factory=dict)

    def labels(self) -> dict[str, str]:
        """Display names of the rows by id: `MODEL_LABELS`; the base's with its models; the base's and the
        fitted baselines' with what they valued orders with as fitted (`models.order_value.OrderValue.describe`:
        Gamma-Gamma, the shop's mean when `models.base_choice` chose it, each buyer's own mean with too few
        repeat buyers, a value of 1 per order without amounts; the same words as the predictor's note on the
        base it serves); and a baseline that could not be fitted marked so (`not_fitted` says why)."""
        btyd = self.base.btyd_
        labels = {
            **MODEL_LABELS,
            BASE: f"{MODEL_LABELS[BASE]} ({describe_base(btyd.base)}) + {btyd.spend.describe()}",
        }
        for model, spend in self.baseline_spend.items():
            labels[model] = f"{BASELINE_PURCHASES[model]} + {spend}"
        for model in self.not_fitted:
            labels[model] = f"{MODEL_LABELS[model]}: not fitted (see notes)"
        return labels

    @property
    def served_predictor(self) -> CLVPredictor:
        """The predictor of the row `clv train` serves (`served`), as fitted at the backtest cut-off."""
        return self.base if self.base_wins() else self.fit.predictor

    @property
    def served(self) -> str:
        """The row `clv train` serves: the base when it ranked better than the full model."""
        return BASE if self.base_wins() else MODEL

    def model_metrics(self) -> dict[str, float]:
        """The served model's metrics (what the registry gate compares and /model shows)."""
        return {k: float(v) for k, v in self.metrics.loc[self.served].items() if pd.notna(v)}

    def ranking(self, model: str) -> float:
        """Mean of the ranking metrics of one row (higher is better)."""
        return float(self.metrics.loc[model, list(RANKING)].mean())

    def base_wins(self) -> bool:
        """Whether `clv train` serves the base alone: the backtest fitted the full model at its cut-off
        and ranked the base better. When the backtest fell back to the base there (history too short
        for a validation window, or stacks that did not beat the base beyond noise), it measured nothing
        against the full model, and the final fit serves it only where its stacks beat the base beyond
        noise on its own validation window (`models.stacking`), which has at least a horizon of history
        before it (`training.windows`). Before that rule the base was served whenever the backtest could
        not check the full model; on the demo shop with two years of history that gave away 0.12 Spearman
        and 27 points of total error (benchmarks/accuracy.py)."""
        return self.checked() and self.ranking(BASE) > self.ranking(MODEL)

    def checked(self) -> bool:
        """Whether the backtest fitted (and so measured) the full model, not only the base."""
        return self.fit.predictor.kind_ == "hybrid"

    def base_wins_reason(self) -> str:
        return (
            f"on the backtest the buy-till-you-die base ranked better than the full model (mean of Spearman, "
            f"Gini and top-decile capture {self.ranking(BASE):.3f} vs {self.ranking(MODEL):.3f}), so the base "
            "is served"
        )

    def base_change_note(self, served: CLVPredictor) -> str | None:
        """What to tell when the base served alone (`served`, the final fit) is not the base the backtest
        measured: with the history up to its own cut-off the same rules (`models.base_choice`) chose other
        models or another order value. None when they are the same, or when the full model is served."""
        measured, now = self.base.btyd_.describe(), served.btyd_.describe()
        if served.kind_ != "base" or measured == now:
            return None
        return (
            f"the backtest's base row ({measured}, chosen by the base's rules at its cut-off {self.cutoff}) is not "
            f"the base served ({now}, chosen by the same rules with the whole history): the row measures the "
            "rules, not the served base itself"
        )

    def outlier_note(self) -> str | None:
        """What to tell when a customer bought an order above the spend model's outlier fence before the
        backtest's cut-off (`models.order_value`, `models.outliers.upper_fence`): the served model counts it at
        the fence, the standard baselines in full, as their libraries do (seen: one order of 2.5e9 among orders
        of about 60 gave them a decile MAPE of 132,748 with no word why). None when no order is above it."""
        fence = self.base.btyd_.spend.fence_
        largest = self.fit.reference["largest_order_value"].to_numpy(float)
        above = int((largest > fence).sum())
        if not above:
            return None
        who = "1 customer" if above == 1 else f"{above:,} customers"
        return (
            f"{who} bought an order above the outlier fence of {fence:,.2f} before the backtest's cut-off (the "
            f"largest {np.nanmax(largest):,.2f}): the base counts such an order at the fence, while the standard "
            "baselines (BG/NBD + Gamma-Gamma, Pareto/NBD + Gamma-Gamma, the textbook formula) count it in full, "
            "as their libraries do, which inflates their values and errors"
        )

    def no_dropout_note(self) -> str | None:
        """What to tell when the base's and the fitted BTYD baselines' rows are one: the base found no drop-out
        (`CLVPredictor.dropout_found`) and their values and churn probabilities are within 0.1% of each other. Without
        drop-out BG/NBD, MBG/NBD and Pareto/NBD all reduce to the NBD model of purchase rates (Ehrenberg 1959),
        so the backtest cannot tell them apart (seen: the young apparel shop, 45 days of history before the
        backtest's cut-off, three identical rows with no word why). None otherwise."""
        rows = [BASE, *(model for model in BASELINE_PURCHASES if model not in self.not_fitted)]
        if len(rows) < 2 or self.base.dropout_found():
            return None
        if not all(
            np.allclose(self.frame[prefix + model], self.frame[prefix + BASE], rtol=1e-3, atol=1e-9)
            for model in rows[1:]
            for prefix in ("", "churn_")
        ):
            return None
        names = [BASELINE_PURCHASES[model] for model in rows[1:]]
        models = f"{', '.join(names)} and the base"
        # The fit's own P(alive): without drop-out the p_alive column is left empty.
        low, high = self.base.p_alive_range_
        return (
            f"the fit at the backtest's cut-off {self.cutoff} found no drop-out (its P(alive) spans only {low:.3%} "
            f"to {high:.3%} over the buyers), and without drop-out {models} are the same NBD model, so their rows "
            "read alike"
        )

    def short_window_note(self, horizon_days: int, first_date: dt.date) -> str | None:
        """What to tell when the backtest window is shorter than the horizon the model predicts (a history
        shorter than two horizons: `training.windows.backtest_horizon` keeps as much history before the
        window as the window is long). None when the window is the whole horizon."""
        if self.horizon_days >= horizon_days:
            return None
        as_of = self.cutoff + dt.timedelta(days=self.horizon_days)
        return (
            f"the backtest window is {self.horizon_days} days, shorter than the {horizon_days}-day horizon: of the "
            f"{(as_of - first_date).days} days of history up to {as_of}, half is kept to fit on, so the backtest "
            f"checks a {self.horizon_days}-day forecast, not the {horizon_days}-day one served; a backtest of the "
            f"whole horizon needs {2 * horizon_days} days of history"
        )

    def baseline_notes(self, seed: int) -> list[str]:
        """One note per standard baseline (BG/NBD and Pareto/NBD with Gamma-Gamma, the textbook formula)
        that ranked the backtest's customers better than the served row beyond noise, by the rule that
        chooses between the full model and the base (mean of Spearman, Gini and top-decile capture): ahead
        in at least 95% of 100 paired bootstrap resamples of the customers (`models.metrics.bootstrap_gains`),
        the test every choice of the product passes. `clv train` serves only its full model or its base, so
        when a standard model beat it, the run says so rather than serve the lesser one silently."""
        actual = self.frame["actual_revenue"].to_numpy(float)
        served = self.frame[self.served].to_numpy(float)
        labels = self.labels()
        notes = []
        for model in (BGNBD, PARETO, TEXTBOOK):
            if model in self.not_fitted or not self.ranking(model) > self.ranking(self.served):
                continue
            other = self.frame[model].to_numpy(float)
            ahead = metrics.bootstrap_gains(
                lambda rows, other=other: (
                    ranking_score(actual[rows], other[rows]) - ranking_score(actual[rows], served[rows])
                ),
                len(actual),
                seed,
            )
            defined = ahead[~np.isnan(ahead)]  # a resample that leaves a metric undefined says nothing
            share = float(np.mean(defined > 0)) if defined.size else 0.0
            if share < 0.95:
                continue
            name = f"the {labels[model]}" if model == TEXTBOOK else labels[model]
            served_name = "base" if self.served_predictor.kind_ == "base" else "full model"
            notes.append(
                f"on the backtest {name} ranked customers better than the {served_name}, as fitted at the "
                f"backtest's cut-off, beyond noise (mean of Spearman, Gini and top-decile capture "
                f"{self.ranking(model):.4f} vs {self.ranking(self.served):.4f}, ahead in {share:.0%} of bootstrap "
                f"resamples); clv train serves only its own full model or its base, never {name}, so treat this "
                "run's ranking as rough and retrain when the shop has more history"
            )
        return notes

    def not_fitted_notes(self) -> list[str]:
        """One note per reason that left baselines without predictions (their rows are empty)."""
        by_reason: dict[str, list[str]] = {}
        for model, reason in self.not_fitted.items():
            by_reason.setdefault(reason, []).append(MODEL_LABELS[model])
        return [
            f"{' and '.join(labels)}: not fitted at the backtest cut-off {self.cutoff} ({reason}); the "
            "backtest compares the other rows without " + ("them" if len(labels) > 1 else "it")
            for reason, labels in by_reason.items()
        ]

    def unranked_note(self, metric: str) -> str | None:
        """Why the served row has no `metric` (a ranking metric), None when it has one. The metric is named as
        in the backtest table's header (`METRIC_LABELS`: "Spearman", not "spearman")."""
        if pd.notna(self.metrics.loc[self.served, metric]):
            return None
        if not self.frame["actual_revenue"].any():
            why = (
                f"none of its {len(self.frame):,} customers bought in the {self.horizon_days} days after "
                f"{self.cutoff}"
            )
        else:
            why = "the served model predicted the same value for every customer"
        return (
            f"the backtest could not measure {METRIC_LABELS[metric]} ({why}), so how well the model ranks is "
            "unchecked"
        )

    def chance_note(self) -> str | None:
        """A warning when the served row ranked the backtest's customers, or told who would place no order, no
        better than chance could: its Spearman below 1.645 / sqrt(n - 1), the one-sided 95% line of Spearman's
        correlation between unrelated rankings of n customers (its normal approximation); its churn ROC AUC
        below 0.5 + 1.645 sqrt((n + 1) / (12 n0 n1)), the same line for the AUC of a score unrelated to the
        labels, with n1 customers who placed no order and n0 who did (the Mann-Whitney U statistic's null
        variance, Mann and Whitney 1947). None otherwise."""
        n = len(self.frame)
        found = []
        spearman = self.metrics.loc[self.served, "spearman"]
        line = 1.645 / np.sqrt(max(n - 1, 1))
        if pd.notna(spearman) and spearman < line:
            found.append(
                f"ranked {n:,} customers no better than chance could (Spearman {_distinct(spearman, line)})"
            )
        auc = self.metrics.loc[self.served].get("churn_auc", np.nan)
        churned = int(self.frame["actual_churned"].sum()) if "actual_churned" in self.frame else 0
        if pd.notna(auc) and 0 < churned < n:
            line = 0.5 + 1.645 * np.sqrt((n + 1) / (12 * churned * (n - churned)))
            if auc < line:
                found.append(
                    f"told who would place no order no better than chance could (churn AUC {_distinct(auc, line)})"
                )
        if not found:
            return None
        return (
            f"on the backtest the served model {' and '.join(found)}: its values, churn probabilities, deciles "
            "and segments are rough; retrain when the shop has more history"
        )

    def unchecked_note(self) -> str:
        """What to tell when the full model is served without a backtest of it."""
        return (
            "the backtest could not check the full model (at its cut-off it fell back to the base, see the "
            "backtest's notes), so its table shows the base; the full model is served because at the cut-off its "
            "stacks beat the base beyond noise by cross-validation on the validation window before it"
        )


def backtest(
    data: ShopData,
    as_of: dt.date,
    settings: Settings,
    progress: Progress = lambda _: None,
    cutoff: dt.date | None = None,
) -> Backtest:
    """Train up to the backtest cut-off, predict the window after it, and score every model.

    By default the window is the last complete one before `as_of`; with a short history it is
    shorter than `settings.train.horizon_days` (`training.windows.backtest_horizon`). A given `cutoff`
    gets a window of the whole horizon.
    """
    horizon_days = settings.train.horizon_days
    if cutoff is None:
        horizon_days = backtest_horizon(data.first_date, as_of, horizon_days)
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
    base_predictor = _base(fit, horizon_days, settings)
    base = base_predictor.predict(reference)
    buyers = reference[reference["n_orders"] > 0]
    frame = pd.DataFrame(
        {
            "customer_id": reference["customer_id"].to_numpy(),
            "actual_revenue": revenue,
            "actual_churned": churned,
            "low": predicted["predicted_clv_low"].to_numpy(),
            "high": predicted["predicted_clv_high"].to_numpy(),
            MODEL: predicted["predicted_clv"].to_numpy(),
            "churn_" + MODEL: predicted["churn_prob"].to_numpy(),
            BASE: base["predicted_clv"].to_numpy(),
            "churn_" + BASE: base["churn_prob"].to_numpy(),
            TEXTBOOK: np.asarray(BasicCLV().fit(buyers).predict_clv(reference, horizon_days), dtype=float),
        }
    )
    not_fitted, baseline_spend = {}, {}
    for name, purchase_model in ((BGNBD, "bgnbd"), (PARETO, "pareto_nbd")):
        try:
            baseline = BTYDCLV(purchase_model=purchase_model).fit(buyers)
        except TooFewRepeatBuyers as exc:
            not_fitted[name] = str(exc)
            continue
        baseline_spend[name] = baseline.describe_spend()
        frame[name] = np.asarray(baseline.predict_clv(reference, horizon_days), dtype=float)
        frame["churn_" + name] = np.asarray(
            baseline.purchases_.p_no_purchase(reference, horizon_days), dtype=float
        )
    rows = {}
    for name in MODEL_LABELS:
        if name in not_fitted:
            rows[name] = {}
            continue
        row = metrics.value_metrics(revenue, frame[name].to_numpy())
        if "churn_" + name in frame:
            row.update(metrics.churn_metrics(churned, frame["churn_" + name].to_numpy()))
        rows[name] = row
    rows[MODEL]["interval_coverage"] = metrics.interval_coverage(revenue, frame["low"], frame["high"])
    rows[BASE]["interval_coverage"] = metrics.interval_coverage(
        revenue, base["predicted_clv_low"].to_numpy(), base["predicted_clv_high"].to_numpy()
    )
    result = Backtest(
        cutoff,
        horizon_days,
        fit.plan,
        pd.DataFrame(rows).T,
        frame,
        fit,
        base_predictor,
        not_fitted=not_fitted,
        baseline_spend=baseline_spend,
    )
    progress("backtesting next order dates and cross-sell suggestions")
    served, served_by = (base, base_predictor) if result.base_wins() else (predicted, fit.predictor)
    result.next_order = backtest_next_order(
        data, cutoff, horizon_days, reference, served, alive_known=served_by.dropout_found()
    )
    result.cross_sell = backtest_cross_sell(data, cutoff, horizon_days, settings)
    return result


def _base(fit: Fit, horizon_days: int, settings: Settings) -> CLVPredictor:
    """The fitted predictor's base alone, at the same cut-off (the same predictor when it is one)."""
    if fit.predictor.kind_ == "base":
        return fit.predictor
    return CLVPredictor(
        horizon_days=horizon_days,
        coverage=settings.train.interval_coverage,
        targeting=fit.predictor.targeting,
        regularity_k=fit.predictor.regularity_k,
        base_models=fit.predictor.base_models,
        spend=fit.predictor.spend,
        seed=settings.train.seed,
    ).fit(None, None, fit.reference)


def _distinct(value: float, line: float) -> str:
    """ "VALUE, below LINE" with the fewest decimals (4 or more) that tell the two apart on screen."""
    for places in range(4, 9):
        if f"{value:.{places}f}" != f"{line:.{places}f}":
            break
    return f"{value:.{places}f}, below {line:.{places}f}"
