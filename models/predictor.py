"""The composite CLV predictor: features in, the score columns of DESIGN.md out.

How it predicts over the horizon H:
1. Buy-till-you-die models (BG/NBD + Gamma-Gamma) fitted on each training cut-off give smooth
   per-customer summaries (P(alive), expected purchases, expected order value), which become
   features for the gradient-boosted models.
2. XGBoost models learn purchase count and churn (and, if chosen, revenue directly) over the label
   window L of the training snapshots (L = H when the history allows, shorter for short histories).
   Value = boosted expected purchases x Gamma-Gamma expected order value by default: on the demo
   backtests it ranked best and kept the total closest (benchmarks/backtest.py compares it with a
   Tweedie and a hurdle revenue model); purchase counts are far less noisy to learn than revenue.
3. When L < H, each customer's window-L predictions are stretched to H with that customer's own
   BG/NBD time profile: E[purchases in H] / E[purchases in L] for revenue and orders, and
   P(no purchase in H) / P(no purchase in L) for churn. One-order customers get real predictions.
4. The churn classifier is calibrated, and the value interval conformalised, on the latest
   training window with models fitted on the earlier windows only; the final models are then refitted
   on every window and keep those calibrations.
5. Targeting rules (fitted on the base being scored) add segment, action, value decile and reason.

`fit` takes the stacked training snapshots (features + labels per cut-off, see features.snapshots)
and the features at the scoring cut-off (`reference`), on which the buy-till-you-die models used at
prediction time are fitted and the targeting thresholds are learned.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from features.schema import SCORE_COLUMNS, SCORER_COLUMNS
from models import metrics
from models.bgnbd import BetaGeoModel
from models.calibration import MonotoneCalibrator
from models.gamma_gamma import GammaGammaModel
from models.gbm import ChurnClassifier, CountRegressor, FeatureMatrix, ValueRegressor, select_features
from models.intervals import ConformalInterval
from models.targeting import TargetingRules

# The score columns (DESIGN.md) minus the bookkeeping the scorer adds, plus a readable reason.
OUTPUT_COLUMNS = (*(c for c in SCORE_COLUMNS if c not in SCORER_COLUMNS), "reason")
BTYD_FEATURES = (
    "btyd_p_alive",
    "btyd_expected_orders",
    "btyd_p_no_purchase",
    "btyd_order_value",
    "btyd_value",
)
_EPS = 1e-6


class BTYDFeatures:
    """BG/NBD + Gamma-Gamma fitted on one cut-off's customers; adds their outputs as feature columns."""

    def __init__(self, features: pd.DataFrame):
        self.purchases = BetaGeoModel().fit(features)
        repeaters = features[features["btyd_frequency"] > 0]
        self.spend = GammaGammaModel().fit(repeaters) if len(repeaters) >= 20 else None

    def order_value(self, features: pd.DataFrame) -> np.ndarray:
        if self.spend is None:
            return features["monetary_mean"].to_numpy(float)
        return np.asarray(self.spend.expected_order_value(features), dtype=float)

    def add(self, features: pd.DataFrame, window_days: int) -> pd.DataFrame:
        orders = np.asarray(self.purchases.expected_purchases(features, window_days), dtype=float)
        value = self.order_value(features)
        return features.assign(
            btyd_p_alive=np.asarray(self.purchases.p_alive(features), dtype=float),
            btyd_expected_orders=orders,
            btyd_p_no_purchase=np.asarray(self.purchases.p_no_purchase(features, window_days), dtype=float),
            btyd_order_value=value,
            btyd_value=orders * value,
        )

    def stretch(
        self, features: pd.DataFrame, label_days: int, horizon_days: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-customer factors taking window-L predictions to horizon H: (orders/value, no-purchase)."""
        if horizon_days == label_days:
            ones = np.ones(len(features))
            return ones, ones
        orders_l = np.asarray(self.purchases.expected_purchases(features, label_days), dtype=float)
        orders_h = np.asarray(self.purchases.expected_purchases(features, horizon_days), dtype=float)
        none_l = np.asarray(self.purchases.p_no_purchase(features, label_days), dtype=float)
        none_h = np.asarray(self.purchases.p_no_purchase(features, horizon_days), dtype=float)
        return (orders_h + _EPS) / (orders_l + _EPS), np.clip((none_h + _EPS) / (none_l + _EPS), 0, 1)


class CLVPredictor(BaseEstimator):
    """Hybrid BTYD + XGBoost CLV and churn model.

    Parameters: `horizon_days` H of the predictions; `label_days` L of the training labels
    (defaults to H); `value_objective` "orders" (boosted Poisson purchases x Gamma-Gamma order value),
    "tweedie" or "hurdle" (boosted revenue models); `coverage` of the CLV interval;
    `margin` (fraction, adds `predicted_profit`); `discount_rate` (yearly; future value is discounted
    to the middle of the horizon); `targeting` parameters of `TargetingRules`.
    """

    def __init__(
        self,
        horizon_days: int = 365,
        label_days: int | None = None,
        value_objective: str = "orders",
        coverage: float = 0.8,
        margin: float | None = None,
        discount_rate: float = 0.0,
        targeting: dict | None = None,
        n_estimators: int = 300,
        seed: int = 0,
    ):
        self.horizon_days = horizon_days
        self.label_days = label_days
        self.value_objective = value_objective
        self.coverage = coverage
        self.margin = margin
        self.discount_rate = discount_rate
        self.targeting = targeting
        self.n_estimators = n_estimators
        self.seed = seed

    @property
    def window_days_(self) -> int:
        return int(self.label_days or self.horizon_days)

    def fit(self, snapshots: pd.DataFrame, reference: pd.DataFrame | None = None) -> CLVPredictor:
        _require(
            snapshots, ("as_of", "customer_id", "label_revenue", "label_orders", "label_churned"), "snapshots"
        )
        if self.window_days_ > self.horizon_days:
            raise ValueError("label_days cannot exceed horizon_days")
        cutoffs = sorted(snapshots["as_of"].unique())
        enriched = pd.concat(
            [BTYDFeatures(group).add(group, self.window_days_) for _, group in snapshots.groupby("as_of")],
            ignore_index=True,
        )
        if len(cutoffs) >= 2:
            # Calibrate on the latest window: the boosted models never saw it, as in production.
            is_calibration = (enriched["as_of"] == cutoffs[-1]).to_numpy()
        else:
            rng = np.random.default_rng(self.seed)
            is_calibration = rng.random(len(enriched)) < 0.25
        train, calibration = enriched[~is_calibration], enriched[is_calibration]

        self.matrix_ = FeatureMatrix(select_features(enriched), enriched)
        self.feature_names_in_ = self.matrix_.names
        # Calibrate on a window the models have not seen, then refit them on every window: the latest
        # window is the one most like the base being scored, so the final models must learn from it.
        X_cal = self.matrix_.transform(calibration)
        trees = self._fit_boosted(train, calibration, X_cal)
        # On the calibration window: how much to trust the boosted models against the buy-till-you-die
        # ones (on thin data, for example a shop without events, BG/NBD can rank as well), then
        # monotone maps from the blended scores to what customers really did.
        actual_cal = np.clip(calibration["label_revenue"].to_numpy(float), 0, None)
        churned_cal = calibration["label_churned"].to_numpy(float)
        boosted_value, boosted_churn = (
            self._window_value(X_cal, calibration),
            self.churn_model_.predict_proba_churn(X_cal),
        )
        self.value_weight_ = _best_weight(
            lambda w: _blend_value(boosted_value, calibration, w), lambda s: metrics.spearman(actual_cal, s)
        )
        self.churn_weight_ = _best_weight(
            lambda w: _blend_churn(boosted_churn, calibration, w), lambda s: metrics.churn_auc(churned_cal, s)
        )
        value_cal = _blend_value(boosted_value, calibration, self.value_weight_)
        self.value_calibrator_ = MonotoneCalibrator().fit(value_cal, actual_cal)
        self.churn_calibrator_ = MonotoneCalibrator().fit(
            _blend_churn(boosted_churn, calibration, self.churn_weight_), churned_cal
        )
        self.interval_ = ConformalInterval(coverage=self.coverage).fit(
            self._calibrated(value_cal), actual_cal
        )
        self._fit_boosted(enriched, trees=trees)

        latest = snapshots[snapshots["as_of"] == cutoffs[-1]] if reference is None else reference
        self.btyd_ = BTYDFeatures(latest)
        # The calibration fixes the shape across deciles; the level (the total) stays the final models'.
        enriched_latest = self.btyd_.add(latest, self.window_days_)
        raw_latest = _blend_value(
            self._window_value(self.matrix_.transform(enriched_latest), enriched_latest),
            enriched_latest,
            self.value_weight_,
        )
        self.value_level_ = float(raw_latest.sum() / max(self._calibrated(raw_latest).sum(), _EPS))
        self.targeting_ = TargetingRules(**(self.targeting or {})).fit(self._predict_values(latest))
        self.n_training_rows_ = len(train)
        self.n_calibration_rows_ = len(calibration)
        return self

    def _fit_boosted(
        self,
        frame: pd.DataFrame,
        calibration: pd.DataFrame | None = None,
        X_cal: pd.DataFrame | None = None,
        trees: dict[str, int] | None = None,
    ) -> dict[str, int]:
        """Fit the boosted models on `frame`. With a calibration window, stop each model when it stops
        improving there (small shops need far fewer trees than large ones) and return the tree counts;
        with `trees`, use those counts (the refit on every window)."""
        X = self.matrix_.transform(frame)
        trees = trees or {}

        def params(name: str) -> dict:
            return {"n_estimators": trees.get(name, self.n_estimators), "seed": self.seed}

        def held_out(label: str):
            return None if calibration is None else (X_cal, calibration[label])

        self.count_model_ = CountRegressor(**params("count")).fit(
            X, frame["label_orders"], held_out("label_orders")
        )
        self.churn_model_ = ChurnClassifier(**params("churn")).fit(
            X, frame["label_churned"], held_out("label_churned")
        )
        if self.value_objective == "orders":
            self.value_model_ = None
        else:
            self.value_model_ = ValueRegressor(objective=self.value_objective, **params("value")).fit(
                X, frame["label_revenue"]
            )
        return {
            name: model.best_n_estimators_
            for name, model in (("count", self.count_model_), ("churn", self.churn_model_))
            if hasattr(model, "best_n_estimators_")
        }

    def _window_value(self, X: pd.DataFrame, enriched: pd.DataFrame) -> np.ndarray:
        """Predicted revenue in the label window."""
        if self.value_model_ is None:
            return self.count_model_.predict(X) * enriched["btyd_order_value"].to_numpy(float)
        return self.value_model_.predict(X)

    def _calibrated(self, raw: np.ndarray) -> np.ndarray:
        return self.value_calibrator_.predict(raw)

    def _predict_values(self, features: pd.DataFrame) -> pd.DataFrame:
        enriched = self.btyd_.add(features, self.window_days_)
        X = self.matrix_.transform(enriched)
        value_l = self._calibrated(
            _blend_value(self._window_value(X, enriched), enriched, self.value_weight_)
        )
        churn_l = np.clip(
            self.churn_calibrator_.predict(
                _blend_churn(self.churn_model_.predict_proba_churn(X), enriched, self.churn_weight_)
            ),
            0,
            1,
        )
        low_l, high_l = self.interval_.predict(value_l)
        value_l, low_l, high_l = (v * self.value_level_ for v in (value_l, low_l, high_l))
        stretch, stretch_churn = self.btyd_.stretch(features, self.window_days_, self.horizon_days)
        discount = (1 + self.discount_rate) ** (-(self.horizon_days / 365) / 2)
        out = pd.DataFrame(
            {
                "customer_id": features["customer_id"].to_numpy(),
                "predicted_clv": value_l * stretch * discount,
                "predicted_clv_low": low_l * stretch * discount,
                "predicted_clv_high": high_l * stretch * discount,
                "churn_prob": churn_l * stretch_churn,
                "p_alive": enriched["btyd_p_alive"].to_numpy(float),
                "expected_orders": self.count_model_.predict(X) * stretch,
                "expected_aov": enriched["btyd_order_value"].to_numpy(float),
                "tenure_days": features["tenure_days"].to_numpy(float),
                "monetary_total": features["monetary_total"].to_numpy(float),
            },
            index=features.index,
        )
        return enforce_invariants(out)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """One row per customer with OUTPUT_COLUMNS (plus `predicted_profit` when a margin is set)."""
        check_is_fitted(self, "targeting_")
        if features.empty:
            raise ValueError("no customers to score")
        values = self._predict_values(features)
        out = pd.concat([values, self.targeting_.apply(values)], axis=1)[list(OUTPUT_COLUMNS)]
        if self.margin is not None:
            out["predicted_profit"] = out["predicted_clv"] * self.margin
        return out.reset_index(drop=True)

    def feature_importance(self) -> pd.Series:
        check_is_fitted(self, "count_model_")
        return (self.value_model_ or self.count_model_).feature_importance()


BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _best_weight(blend, score) -> float:
    """The weight of the boosted model (0-1) whose blend scores best; ties go to the boosted model."""
    scored = [(score(blend(w)), w) for w in BLEND_WEIGHTS]
    return max(scored)[1]


def _blend_value(boosted: np.ndarray, enriched: pd.DataFrame, weight: float) -> np.ndarray:
    """Geometric blend of the boosted and the BG/NBD x Gamma-Gamma window value."""
    if weight >= 1:
        return boosted
    btyd = np.clip(enriched["btyd_value"].to_numpy(float), 0, None)
    return np.exp(weight * np.log(boosted + 1e-3) + (1 - weight) * np.log(btyd + 1e-3)) - 1e-3


def _blend_churn(boosted: np.ndarray, enriched: pd.DataFrame, weight: float) -> np.ndarray:
    """Blend in log-odds of the boosted churn probability and BG/NBD's P(no purchase in the window)."""
    if weight >= 1:
        return boosted
    btyd = enriched["btyd_p_no_purchase"].to_numpy(float)
    z = weight * _logit(boosted) + (1 - weight) * _logit(btyd)
    return 1 / (1 + np.exp(-z))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def enforce_invariants(out: pd.DataFrame) -> pd.DataFrame:
    """Non-negative values, low <= point <= high, probabilities in [0, 1]."""
    for column in (
        "predicted_clv",
        "predicted_clv_low",
        "predicted_clv_high",
        "expected_orders",
        "expected_aov",
    ):
        out[column] = np.clip(np.nan_to_num(out[column].to_numpy(float)), 0, None)
    out["predicted_clv_low"] = np.minimum(out["predicted_clv_low"], out["predicted_clv"])
    out["predicted_clv_high"] = np.maximum(out["predicted_clv_high"], out["predicted_clv"])
    for column in ("churn_prob", "p_alive"):
        out[column] = np.clip(np.nan_to_num(out[column].to_numpy(float), nan=0.5), 0, 1)
    return out


def _require(frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack columns: {', '.join(missing)}")
