"""Gradient-boosted (XGBoost) models for purchase counts and churn in a label window.

Both learn from the feature table plus the buy-till-you-die outputs and predict over the label
window they were trained on; `models.predictor` gives each a per-row offset (XGBoost's `base_margin`,
on the link scale) so the trees learn a correction of the buy-till-you-die base, and stretches the
window to the horizon.

- `CountRegressor`: purchases in the window (Poisson loss, log link).
- `ChurnClassifier`: P(no purchase in the window) (logistic loss); `models.predictor` calibrates it
  on a later window than the one it was fitted on, so its probabilities are honest on unseen data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from features.pipeline import CATEGORICAL_COLUMNS

EARLY_STOPPING_ROUNDS = 40
_EXCLUDE = {"customer_id", "as_of"}


def select_features(frame: pd.DataFrame) -> list[str]:
    """Model inputs: numeric and boolean columns plus the known categoricals, never ids or labels."""
    names = []
    for name in frame.columns:
        if name in _EXCLUDE or name.startswith("label_"):
            continue
        if (
            name in CATEGORICAL_COLUMNS
            or pd.api.types.is_numeric_dtype(frame[name])
            or pd.api.types.is_bool_dtype(frame[name])
        ):
            names.append(name)
    return names


class FeatureMatrix:
    """Turns feature tables into XGBoost inputs with the categories seen at fit time."""

    def __init__(self, names: list[str], frame: pd.DataFrame):
        categories = {
            c: sorted(frame[c].dropna().astype(str).unique().tolist())
            for c in names
            if c in CATEGORICAL_COLUMNS
        }
        # A categorical with no values at all (a shop without a customers table) carries no information.
        self.categories = {c: values for c, values in categories.items() if values}
        self.names = [n for n in names if n not in categories or n in self.categories]

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model inputs as a frame: numbers as float32, the categoricals as pandas categories
        with the fit-time categories (what the boosters are fitted on)."""
        numeric = self._numeric(frame)
        out = pd.DataFrame(numeric, columns=self._numeric_names, index=frame.index)
        for name, categories in self.categories.items():
            # Unseen categories become missing rather than failing: a new country is not an error.
            out[name] = pd.Categorical(frame[name].astype("string"), categories=categories)
        return out[self.names]

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """`transform` as one float32 matrix in `names` order, each category as its code in the
        fit-time list (unseen or missing: NaN): what the boosters predict from. XGBoost reads the
        same trees and codes from it as from the frame, ten times faster on the rows of a request."""
        out = np.empty((len(frame), len(self.names)), dtype=np.float32)
        out[:, self.positions(self._numeric_names)] = self._numeric(frame)
        for name, categories in self.categories.items():
            # What pd.Categorical(column.astype("string"), categories).codes gives, by a dict lookup:
            # building a Categorical costs more than the boosters' prediction on a request's rows.
            code = {category: float(i) for i, category in enumerate(categories)}
            out[:, self.positions([name])[0]] = [
                np.nan if pd.isna(value) else code.get(str(value), np.nan)
                for value in frame[name].to_numpy(dtype=object)
            ]
        return out

    def positions(self, names: list[str]) -> list[int]:
        """The columns of `codes` that hold `names`."""
        index = {name: i for i, name in enumerate(self.names)}
        return [index[name] for name in names]

    @property
    def _numeric_names(self) -> list[str]:
        return [n for n in self.names if n not in self.categories]

    def _numeric(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise ValueError(f"feature table lacks columns the model was trained on: {', '.join(missing)}")
        numeric = self._numeric_names
        # One conversion for all numeric columns: per-column work dominates for the few rows of a request.
        block = frame[numeric]
        if any(pd.api.types.is_object_dtype(dtype) for dtype in block.dtypes):
            block = block.apply(_as_number)
        return block.to_numpy(dtype="float32", na_value=np.nan)


def _as_number(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column, errors="coerce") if column.dtype == object else column


def _booster_params(seed: int, n_estimators: int, learning_rate: float, max_depth: int) -> dict:
    return {
        "n_estimators": n_estimators,
        "learning_rate": learning_rate,
        "max_depth": max_depth,
        "min_child_weight": 5,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "tree_method": "hist",
        "enable_categorical": True,
        "max_cat_to_onehot": 8,
        "random_state": seed,
        "n_jobs": 2,
    }


class _Boosted(BaseEstimator):
    def __init__(
        self, n_estimators: int = 300, learning_rate: float = 0.05, max_depth: int = 5, seed: int = 0
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.seed = seed

    def _params(self) -> dict:
        return _booster_params(self.seed, self.n_estimators, self.learning_rate, self.max_depth)

    def _fit_booster(self, model_class, objective: str, X, y, eval_set, margin=None):
        """Fit one booster; with `eval_set` (a later window) stop when it stops improving there and
        record the number of trees in `best_n_estimators_`, so a refit on all data can use it.
        `margin` (and a third element of `eval_set`) is a per-row offset on the link scale."""
        if eval_set is None:
            return model_class(objective=objective, **self._params()).fit(X, y, base_margin=margin)
        model = model_class(
            objective=objective, early_stopping_rounds=EARLY_STOPPING_ROUNDS, **self._params()
        )
        X_eval, y_eval, *eval_margin = eval_set
        model.fit(
            X,
            y,
            base_margin=margin,
            eval_set=[(X_eval, y_eval)],
            base_margin_eval_set=[eval_margin[0]] if eval_margin and eval_margin[0] is not None else None,
            verbose=False,
        )
        self.best_n_estimators_ = int(model.best_iteration) + 1
        return model

    def feature_importance(self) -> pd.Series:
        """Total gain per feature, summed over the sub-models, highest first."""
        check_is_fitted(self, "boosters_")
        total: dict[str, float] = {}
        for booster in self.boosters_:
            for name, gain in booster.get_booster().get_score(importance_type="total_gain").items():
                total[name] = total.get(name, 0.0) + gain
        return pd.Series(total, dtype=float).sort_values(ascending=False)


class CountRegressor(_Boosted):
    """Number of purchases in the label window."""

    def fit(self, X: pd.DataFrame, y, eval_set: tuple | None = None, margin=None) -> CountRegressor:
        y = np.clip(np.asarray(y, dtype=float), 0, None)
        self.boosters_ = [self._fit_booster(xgb.XGBRegressor, "count:poisson", X, y, eval_set, margin)]
        return self

    def predict(self, X: pd.DataFrame, margin=None) -> np.ndarray:
        check_is_fitted(self, "boosters_")
        return np.clip(self.boosters_[0].predict(X, base_margin=margin), 0, None).astype(float)


class ChurnClassifier(_Boosted):
    """P(no purchase in the label window), uncalibrated (models.predictor calibrates on a later window)."""

    def fit(self, X: pd.DataFrame, y, eval_set: tuple | None = None, margin=None) -> ChurnClassifier:
        y = np.asarray(y, dtype=int)
        if y.min() == y.max():
            raise ValueError("churn labels are all the same; need churners and non-churners to learn from")
        self.boosters_ = [self._fit_booster(xgb.XGBClassifier, "binary:logistic", X, y, eval_set, margin)]
        return self

    def predict_proba_churn(self, X: pd.DataFrame, margin=None) -> np.ndarray:
        check_is_fitted(self, "boosters_")
        return self.boosters_[0].predict_proba(X, base_margin=margin)[:, 1].astype(float)
