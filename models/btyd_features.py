"""Buy-till-you-die summaries of every customer at one cut-off.

They serve three purposes in `models.predictor`: features for the boosted models, the *base* those
models correct (the boosted models learn a multiplicative correction to it, so where they know
nothing they fall back to it), and the time profile that stretches label-window predictions to the
horizon.

At a cut-off, three purchase models are fitted by maximum likelihood on the customers who have
purchased: BG/NBD (`models.bgnbd`), MBG/NBD (`models.mbgnbd`) and Pareto/NBD (`models.pareto_nbd`),
plus MBG/CNBD-k (`models.mbgcnbd`) with a given k > 1 on shops whose buyers are regular
(`models.base_choice`); and the order value (`models.order_value`: Gamma-Gamma on the repeat buyers'
capped spend, or the shop's mean order value where a customer's own spend does not predict her
next). Customers without a purchase (only refunds or free orders so far) are not fitted on; they
are scored as one-time buyers from the log's start (`read_no_purchase`), at every cut-off a model is
chosen, fitted, validated or scored at, so that training sees them as scoring does.

Columns added for a window of w days (per customer):
- `{bgnbd,mbgnbd,pareto}_expected_orders`: E[purchases in (t, t + w]] (and `mbgcnbd_...` with k > 1);
- `{bgnbd,mbgnbd,pareto}_p_alive`: P(alive at t);
- `{bgnbd,mbgnbd,pareto}_p_no_purchase`: P(no purchase in (t, t + w]);
- `btyd_order_value`: expected value of a future order (`models.order_value`);
- `base_expected_orders`, `base_p_no_purchase`, `base_p_alive`: the base, the average of the models
  in `base` (geometric for expected orders, in log-odds for probabilities). By default MBG/NBD and
  Pareto/NBD (`BASE_MODELS`) form it because both let a one-time buyer drop out, so the base's
  P(alive) falls with the time since a single purchase (BG/NBD keeps it at 1); BG/NBD stays a
  feature. On a shop of regular buyers the base can be MBG/CNBD-k alone (`models.base_choice`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from models.bgnbd import BetaGeoModel
from models.btyd_fit import Summary
from models.mbgcnbd import ErlangBetaGeoModel
from models.mbgnbd import ModifiedBetaGeoModel
from models.order_value import OWN_SPEND, OrderValue
from models.pareto_nbd import ParetoNBDModel

PURCHASE_MODELS = {"bgnbd": BetaGeoModel, "mbgnbd": ModifiedBetaGeoModel, "pareto": ParetoNBDModel}
BASE_MODELS = ("mbgnbd", "pareto")
REGULAR = "mbgcnbd"
MODEL_NAMES = {"bgnbd": "BG/NBD", "mbgnbd": "MBG/NBD", "pareto": "Pareto/NBD", REGULAR: "MBG/CNBD-k"}
_EPS = 1e-6


class NoRepeatPurchases(ValueError):
    """Nobody bought twice by the cut-off: repeat buying cannot be estimated. `buyers` is how many bought."""

    def __init__(self, buyers: int):
        super().__init__(
            f"none of the {buyers:,} customers who bought by the cut-off has bought twice, "
            "so how often customers come back cannot be estimated"
        )
        self.buyers = buyers


class BTYDFeatures:
    """The buy-till-you-die models fitted on one cut-off's feature table (`features.pipeline`).

    `regularity_k` > 1 adds MBG/CNBD-k with that k; `base` names the models averaged into the base;
    `spend` is the order-value rule (`models.order_value`).
    Raises NoRepeatPurchases when nobody bought twice, ValueError when `base` names a model not fitted
    or `spend` is not a rule.
    """

    def __init__(
        self,
        features: pd.DataFrame,
        regularity_k: int = 1,
        base: tuple[str, ...] = BASE_MODELS,
        spend: str = OWN_SPEND,
    ):
        buyers = features[features["n_orders"] > 0]
        if not (buyers["btyd_frequency"] > 0).any():
            raise NoRepeatPurchases(len(buyers))
        self.purchases = {name: model().fit(buyers) for name, model in PURCHASE_MODELS.items()}
        if regularity_k > 1:
            self.purchases[REGULAR] = ErlangBetaGeoModel(k=regularity_k).fit(buyers)
        unknown = [name for name in base if name not in self.purchases]
        if unknown or not base:
            raise ValueError(f"the base must name fitted models ({', '.join(self.purchases)}), not {base}")
        self.base = tuple(base)
        self.spend = OrderValue(buyers, spend)

    def describe(self) -> str:
        """The base in words: its models and what it values orders with, e.g. "MBG/NBD and Pareto/NBD, a
        value of 1 per order" (`describe_base`, `models.order_value.OrderValue.describe`)."""
        return f"{describe_base(self.base)}, {self.spend.describe()}"

    def order_value(self, features: pd.DataFrame) -> np.ndarray:
        """Expected value of a future order per customer (`models.order_value`)."""
        return self.spend.predict(features)

    def add(self, features: pd.DataFrame, window_days: int) -> pd.DataFrame:
        """`features` with the columns of the module docstring for a window of `window_days`."""
        columns: dict[str, np.ndarray] = {}
        summary = Summary.of(features)
        for name, model in self.purchases.items():
            columns[f"{name}_expected_orders"] = np.asarray(
                model.expected_purchases(summary, window_days), float
            )
            columns[f"{name}_p_alive"] = np.asarray(model.p_alive(summary), float)
            columns[f"{name}_p_no_purchase"] = np.asarray(model.p_no_purchase(summary, window_days), float)
        columns["btyd_order_value"] = self.order_value(features)
        columns["base_expected_orders"] = _geometric_mean(
            [columns[f"{m}_expected_orders"] for m in self.base]
        )
        columns["base_p_no_purchase"] = _logit_mean([columns[f"{m}_p_no_purchase"] for m in self.base])
        columns["base_p_alive"] = _logit_mean([columns[f"{m}_p_alive"] for m in self.base])
        if not any(name in features.columns for name in columns):
            # One concatenation instead of assign's column-by-column inserts (a third of a request's scoring).
            return pd.concat([features, pd.DataFrame(columns, index=features.index)], axis=1)
        return features.assign(**columns)

    def base_orders(self, features: pd.DataFrame | Summary, days: int) -> np.ndarray:
        summary = Summary.of(features)
        return _geometric_mean(
            [np.asarray(self.purchases[m].expected_purchases(summary, days), float) for m in self.base]
        )

    def base_no_purchase(self, features: pd.DataFrame | Summary, days: int) -> np.ndarray:
        summary = Summary.of(features)
        return _logit_mean(
            [np.asarray(self.purchases[m].p_no_purchase(summary, days), float) for m in self.base]
        )

    def stretch(
        self, features: pd.DataFrame, label_days: int, horizon_days: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-customer factors taking window-L predictions to horizon H, from the base's time profile:
        E[orders in H] / E[orders in L], and P(no purchase in H) / P(no purchase in L) (at most 1)."""
        if horizon_days == label_days:
            ones = np.ones(len(features))
            return ones, ones
        features = Summary.of(features)
        orders = (self.base_orders(features, horizon_days) + _EPS) / (
            self.base_orders(features, label_days) + _EPS
        )
        none = (self.base_no_purchase(features, horizon_days) + _EPS) / (
            self.base_no_purchase(features, label_days) + _EPS
        )
        return orders, np.clip(none, 0, 1)

    def alive_shape(self, features: pd.DataFrame) -> np.ndarray:
        """Shape r + x of an alive customer's posterior purchase rate (Gamma(r + x, alpha + T)), averaged
        over the base models: the shape of her negative binomial count of future orders."""
        x = features["btyd_frequency"].to_numpy(float)
        return np.mean([self.purchases[m].params_["r"] + x for m in self.base], axis=0)

    def quiet_if_alive(self, features: pd.DataFrame, days: int, p_alive: np.ndarray) -> np.ndarray:
        """P(no purchase in the next `days` | alive) implied by the base: 1 - (1 - P(none)) / P(alive)."""
        none = self.base_no_purchase(features, days)
        return np.clip(1 - (1 - none) / np.maximum(p_alive, _EPS), 0, 1)


def first_day(features: pd.DataFrame) -> pd.Series:
    """Per row of a feature table (`features.pipeline`: as_of, btyd_age in days), the first day its cut-off's
    log saw any customer: the earliest first order of the rows with the same as_of (as_of - btyd_age; a
    customer without a purchase is dated by her first order). Only rows at or before each cut-off enter its
    table, so this is the log's start as known at that cut-off."""
    seen = pd.to_datetime(features["as_of"]) - pd.to_timedelta(features["btyd_age"], unit="D")
    return seen.groupby(features["as_of"].to_numpy()).transform("min")


def read_no_purchase(features: pd.DataFrame, log_start: str | None = None) -> pd.DataFrame:
    """`features` with every customer without a purchase (`n_orders` 0: only refunds or free orders) read
    as a one-time buyer whose purchase was on the log's first day, or on her first order if that is
    earlier: her tenure_days, recency_days and btyd_age (days) become the days since then, never fewer.

    Any purchase of hers happened off the log, before it began (a refund proves one); read at her first
    order, a refund yesterday made her a buyer of yesterday (predicted CLV 141, value decile 10).
    `log_start` (YYYY-MM-DD): the first day of the log a model was fitted on, for scoring (a
    `/predict_history` request holds one customer's rows, not the log); None: each cut-off's own
    (`first_day`), for the tables a model is fitted on. `features` itself when everyone has bought.
    Training and scoring both read through here, so a model learns from such customers as it scores them:
    read at their first order in the training windows alone, they were fresh one-time buyers there and
    buyers of the log's start when scored."""
    none = features["n_orders"].to_numpy() == 0
    if not none.any():
        return features
    start = first_day(features) if log_start is None else pd.Timestamp(log_start)
    since_start = (pd.to_datetime(features["as_of"]) - start).dt.days.to_numpy()
    out = features.copy()
    for column in ("tenure_days", "recency_days", "btyd_age"):
        own = out[column].to_numpy()
        out[column] = np.where(none, np.maximum(own, since_start), own).astype(own.dtype)
    return out


def describe_base(models: tuple[str, ...]) -> str:
    """The base's models in words, e.g. "MBG/NBD and Pareto/NBD"."""
    return " and ".join(MODEL_NAMES.get(m, m) for m in models)


def _geometric_mean(arrays: list[np.ndarray]) -> np.ndarray:
    return np.exp(np.mean([np.log(np.clip(a, 0, None) + _EPS) for a in arrays], axis=0)) - _EPS


def _logit_mean(arrays: list[np.ndarray]) -> np.ndarray:
    return expit(np.mean([logit(np.clip(a, _EPS, 1 - _EPS)) for a in arrays], axis=0))
