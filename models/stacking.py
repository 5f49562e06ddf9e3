"""Stacking: small regressions over the buy-till-you-die base, the customer's own rate and rhythm, and
the boosted models, fitted on the latest complete window before the cut-off.

Why a stack: buy-till-you-die models shrink every customer's purchase rate hard towards the base's
average, and assume a memoryless rhythm; on real logs a customer's own run rate and the regularity
of her gaps carry information they throw away (on the online grocery log an equal-weight average of
the baselines' ranks already ranks better than each of them). Boosted trees could learn that, but
they must be validated on a window their training labels do not overlap (`training.windows`), and
on a cohort that means training far in the cohort's past. A regression with a handful of
coefficients can instead be fitted on the latest window itself, closest to the cut-off, and checked
by cross-validation there, with a bootstrap over the window's customers to tell a gain from noise.

Inputs for a window of w days (`stack_inputs`), per customer:
- `base`: log E[orders in w] of the base (`models.btyd_features`);
- `run_rate`: log of (orders so far / days since the first order x w), the naive run rate;
- `recency_share`: days since the last order / days since the first (0 = just bought, 1 = not since);
- `p_alive`: the base's P(alive);
- `irregularity`, `has_rhythm`: standard deviation / mean of the gaps between purchase days (the
  coefficient of variation; Platzer and Reutterer 2016 show regular buyers are better predicted),
  1 when undefined, and whether it is defined (three purchase days or more);
- `boosted`: log of the boosted count model's orders, when there is one.
The churn stack replaces `base` and `boosted` by the log-odds of their P(no purchase in w).

Orders: Poisson regression (log link); churn: logistic regression; both by maximum likelihood on
standardised inputs with a small L2 penalty (Hastie, Tibshirani and Friedman, "The Elements of
Statistical Learning", 2nd ed., sections 4.4 and 7.10 for the cross-validation), and with the sign
of each coefficient fixed where the direction is known (`SIGNS`: more orders expected by the base,
the boosted model or the customer's own rate, or a higher P(alive), never predict fewer orders or
more churn; a longer silence never predicts more orders). Without the signs, inputs that move
together (the base and the run rate of young customers) get large opposite coefficients that blow
up on the older customers of the scoring cut-off: 35 times the real total on the grocery log.
Inputs at scoring time are also kept within the range seen on the window, so nothing is
extrapolated. `StackedModel.fit` keeps the stack only when its out-of-fold predictions beat the
base's on the window beyond noise (ranking metrics for orders, ROC AUC for churn); otherwise `use_` is
False and the caller serves the base.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, logit
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.utils.validation import check_is_fitted

from models import metrics

FOLDS = 5
REPEATS = 3
# How far (in the window's standard deviations) the scored customers' mean of an input may lie from the
# validation window's before the stack is not trusted on them (`StackedModel.shift`, `models.predictor`).
MAX_SHIFT_SD = 2.0
BOOTSTRAP = 100
_EPS = 1e-3
# Known direction of each input's effect: +1 raises the outcome, -1 lowers it, 0 free.
SIGNS = {
    "orders": {"base": 1, "boosted": 1, "run_rate": 1, "p_alive": 1, "recency_share": -1},
    "churn": {"base": 1, "boosted": 1, "run_rate": -1, "p_alive": -1, "recency_share": 1},
}


def stack_inputs(
    features: pd.DataFrame,
    enriched: pd.DataFrame,
    window_days: int,
    boosted_orders: np.ndarray | None = None,
    boosted_churn: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(orders inputs, churn inputs) for the customers of `features` (see the module docstring).

    `enriched` is `features` with the BTYD columns for the same window (`BTYDFeatures.add`).
    """
    tenure = np.maximum(features["tenure_days"].to_numpy(float), 1.0)
    run_rate = features["n_orders"].to_numpy(float) / tenure * window_days
    cv = (features["gap_std_days"] / features["gap_mean_days"]).to_numpy(float)
    shared = {
        "run_rate": np.log(run_rate + _EPS),
        "recency_share": features["recency_days"].to_numpy(float) / tenure,
        "p_alive": enriched["base_p_alive"].to_numpy(float),
        "irregularity": np.nan_to_num(cv, nan=1.0, posinf=1.0),
        "has_rhythm": np.isfinite(cv).astype(float),
    }
    orders = {
        "base": np.log(np.clip(enriched["base_expected_orders"].to_numpy(float), 0, None) + _EPS),
        **shared,
    }
    churn = {"base": _logit(enriched["base_p_no_purchase"].to_numpy(float)), **shared}
    if boosted_orders is not None:
        orders["boosted"] = np.log(np.clip(boosted_orders, 0, None) + _EPS)
    if boosted_churn is not None:
        churn["boosted"] = _logit(boosted_churn)
    return pd.DataFrame(orders, index=features.index), pd.DataFrame(churn, index=features.index)


