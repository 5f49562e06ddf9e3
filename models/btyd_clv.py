"""The standard buy-till-you-die CLV baselines: BG/NBD (or Pareto/NBD) purchases x Gamma-Gamma order value.

On a log whose repeat purchase days are all worth the same (no amounts: 1 per order) Gamma-Gamma is not
fitted and every order is worth that value (`models.order_value.constant_value`): fitted there, it ran to
its parameters' bound (p = q = 8,103 on the grocery log) to give 1.00004 per order, under the label
"Gamma-Gamma"."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.bgnbd import BetaGeoModel
from models.btyd_fit import Fitted
from models.discounting import mid_horizon_factor
from models.gamma_gamma import MIN_REPEAT_BUYERS, GammaGammaModel
from models.order_value import constant_value, per_order
from models.pareto_nbd import ParetoNBDModel


class BTYDCLV(Fitted):
    """Revenue over a horizon = E[purchases in H] x E[order value], optionally discounted yearly."""

    def __init__(self, time_scale: float = 7.0, penalizer: float = 0.0, purchase_model: str = "bgnbd"):
        self.time_scale = time_scale
        self.penalizer = penalizer
        self.purchase_model = purchase_model

    def fit(self, X: pd.DataFrame, y=None) -> BTYDCLV:
        """Fit the purchase model and Gamma-Gamma on `X`; returns self. Raises
        models.gamma_gamma.TooFewRepeatBuyers when too few customers came back for Gamma-Gamma."""
        models = {"bgnbd": BetaGeoModel, "pareto_nbd": ParetoNBDModel}
        if self.purchase_model not in models:
            raise ValueError(
                f"purchase_model must be one of {', '.join(models)}, not {self.purchase_model!r}"
            )
        self.purchases_ = models[self.purchase_model](self.time_scale, self.penalizer).fit(X)
        repeat = X["btyd_monetary"].to_numpy(float)[X["btyd_frequency"].to_numpy(float) > 0]
        # With fewer repeat buyers than Gamma-Gamma needs, a shared value is chance (two buyers of 35),
        # not a log without amounts: Gamma-Gamma then refuses as before and the baseline is left out.
        self.constant_value_ = constant_value(repeat) if (repeat > 0).sum() >= MIN_REPEAT_BUYERS else None
        self.spend_ = None if self.constant_value_ is not None else GammaGammaModel(self.penalizer).fit(X)
        spend_params = {"order_value": self.constant_value_} if self.spend_ is None else self.spend_.params_
        self.params_ = {**self.purchases_.params_, **spend_params}
        return self

    def describe_spend(self) -> str:
        """What orders are valued with, in words: "Gamma-Gamma", or "a value of 1 per order"."""
        self._check_fitted()
        return "Gamma-Gamma" if self.spend_ is not None else per_order(self.constant_value_)

    def predict_clv(self, X: pd.DataFrame, horizon_days: float, discount_rate: float = 0.0) -> np.ndarray:
        self._check_fitted()
        order_value = self.constant_value_ if self.spend_ is None else self.spend_.expected_order_value(X)
        value = self.purchases_.expected_purchases(X, horizon_days) * order_value
        return value * mid_horizon_factor(discount_rate, horizon_days)
