"""Expected value of a customer's next order: Gamma-Gamma, or the shop's mean order value.

Gamma-Gamma (Fader, Hardie and Lee 2005, "RFM and CLV", eq. 5) predicts a customer's order value as
a weighted mean of her own past spend and the shop's, trusting her own more the more she has
bought. That pays where customers spend at their own level (a demo-shop customer who buys premium
keeps buying premium). Where they do not, her own spend is noise, and multiplying it into the CLV
scrambles a ranking that purchase counts alone get right. On the apparel cohort in
`../shared/data/apparel` a customer's past spend does not predict her later spend (Spearman -0.08
between the two), yet Gamma-Gamma's fit still gave her own mean a weight of 0.33 to 0.98; 13 weeks
into that cohort the CLV ranked customers no better than chance (Spearman -0.02) while the expected
orders alone reached 0.21. Which of the two spend rules a shop gets is decided on its own history
(`models.base_choice`).

A customer's largest order is counted at most at the shop's robust upper fence, and her mean order
never above it (`models.outliers.capped_mean`), before anything is fitted;
a buyer with a repeat order above the fence is left out of the Gamma-Gamma fit, so one customer's extreme
orders cannot move the population's parameters, and with them every other customer's order value. Money is in the shop's
currency (in orders for a log without amounts, where every order is worth the same).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import FEW_REPEAT_BUYERS
from features.fence import spend_fence
from models.gamma_gamma import GammaGammaModel
from models.outliers import capped_mean, excess_over_fence

OWN_SPEND = "gamma_gamma"
SHOP_SPEND = "shop_mean"
SPEND_RULES = {OWN_SPEND: "Gamma-Gamma", SHOP_SPEND: "the shop's mean order value"}


def constant_value(repeat_values: np.ndarray) -> float | None:
    """The one value of `repeat_values` (repeat purchase days' values, shape (n,)) when they are all the same,
    as on a log without amounts (1 per order); None when they differ or there are none. Gamma-Gamma cannot be
    fitted on one value (its likelihood grows without bound), so such a log is valued at it instead."""
    if repeat_values.size and np.ptp(repeat_values) <= 1e-9 * max(abs(repeat_values.max()), 1.0):
        return float(repeat_values.max())
    return None


def per_order(value: float) -> str:
    """How orders worth one `value` each are named in labels and notes."""
    return f"a value of {value:g} per order"


class OrderValue:
    """The spend model of one cut-off, fitted on its buyers (`features.pipeline` rows with
    `n_orders` > 0 and the columns `btyd_frequency`, `btyd_monetary`, `monetary_mean`).

    `rule`: `OWN_SPEND` (Gamma-Gamma's conditional mean; each buyer's own capped mean when fewer than
    `FEW_REPEAT_BUYERS` buyers came back) or `SHOP_SPEND` (one value for everyone: Gamma-Gamma's
    population mean p gamma / (q - 1), or the buyers' capped mean when that is not finite or not
    fitted). A log whose repeat orders are all worth the same gets that value for everyone.
    Raises ValueError for an unknown rule.
    """

    def __init__(self, buyers: pd.DataFrame, rule: str = OWN_SPEND):
        if rule not in SPEND_RULES:
            raise ValueError(f"the spend rule must be one of {', '.join(SPEND_RULES)}, not {rule!r}")
        self.rule = rule
        self.fence_ = spend_fence(buyers)
        capped = excess_over_fence(buyers, self.fence_, repeat=True) > 0
        ordinary = excess_over_fence(buyers, self.fence_) <= 0
        buyers = self._capped(buyers)
        is_repeat = buyers["btyd_frequency"].to_numpy() > 0
        repeat_values = buyers.loc[is_repeat, "btyd_monetary"].to_numpy(float)
        self.gamma_gamma_ = None
        self.constant_value_ = constant_value(repeat_values)
        if self.constant_value_ is None and (repeat_values > 0).sum() >= FEW_REPEAT_BUYERS:
            # A buyer with a repeat order above the fence is valued with her capped mean, but left out of
            # the population's fit: her mean is the fence's as much as hers, and with few repeat orders
            # (one of 2.5e9 among two on the demo shop) it moved every other customer's value by up to 6%.
            self.gamma_gamma_ = GammaGammaModel().fit(buyers[is_repeat & ~capped])
        # The same holds for the shop's mean (on the demo shop one capped buyer moved it by 8%).
        self.mean_value_ = float(
            np.mean(buyers.loc[ordinary if ordinary.any() else slice(None), "monetary_mean"])
        )

    def _capped(self, features: pd.DataFrame) -> pd.DataFrame:
        """`features` with the mean order values read through the fence (`models.outliers.capped_mean`)."""
        return features.assign(
            btyd_monetary=capped_mean(features, self.fence_, repeat=True),
            monetary_mean=capped_mean(features, self.fence_),
        )

    def shop_value(self) -> float:
        """The one order value of `SHOP_SPEND`, in currency per order."""
        if self.constant_value_ is not None:
            return self.constant_value_
        if self.gamma_gamma_ is not None and np.isfinite(mean := self.gamma_gamma_.population_mean()):
            return float(mean)
        return self.mean_value_

    def describe(self) -> str:
        """What orders are valued with, in words (e.g. "Gamma-Gamma"), as fitted: a log without amounts
        gives every order the same value (under either rule), and too few repeat buyers leave each buyer
        her own mean. The backtest's label of the base and the predictor's note on the base it serves both
        say this, so `clv train`, the MLflow run and `GET /model` name the same thing."""
        if self.constant_value_ is not None:
            return per_order(self.constant_value_)
        if self.rule == SHOP_SPEND:
            return SPEND_RULES[SHOP_SPEND]
        if self.gamma_gamma_ is not None:
            return SPEND_RULES[OWN_SPEND]
        return "each buyer's own mean order value"

    def own_values(self, features: pd.DataFrame) -> np.ndarray:
        """`OWN_SPEND`'s value per row of `features`: Gamma-Gamma's conditional mean, each buyer's own
        capped mean without Gamma-Gamma (the shop's mean for rows without a purchase)."""
        if self.constant_value_ is not None:
            return np.full(len(features), self.constant_value_)
        if self.gamma_gamma_ is not None:
            return np.asarray(self.gamma_gamma_.expected_order_value(self._capped(features)), dtype=float)
        own = self._capped(features)["monetary_mean"].to_numpy(float)
        return np.where(features["n_orders"].to_numpy() > 0, own, self.mean_value_)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Expected value of the next order per row of `features` under `rule`, shape (n,)."""
        if self.rule == SHOP_SPEND:
            return np.full(len(features), self.shop_value())
        return self.own_values(features)