class StackedModel(BaseEstimator):
    """One stack: `kind` "orders" (Poisson, counts) or "churn" (logistic, 0/1), with L2 `alpha`."""

    FIT_ONLY = ("oof_",)  # out-of-fold predictions on the window: not saved with the model

    def __init__(self, kind: str = "orders", alpha: float = 1e-3, seed: int = 0):
        self.kind = kind
        self.alpha = alpha
        self.seed = seed

    def _estimator(self) -> SignedGLM:
        if self.kind not in SIGNS:
            raise ValueError(f"kind must be 'orders' or 'churn', not {self.kind!r}")
        return SignedGLM(self.kind, self.alpha)

    def fit(self, X: pd.DataFrame, y, base: np.ndarray, score) -> StackedModel:
        """Fit on the window's inputs `X` and outcomes `y`; keep it only if its out-of-fold predictions
        score better than `base` (the base's predictions for the same customers) beyond noise.

        `score(predicted, rows)` scores predictions for the customers at positions `rows` (higher is
        better). Kept (`use_`) when the out-of-fold score, averaged over `REPEATS` shuffles of the folds
        (one shuffle's verdict flips with the split on a few thousand customers), beats the base's, and
        the paired gain is above 0 in at least 95% of `BOOTSTRAP` resamples of the customers (a
        one-sided test; without it a stack that gained 0.01 on the 2,300 customers of the apparel log's
        validation window lost 0.03 Spearman the next year). Sets `use_`, `oof_` (out-of-fold
        predictions of the first shuffle), `oof_score_`, `base_score_` and `gain_low_` (the gain's 5%
        quantile).
        """
        y = np.asarray(y, dtype=float)
        everyone = np.arange(len(y))
        scores = []
        for repeat in range(REPEATS):
            folds = KFold(min(FOLDS, len(y)), shuffle=True, random_state=self.seed + repeat)
            oof = cross_val_predict(self._estimator(), X, y, cv=folds)
            if repeat == 0:
                self.oof_ = oof
            scores.append(float(score(oof, everyone)))
        # An undefined score (a constant prediction has no Spearman) counts as the worst.
        self.oof_score_ = float(np.nan_to_num(np.mean(scores), nan=-np.inf))
        self.base_score_ = float(np.nan_to_num(score(base, everyone), nan=-np.inf))
        gains = metrics.bootstrap_gains(
            lambda rows: score(self.oof_, rows) - score(base, rows), len(y), self.seed, BOOTSTRAP
        )
        self.gain_low_ = float(np.nan_to_num(np.quantile(gains, 0.05), nan=-np.inf))
        self.use_ = bool(self.oof_score_ > self.base_score_ and self.gain_low_ > 0)
        self.model_ = self._estimator().fit(X, y)
        self.inputs_ = list(X.columns)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected orders (kind "orders") or P(no purchase) (kind "churn") per row."""
        check_is_fitted(self, "model_")
        return self.model_.predict(X[self.inputs_])

    def shift(self, X: pd.DataFrame) -> dict[str, float]:
        """Per input the stack uses (non-zero coefficient): the mean over the rows of `X` of the input as the
        stack reads it (clipped to the window's range, standardised by the window's mean and standard
        deviation). Near 0 when the rows are like the validation window's customers; an input whose window
        held almost no spread (P(alive) of a base that found no drop-out there: standard deviation 0.0002)
        puts rows scored by a base that does find drop-out several deviations away, every one of them at
        the clip, and the stack's coefficient then moves all their predictions together (seen: expected
        orders cut 26-fold)."""
        check_is_fitted(self, "model_")
        m = self.model_
        z = (np.clip(np.asarray(X[self.inputs_], dtype=float), m.low_, m.high_) - m.mean_) / m.scale_
        return {name: float(z[:, i].mean()) for i, name in enumerate(self.inputs_) if m.coef_[i] != 0}

    def coefficients(self) -> dict[str, float]:
        """Coefficient per standardised input (for the run's record)."""
        check_is_fitted(self, "model_")
        return dict(zip(self.inputs_, self.model_.coef_.tolist(), strict=True))


class SignedGLM(BaseEstimator):
    """Poisson ("orders", log link) or logistic ("churn") regression with an L2 penalty `alpha` on the
    standardised inputs and the coefficient signs of `SIGNS` (maximum likelihood by L-BFGS-B)."""

    def __init__(self, kind: str = "orders", alpha: float = 1e-3):
        self.kind = kind
        self.alpha = alpha

    def fit(self, X: pd.DataFrame, y) -> SignedGLM:
        values = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        self.low_, self.high_ = np.quantile(values, 0.005, axis=0), np.quantile(values, 0.995, axis=0)
        self.mean_ = values.mean(axis=0)
        self.scale_ = np.where(values.std(axis=0) > 0, values.std(axis=0), 1.0)
        Z = (values - self.mean_) / self.scale_
        signs = [SIGNS[self.kind].get(name, 0) for name in X.columns]
        bounds = [(None, None)] + [
            (0, None) if s > 0 else (None, 0) if s < 0 else (None, None) for s in signs
        ]
        start = np.zeros(Z.shape[1] + 1)
        start[0] = (
            np.log(max(y.mean(), 1e-6)) if self.kind == "orders" else logit(np.clip(y.mean(), 1e-6, 1 - 1e-6))
        )

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            eta = theta[0] + Z @ theta[1:]
            if self.kind == "orders":
                mu = np.exp(np.clip(eta, -30, 30))
                value, residual = np.mean(mu - y * eta), mu - y
            else:
                value, residual = np.mean(np.logaddexp(0, eta) - y * eta), expit(eta) - y
            gradient = np.r_[residual.mean(), Z.T @ residual / len(y) + self.alpha * theta[1:]]
            return value + self.alpha / 2 * np.sum(theta[1:] ** 2), gradient

        theta = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds).x
        self.intercept_, self.coef_ = float(theta[0]), theta[1:]
        return self

    def _eta(self, X) -> np.ndarray:
        check_is_fitted(self, "coef_")
        values = np.clip(np.asarray(X, dtype=float), self.low_, self.high_)
        return self.intercept_ + (values - self.mean_) / self.scale_ @ self.coef_

    def predict(self, X) -> np.ndarray:
        """Expected count ("orders") or P(outcome = 1) ("churn")."""
        eta = self._eta(X)
        return np.exp(np.clip(eta, -30, 30)) if self.kind == "orders" else expit(eta)


def ranking_score(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean of the three ranking metrics the product is judged on (Spearman, normalized Gini, top decile)."""
    return float(
        np.mean(
            [
                metrics.spearman(actual, predicted),
                metrics.normalized_gini(actual, predicted),
                metrics.top_decile_capture(actual, predicted),
            ]
        )
    )


def _logit(p: np.ndarray) -> np.ndarray:
    return logit(np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6))
