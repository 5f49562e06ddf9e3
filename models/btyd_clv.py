"""The standard buy-till-you-die CLV baselines: BG/NBD (or Pareto/NBD) purchases x Gamma-Gamma order value."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.bgnbd import BetaGeoModel
from models.btyd_fit import Fitted
from models.discounting import mid_horizon_factor
from models.gamma_gamma import GammaGammaModel
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
        self.spend_ = GammaGammaModel(self.penalizer).fit(X)
        self.params_ = {**self.purchases_.params_, **self.spend_.params_}
        return self

    def predict_clv(self, X: pd.DataFrame, horizon_days: float, discount_rate: float = 0.0) -> np.ndarray:
        self._check_fitted()
        value = self.purchases_.expected_purchases(X, horizon_days) * self.spend_.expected_order_value(X)
        return value * mid_horizon_factor(discount_rate, horizon_days)
