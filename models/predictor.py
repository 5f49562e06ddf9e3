"""The composite CLV predictor: features in, the README's score columns out.

How it predicts over the horizon H (label windows of L days, L = H when the history allows):
1. Buy-till-you-die models fitted at each training cut-off (`models.btyd_features`) give each
   customer smooth summaries (expected orders, P(alive), P(no purchase), expected order value) and
   a *base*: the average of MBG/NBD and Pareto/NBD, or MBG/CNBD-k on a shop of regular buyers, times
   the expected order value, Gamma-Gamma's or the shop's mean (`regularity_k`, `base_models`,
   `spend`: chosen by `models.base_choice` before the fit).
2. XGBoost learns the number of orders (Poisson) and churn (logistic) in the label window as a
   correction of the base: the base enters as an offset (`base_margin`), so trees only model how the
   shop departs from the buy-till-you-die story, and where they have seen nothing (a customer older
   than any in the training windows, say) the prediction stays the base's. Neither model reads a
   money amount (`features.pipeline.MONEY_COLUMNS`), so a refund can never raise predicted orders nor
   move the churn probability (through it, the orders' calibration by the chance to buy and the
   value interval); money enters through the order value alone. Leaving the money out of the churn
   model cost 0.0006 of churn AUC and 0.0003 of Brier on the demo shop with events and two years.
3. On the latest complete window before the cut-off (validation), with boosted models fitted only
   on windows whose labels end before it starts (`training.windows`), small regressions stack the
   base, the customer's own run rate and rhythm, and the boosted predictions (`models.stacking`);
   each is kept only if it beats the base beyond noise by cross-validation on that window; the
   orders stack is calibrated by its level, then by the chance to buy at all, each where that lowers
   the decile error beyond noise (`models.calibration`), and the value interval is conformalised on
   its out-of-fold predictions. The boosted models are then refitted on every window.
4. Value = expected orders x expected order value (`models.order_value`), so the row's numbers multiply up;
   windows shorter than H are stretched per customer with the base's time profile.
5. Every row is made consistent (`coherent`): P(no purchase) >= 1 - E[orders] (each buyer places at
   least one order), 1 - churn <= P(alive) <= (1 - churn) / (1 - q) with q the base's probability
   that an alive customer places no order in H, low <= value <= high, and low = 0 when
   churn >= (1 - coverage) / 2 (the value is 0 with probability churn, so the interval's lower
   quantile is 0), with high then the coverage quantile (`models.intervals`). Where the base found no
   drop-out (its P(alive) spans less than `MIN_P_ALIVE_SPAN` over the buyers: 0.987 to 0.995 on a log of
   200 one-time buyers and 2 repeat orders, above 0.9999 everywhere 13 weeks into the apparel cohort),
   P(alive) is not identified: the fit cannot tell a customer who left from one who buys rarely, and
   its near-1 P(alive) beside a churn probability of 0.99 read "alive for sure, gone for sure" on one
   row, and put one-time buyers silent for two years in retention campaigns. p_alive is then left empty
   (NaN) on every row and `notes_` says why: its only bound the log supports, 1 - churn, read under 1%
   beside a `new` segment and a next order due within weeks. No rule needs it: the targeting calls
   nobody lapsed (`models.targeting`) and the next order's date is not conditioned on her being alive
   (`models.next_order`, `alive_known`).
6. Targeting rules (fitted on the base being scored) add segment, action, value decile and reason.
7. The next order's date given alive (`models.next_order`): the median of the base's waiting time,
   shifted so that P(an order in H | alive) is the row's (1 - churn) / p_alive; left empty below the
   targeting's `lapsed_p_alive` or when that chance is below 1/2 (the median is beyond the horizon).

A customer without a purchase (`n_orders` 0: only refunds or free orders, so `features.rfm` dates
her by her first order) is read conservatively (`models.btyd_features.read_no_purchase`): any
purchase of hers happened off the log, before it began (a refund proves one), so she is a one-time
buyer whose purchase was on the log's first day, or on her first order if that is earlier. Her
silence is at least that long. Read at her first order, a refund yesterday made her a buyer of
yesterday: predicted CLV 141 and value decile 10. `fit` reads every table so (training windows,
validation window and scoring cut-off, each with the log's start as known at its cut-off), and
`predict` with the start of the log the model was fitted on (`log_start_`), so the boosted models and
stacks learn from such customers as they are scored. Targeting gives her the segment `no_purchase`
(`models.targeting`) and she gets no next order date: nothing on her row claims a purchase. Batch
scores and `/predict_history` share this code, so they agree.

Where the boosted models cannot be learned or validated (a shop younger than two label windows,
nobody came back or nobody lapsed in the windows) the predictor serves the base for that output
(`kind_` is "base" when it serves the base alone) and `notes_` says why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from features.fence import upper_fence
from features.pipeline import MONEY_COLUMNS
from features.schema import DERIVED_COLUMNS, SCORE_COLUMNS, SCORER_COLUMNS
from models import metrics
from models.btyd_features import (
    BASE_MODELS,
    BTYDFeatures,
    NoRepeatPurchases,
    first_day,
    read_no_purchase,
)
from models.btyd_fit import require
from models.calibration import fit_churn_calibration, fit_level_calibration
from models.discounting import mid_horizon_factor
from models.gbm import ChurnClassifier, CountRegressor, FeatureMatrix, select_features
from models.intervals import ConformalInterval, posterior_count_interval
from models.next_order import next_order
from models.order_value import OWN_SPEND
from models.outliers import capped
from models.stacking import MAX_SHIFT_SD, StackedModel, ranking_score, stack_inputs
from models.targeting import TargetingRules

OUTPUT_COLUMNS = (
    *(c for c in SCORE_COLUMNS if c not in SCORER_COLUMNS and c not in DERIVED_COLUMNS),
    "days_to_next_order",
    "reason",
)


def output_semantics(horizon_days: int | None, value_unit: str = "currency") -> dict[str, str]:
    """What each output column means, in words (the README and `GET /model` show it)."""
    h = f"the {horizon_days} days after as_of" if horizon_days else "the horizon after as_of"
    unit = (
        "orders (the log has no amounts: every order counts as 1)" if value_unit == "orders" else "currency"
    )
    return {
        "predicted_clv": f"expected value of the customer's orders in {h}, in {unit}, discounted to the "
        "middle of the horizon when a discount rate is set; = expected_orders x expected_aov x discount",
        "predicted_clv_low": "lower end of an interval that holds the real value for the configured share of "
        "customers (80% by default); predicted_clv_low <= predicted_clv <= predicted_clv_high; 0 when "
        "churn_prob >= (1 - coverage) / 2 (10% by default): the value is 0 with probability churn_prob",
        "predicted_clv_high": "upper end of that interval (where the lower end is 0, the value's coverage quantile)",
        "churn_prob": f"probability that the customer places no order in {h}; at least 1 - p_alive (a "
        "customer who has left cannot order) and at least 1 - expected_orders",
        "p_alive": "probability that the customer is still active at as_of (has not left for good); for a "
        "one-time buyer it falls as the time since the purchase grows, all else alike (it is at least 1 - "
        "churn_prob, which reads her visits where the model has events); empty on every row where the fit found no "
        "drop-out (the model's notes say so): the log cannot tell a customer who left from one who buys rarely",
        "expected_orders": f"expected number of orders in {h}",
        "expected_aov": f"expected value of one of those orders, in {unit}",
        "segment": "the customer's group for marketing (models/targeting.py; lines in targeting_thresholds)",
        "next_best_action": "what to do with the segment: welcome_series, upsell, retention_offer, win_back, "
        "cross_sell (only with a cross_sell suggestion; without one nurture, and the reason says why), nurture, "
        "or review for a customer without a purchase in the log (segment no_purchase; in no campaign list)",
        "value_decile": "1-10, the customer's tenth of the scored base by predicted_clv (10 = most valuable)",
        "reason": "one line quoting the numbers and the lines that put the customer in the segment",
        "next_order_date": "median date of the customer's next order if she is still a customer (so an order "
        "by then has probability p_alive / 2), with the chance of an order in the horizon given alive set to "
        "the row's (1 - churn_prob) / p_alive; empty when p_alive is below the lapsed line or that chance is "
        "below 1/2 (the date would be beyond the horizon) (models/next_order.py)",
        "days_to_next_order": "the same in days after as_of, not rounded",
        "avg_days_between_orders": "her own mean gap between purchase days so far; empty with one purchase day",
        "next_order_reason": "why next_order_date is what it is, or why it is empty",
        "cross_sell": "up to 3 items to offer next, best first, '; '-separated, never what she buys regularly "
        "(made by clv score from the shop's log: models/cross_sell.py)",
        "cross_sell_reason": "per suggestion, the rule behind it or its popularity, or why there is none",
    }


NO_PURCHASE_TIMING = "left empty: no purchase in the log (only refunds or free orders)"
# Why the base alone is served when the history leaves no validation window (`fit`, `training.windows`).
NO_VALIDATION_WINDOW = "no room before the cut-off for a validation window to check boosted models and stacks"
# Fewer customers than this in the validation window cannot validate the boosted models.
MIN_VALIDATION_CUSTOMERS = 50
# A base whose P(alive) spans less than this over the buyers found no drop-out (`CLVPredictor.dropout_found`).
MIN_P_ALIVE_SPAN = 0.05
_EPS = 1e-6
_LABELS = ("as_of", "customer_id", "label_revenue", "label_orders", "label_churned")


class CLVPredictor(BaseEstimator):
    """Hybrid BTYD + XGBoost CLV and churn model.

    Parameters: `horizon_days` H of the predictions; `label_days` L of the training labels
    (defaults to H); `coverage` of the CLV interval; `margin` (fraction, adds `predicted_profit`);
    `discount_rate` (yearly; future value is discounted to the middle of the horizon); `targeting`
    parameters of `TargetingRules`; `n_estimators` (most trees per boosted model; early stopping
    picks fewer); `regularity_k` (k of MBG/CNBD-k, fitted beside the other buy-till-you-die models
    when > 1), `base_models` (those averaged into the base) and `spend` (the order-value rule of
    `models.order_value`), from `models.base_choice`; `seed`.
    """

    def __init__(
        self,
        horizon_days: int = 365,
        validation_days: int | None = None,
        label_days: int | None = None,
        coverage: float = 0.8,
        margin: float | None = None,
        discount_rate: float = 0.0,
        targeting: dict | None = None,
        n_estimators: int = 300,
        regularity_k: int = 1,
        base_models: tuple[str, ...] = BASE_MODELS,
        spend: str = OWN_SPEND,
        seed: int = 0,
    ):
        self.horizon_days = horizon_days
        self.validation_days = validation_days
        self.label_days = label_days
        self.coverage = coverage
        self.margin = margin
        self.discount_rate = discount_rate
        self.targeting = targeting
        self.n_estimators = n_estimators
        self.regularity_k = regularity_k
        self.base_models = base_models
        self.spend = spend
        self.seed = seed

    def fit(
        self,
        snapshots: pd.DataFrame | None,
        validation: pd.DataFrame | None = None,
        reference: pd.DataFrame | None = None,
        no_validation: str = NO_VALIDATION_WINDOW,
    ) -> CLVPredictor:
        """Fit from the windows of `training.windows.plan_windows`.

        `snapshots`: the boosted training windows stacked (features + labels over `label_days` per
        cut-off, `features.snapshots`), None or empty when there is no room for them; `validation`:
        features at the validation cut-off with labels over `validation_days` (None: history too short,
        only the base is fitted); `reference`: the feature table at the scoring cut-off (default: the
        validation table); `no_validation`: why there is no validation window (the run's notes).
        Raises NoRepeatPurchases when nobody ever bought twice, ValueError on missing columns, windows
        longer than the horizon, or when no table is given.
        """
        self.notes_: list[str] = []
        self.base_reason_: str | None = None
        self.orders_scale_, self.churn_shift_ = 1.0, 0.0
        snapshots, validation, reference = (
            None if table is None else read_no_purchase(table) for table in (snapshots, validation, reference)
        )
        latest = validation if reference is None else reference
        if latest is None:
            raise ValueError("fit needs a validation window or, for the base alone, a reference table")
        if validation is None or len(validation) < MIN_VALIDATION_CUSTOMERS:
            why = (
                no_validation
                if validation is None
                else f"only {len(validation)} customers had bought by the validation window's cut-off "
                f"{_day(validation)}, too few (under {MIN_VALIDATION_CUSTOMERS}) to validate anything beyond the base"
            )
            return self._fit_base(latest, why)
        require(validation, _LABELS, "the validation window", "features.labels")
        self.window_days_ = int(self.validation_days or self.horizon_days)
        self.boost_days_ = int(self.label_days or self.window_days_)
        if max(self.window_days_, self.boost_days_) > self.horizon_days:
            raise ValueError("label windows cannot be longer than the horizon")
        try:
            checked = self._btyd(validation)
        except NoRepeatPurchases:
            return self._fit_base(latest, "nobody had bought twice before the validation window")
        checked_window = checked.add(validation, self.window_days_).reset_index(drop=True)

        enriched = None if snapshots is None or snapshots.empty else self._enrich(snapshots)
        trees = self._fit_validated_boosted(enriched, checked_window["as_of"].iloc[0])
        boosted_view = (
            checked.add(validation, self.boost_days_).reset_index(drop=True) if trees is not None else None
        )
        self._stack(checked_window, boosted_view)
        if not (self.orders_stack_ or self.churn_stack_):
            self.count_model_ = self.churn_model_ = None
            self.notes_.append(
                "the stacked models did not beat the base beyond noise on the validation window"
            )
            return self._fit_base(latest, None)
        self.kind_ = "hybrid"
        self._finish(latest, enriched if trees is not None else None, trees)
        if shifted := self._shifted_inputs(latest):
            return self._fit_base(
                latest,
                f"the customers scored are unlike the validation window's, where the stacks were fitted ({shifted})",
            )
        return self

    def _shifted_inputs(self, features: pd.DataFrame) -> str:
        """The stacks' inputs whose mean over `features` (the scoring cut-off's customers) lies more than
        `MAX_SHIFT_SD` of the validation window's standard deviations from its mean, in words ("" when
        none). The stacks are linear in these inputs, so such a shift moves every prediction alike."""
        orders_in, churn_in = self._stack_inputs(features, self.btyd_.add(features, self.window_days_))
        shifted: dict[str, tuple[float, list[str]]] = {}
        for stack, inputs in ((self.orders_stack_, orders_in), (self.churn_stack_, churn_in)):
            if stack is None:
                continue
            for name, z in stack.shift(inputs).items():
                if abs(z) > MAX_SHIFT_SD:
                    shifted.setdefault(name, (z, []))[1].append(stack.kind)
        return "; ".join(
            f"{name}, an input of the {' and '.join(kinds)} stack{'s' if len(kinds) > 1 else ''}, is "
            f"{abs(z):.1f} standard deviations {'below' if z < 0 else 'above'} the window's mean on average"
            for name, (z, kinds) in shifted.items()
        )

    def _fit_validated_boosted(
        self, enriched: pd.DataFrame | None, validation_cutoff
    ) -> dict[str, int] | None:
        """Boosted models on the windows that end before the validation window, stopped early on a
        fifth of their customers held out (all of a customer's windows go together); returns the
        tree counts, or None when there are no such windows (the stacks then go without them)."""
        self.matrix_ = self.count_model_ = self.churn_model_ = None
        if enriched is None:
            return None
        validated = enriched[enriched["as_of"] + pd.Timedelta(days=self.boost_days_) <= validation_cutoff]
        if validated.empty:
            return None
        # Neither boosted model reads the money (module docstring, step 2).
        purchases = [n for n in select_features(enriched) if n not in (*MONEY_COLUMNS, "btyd_order_value")]
        self.matrix_ = FeatureMatrix(purchases, enriched)
        self.feature_names_in_ = self.matrix_.names
        customers = validated["customer_id"].unique()
        held = set(np.random.default_rng(self.seed).permutation(customers)[: max(1, len(customers) // 5)])
        is_held = validated["customer_id"].isin(held).to_numpy()
        return self._fit_boosted(validated[~is_held], validated[is_held])

    def _fit_base(self, reference: pd.DataFrame, why: str | None) -> CLVPredictor:
        """The buy-till-you-die base alone, over H directly, with a posterior interval."""
        self.kind_ = "base"
        self.window_days_ = self.boost_days_ = int(self.horizon_days)
        self.count_model_ = self.churn_model_ = None
        self.orders_stack_ = self.churn_stack_ = self.interval_ = None
        self.calibration_ = self.churn_calibration_ = None
        self._finish(reference)
        self.base_reason_ = why
        if why:
            # What the fitted spend model values orders with, as the backtest's label says it
            # (`OrderValue.describe`): the rule's name said "Gamma-Gamma" where none was fitted.
            self.notes_.append(self.base_note())
        return self

    def base_note(self) -> str | None:
        """The note on why the base alone is served (`base_reason_`) and what it is; None when there is no
        such reason (a hybrid, or a base served because the stacks did not beat it: their own note)."""
        if not self.base_reason_:
            return None
        return f"{self.base_reason_}: serving the buy-till-you-die base ({self.btyd_.describe()})"

    def _finish(
        self,
        reference: pd.DataFrame,
        enriched: pd.DataFrame | None = None,
        trees: dict[str, int] | None = None,
    ) -> CLVPredictor:
        """Fit the base at the scoring cut-off, refit the boosted models on every window (hybrid only),
        and learn the targeting lines on the scored base."""
        self.btyd_ = self._btyd(reference)
        self.log_start_ = str(first_day(reference).min().date())
        alive = self.btyd_.add(reference, self.horizon_days)["base_p_alive"].to_numpy(float)
        buyers = reference["n_orders"].to_numpy() > 0
        self.p_alive_range_ = (
            (float(alive[buyers].min()), float(alive[buyers].max())) if buyers.any() else (1.0, 1.0)
        )
        note = self.no_dropout_note()
        if note and note not in self.notes_:
            self.notes_.append(note)
        if enriched is not None:
            self._refit(enriched, trees, reference)
        self.targeting_ = TargetingRules(**(self.targeting or {})).fit(
            self._predict_values(reference),
            spend_fence=self.btyd_.spend.fence_,
            p_alive_identified=self.dropout_found(),
        )
        return self

    def dropout_found(self) -> bool:
        """Whether the base's fit tells customers who left from customers who buy rarely: its P(alive) over
        the buyers at the scoring cut-off spans at least `MIN_P_ALIVE_SPAN` (`p_alive_range_`)."""
        low, high = self.p_alive_range_
        return high - low >= MIN_P_ALIVE_SPAN

    def no_dropout_note(self) -> str | None:
        """Why p_alive is left empty (module docstring, step 5); None when the base found drop-out."""
        if self.dropout_found():
            return None
        low, high = self.p_alive_range_
        return (
            f"the buy-till-you-die fit found no drop-out (its P(alive) spans only {low:.3%} to {high:.3%} over "
            "the buyers): the log cannot tell a customer who has left from one who buys rarely, so p_alive is "
            "left empty; no segment needs it (nobody is called lapsed: a valuable customer at risk gets a "
            "retention offer, not a win-back), next-order dates do not assume the customer is still one, and "
            "churn_prob still says how likely an order within the horizon is"
        )

    def _refit(self, enriched: pd.DataFrame, trees: dict[str, int], reference: pd.DataFrame) -> None:
        """Refit the boosted models on every window (the latest ones are the most like the base being
        scored), keeping the level the stacks were fitted with: each refitted model is rescaled so that
        its mean on the scored base equals the validated model's (orders by a factor, churn by a shift
        in log-odds). Without that, a refit that sees a busier year moves every prediction through the
        stack's coefficient (by 56% on the demo shop)."""
        scored = self.btyd_.add(reference, self.boost_days_)
        X = self.matrix_.codes(scored)
        orders_before, churn_before = self._boosted_orders(X, scored), self._boosted_churn(X, scored)
        self._fit_boosted(enriched, trees=trees)
        orders_after, churn_after = self._boosted_orders(X, scored), self._boosted_churn(X, scored)
        if orders_before is not None and orders_after is not None and orders_after.sum() > 0:
            self.orders_scale_ = float(orders_before.sum() / orders_after.sum())
        if churn_before is not None and churn_after is not None:
            target, z = churn_before.mean(), _logit(churn_after)
            self.churn_shift_ = float(brentq(lambda c: expit(z + c).mean() - target, -30, 30))

    def _btyd(self, features: pd.DataFrame) -> BTYDFeatures:
        return BTYDFeatures(features, self.regularity_k, tuple(self.base_models), self.spend)

    def _enrich(self, snapshots: pd.DataFrame) -> pd.DataFrame | None:
        """Each boosted training window's rows with its own BTYD columns; cut-offs where nobody had come
        back yet (a young cohort) are left out, with a note; None when that leaves none."""
        parts, skipped = [], []
        for cutoff, group in snapshots.sort_values(["as_of", "customer_id"], kind="stable").groupby("as_of"):
            try:
                parts.append(self._btyd(group).add(group, self.boost_days_))
            except NoRepeatPurchases:
                skipped.append(str(pd.Timestamp(cutoff).date()))
        if skipped:
            self.notes_.append(
                f"training cut-offs {', '.join(skipped)} left out: nobody had bought twice by then"
            )
        return pd.concat(parts, ignore_index=True) if parts else None

    def _stack(self, window: pd.DataFrame, boosted_view: pd.DataFrame | None) -> None:
        """On the validation window: the stacks (kept where they beat the base) and the value interval.

        `window` holds the validation features with BTYD columns for the validation window, and
        `boosted_view` the same rows with BTYD columns for the boosted models' window (None without
        boosted models). Each stack is tried with and without the boosted predictions as an input
        (they can be noise), and the better one by cross-validation is kept if it beats the base.
        """
        churned = window["label_churned"].to_numpy(float)
        order_value = window["btyd_order_value"].to_numpy(float)
        actual = capped(
            np.clip(window["label_revenue"].to_numpy(float), 0, None), upper_fence(window["label_revenue"])
        )
        orders_in, churn_in = stack_inputs(window, window, self.window_days_, *self._boosted(boosted_view))
        base_orders = window["base_expected_orders"].to_numpy(float)
        self.orders_stack_ = _best_stack(
            "orders",
            orders_in,
            window["label_orders"].to_numpy(float),
            base_orders,
            lambda predicted, rows: ranking_score(actual[rows], predicted[rows] * order_value[rows]),
            self.seed,
        )
        self.churn_stack_ = None
        if 0 < churned.mean() < 1:
            self.churn_stack_ = _best_stack(
                "churn",
                churn_in,
                churned,
                window["base_p_no_purchase"].to_numpy(float),
                lambda predicted, rows: metrics.churn_auc(churned[rows], predicted[rows]),
                self.seed,
            )
        else:
            self.notes_.append(
                "every customer of the validation window "
                + ("lapsed" if churned.all() else "bought again")
                + ": churn probabilities are the base's"
            )
        orders = base_orders if self.orders_stack_ is None else self.orders_stack_.oof_
        self.calibration_ = self.churn_calibration_ = None
        if self.orders_stack_ is not None:
            label_orders = window["label_orders"].to_numpy(float)
            churn = (
                window["base_p_no_purchase"].to_numpy(float)
                if self.churn_stack_ is None
                else self.churn_stack_.oof_
            )
            self.calibration_, orders = fit_level_calibration(
                orders, label_orders, order_value, actual, self.seed
            )
            self.churn_calibration_, orders = fit_churn_calibration(
                orders, label_orders, churn, order_value, actual, self.seed
            )
        self.interval_ = ConformalInterval(coverage=self.coverage).fit(orders * order_value, actual)

    def _boosted(self, view: pd.DataFrame | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The boosted models' (orders, churn) for rows with BTYD columns for their window, or Nones."""
        if view is None or self.matrix_ is None:
            return None, None
        X = self.matrix_.codes(view)
        return self._boosted_orders(X, view), self._boosted_churn(X, view)

    def _fit_boosted(
        self,
        frame: pd.DataFrame,
        calibration: pd.DataFrame | None = None,
        trees: dict[str, int] | None = None,
    ) -> dict[str, int]:
        """Fit the boosted count and churn models on `frame` as corrections of the base.

        With a validation window, stop each model when it stops improving there and return the tree
        counts; with `trees`, refit with those counts. A model whose labels carry nothing to learn
        (no orders at all, or churn all the same) is not fitted (None) and the base stands alone.
        """
        X = self.matrix_.transform(frame)
        X_cal = None if calibration is None else self.matrix_.transform(calibration)
        trees = trees or {}
        self.count_model_ = self.churn_model_ = None
        counts, churned = frame["label_orders"].to_numpy(float), frame["label_churned"].to_numpy(bool)
        if counts.any():
            held_out = (
                None
                if calibration is None
                else (X_cal, calibration["label_orders"], _orders_margin(calibration))
            )
            self.count_model_ = CountRegressor(
                n_estimators=trees.get("count", self.n_estimators), seed=self.seed
            ).fit(X, counts, held_out, _orders_margin(frame))
        elif calibration is not None:
            self.notes_.append("nobody bought again in the training windows: expected orders are the base's")
        if churned.any() and not churned.all():
            held_out = (
                None
                if calibration is None
                else (X_cal, calibration["label_churned"], _churn_margin(calibration))
            )
            self.churn_model_ = ChurnClassifier(
                n_estimators=trees.get("churn", self.n_estimators), seed=self.seed
            ).fit(X, churned, held_out, _churn_margin(frame))
        elif calibration is not None:
            self.notes_.append(
                "every customer in the training windows "
                + ("lapsed" if churned.all() else "bought again")
                + ": churn is the base's"
            )
        return {
            name: model.best_n_estimators_
            for name, model in (("count", self.count_model_), ("churn", self.churn_model_))
            if model is not None and hasattr(model, "best_n_estimators_")
        }

    def _boosted_orders(self, X: np.ndarray, enriched: pd.DataFrame) -> np.ndarray | None:
        """The count model's orders from `FeatureMatrix.codes` of `enriched`."""
        if self.count_model_ is None:
            return None
        return self.count_model_.predict(X, _orders_margin(enriched)) * self.orders_scale_

    def _boosted_churn(self, X: np.ndarray, enriched: pd.DataFrame) -> np.ndarray | None:
        if self.churn_model_ is None:
            return None
        return expit(
            _logit(self.churn_model_.predict_proba_churn(X, _churn_margin(enriched))) + self.churn_shift_
        )

    def _stack_inputs(
        self, features: pd.DataFrame, enriched: pd.DataFrame
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The stacks' (orders, churn) inputs for `features`, `enriched` with the BTYD columns of the window."""
        view = None
        if self.count_model_ is not None or self.churn_model_ is not None:
            view = (
                enriched
                if self.boost_days_ == self.window_days_
                else self.btyd_.add(features, self.boost_days_)
            )
        return stack_inputs(features, enriched, self.window_days_, *self._boosted(view))

    def _predict_values(self, features: pd.DataFrame) -> pd.DataFrame:
        """The numbers of every output column but the targeting ones, made coherent."""
        enriched = self.btyd_.add(features, self.window_days_)
        orders_l = enriched["base_expected_orders"].to_numpy(float)
        churn_l = enriched["base_p_no_purchase"].to_numpy(float)
        if self.kind_ == "hybrid":
            orders_in, churn_in = self._stack_inputs(features, enriched)
            if self.orders_stack_ is not None:
                orders_l = self.orders_stack_.predict(orders_in)
            if self.calibration_ is not None:
                orders_l = self.calibration_.predict(orders_l)
            if self.churn_stack_ is not None:
                churn_l = self.churn_stack_.predict(churn_in)
            if self.churn_calibration_ is not None:
                orders_l = self.churn_calibration_.predict(orders_l, churn_l)
        order_value = enriched["btyd_order_value"].to_numpy(float)
        stretch, stretch_churn = self.btyd_.stretch(features, self.window_days_, self.horizon_days)
        orders = orders_l * stretch
        p_alive = enriched["base_p_alive"].to_numpy(float)
        churn = np.clip(churn_l, 0, 1) * stretch_churn
        if self.interval_ is None:
            counts = posterior_count_interval(
                p_alive, orders, self.btyd_.alive_shape(features), churn, self.coverage
            )
            low, high, high_from_zero = (bound * order_value for bound in counts)
        else:
            values = self.interval_.predict(orders_l * order_value)
            low, high, high_from_zero = (bound * stretch for bound in values)
        discount = mid_horizon_factor(self.discount_rate, self.horizon_days)
        out = pd.DataFrame(
            {
                "customer_id": features["customer_id"].to_numpy(),
                "predicted_clv": orders * order_value * discount,
                "predicted_clv_low": low * discount,
                "predicted_clv_high": high * discount,
                "high_from_zero": high_from_zero * discount,
                "churn_prob": churn,
                "p_alive": p_alive,
                "expected_orders": orders,
                "expected_aov": order_value,
                "quiet_if_alive": self.btyd_.quiet_if_alive(features, self.horizon_days, p_alive),
                "tenure_days": features["tenure_days"].to_numpy(float),
                "recency_days": features["recency_days"].to_numpy(float),
                "gap_mean_days": features["gap_mean_days"].to_numpy(float),
                "n_orders": features["n_orders"].to_numpy(),
                "monetary_mean": features["monetary_mean"].to_numpy(float),
                "largest_order_value": features["largest_order_value"].to_numpy(float),
                "monetary_total": features["monetary_total"].to_numpy(float),
                "refund_share": features["refund_share"].to_numpy(float),
            },
            index=features.index,
        )
        out = coherent(out, self.coverage)
        if not self.dropout_found():
            out["p_alive"] = np.nan
        return out

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """One row per customer with OUTPUT_COLUMNS (plus `predicted_profit` when a margin is set)."""
        check_is_fitted(self, "targeting_")
        if features.empty:
            raise ValueError("no customers to score")
        features = read_no_purchase(features, self.log_start_)
        values = self._predict_values(features)
        timing = next_order(
            self.btyd_,
            features,
            values["p_alive"],
            values["churn_prob"],
            self.targeting_.lapsed_p_alive,
            self.horizon_days,
            alive_known=self.dropout_found(),
        )
        # A date would be "her next order" of someone who has not placed a first one.
        none = features["n_orders"].to_numpy() == 0
        timing.loc[none, "days_to_next_order"] = np.nan
        timing.loc[none, "next_order_reason"] = NO_PURCHASE_TIMING
        out = pd.concat([values, self.targeting_.apply(values), timing], axis=1)[list(OUTPUT_COLUMNS)]
        if self.margin is not None:
            out["predicted_profit"] = out["predicted_clv"] * self.margin
        return out.reset_index(drop=True)

    def feature_importance(self) -> pd.Series:
        """Total gain per input of the boosted count model (empty when it was not fitted)."""
        check_is_fitted(self, "targeting_")
        if self.count_model_ is None:
            return pd.Series(dtype=float)
        return self.count_model_.feature_importance()


def coherent(out: pd.DataFrame, coverage: float) -> pd.DataFrame:
    """Make each row's numbers agree with each other (module docstring, step 5); returns `out`.

    Needs predicted_clv(_low, _high), high_from_zero (the upper end of the one-sided interval from 0,
    `models.intervals`), churn_prob, p_alive, expected_orders, expected_aov and quiet_if_alive;
    `coverage` is the value interval's (e.g. 0.8).
    """
    for column in (
        "predicted_clv",
        "predicted_clv_low",
        "predicted_clv_high",
        "high_from_zero",
        "expected_orders",
        "expected_aov",
    ):
        out[column] = np.clip(np.nan_to_num(out[column].to_numpy(float)), 0, None)
    churn = np.clip(np.nan_to_num(out["churn_prob"].to_numpy(float), nan=0.5), 0, 1)
    # P(at least one order) <= E[orders].
    churn = np.maximum(churn, 1 - out["expected_orders"].to_numpy(float))
    buys = 1 - churn
    quiet = np.clip(np.nan_to_num(out["quiet_if_alive"].to_numpy(float)), 0, 1 - _EPS)
    p_alive = np.clip(np.nan_to_num(out["p_alive"].to_numpy(float), nan=0.5), 0, 1)
    out["p_alive"] = np.clip(p_alive, buys, np.minimum(buys / (1 - quiet), 1.0))
    out["churn_prob"] = churn
    # The value is 0 with probability churn_prob, and the low end of a central interval is its
    # (1 - coverage) / 2 quantile: 0 once churn_prob reaches that share. From there the interval is
    # [0, the coverage quantile], which holds the coverage; [0, the central high] would hold more.
    from_zero = churn >= (1 - coverage) / 2
    low = np.where(from_zero, 0.0, out["predicted_clv_low"].to_numpy(float))
    high = np.where(from_zero, out["high_from_zero"], out["predicted_clv_high"])
    value = out["predicted_clv"].to_numpy(float)
    # Once buying nothing is at least as likely as the coverage, her coverage quantile is 0 and the interval
    # [0, the value]. The conformal bands pool customers of all churn levels, and their high end did not
    # know it (seen: churn_prob 0.98, predicted_clv 32, high 50).
    high = np.where(churn >= coverage, value, high)
    out["predicted_clv_low"] = np.minimum(low, value)
    out["predicted_clv_high"] = np.maximum(high, value)
    return out


def _best_stack(kind: str, inputs: pd.DataFrame, y: np.ndarray, base: np.ndarray, score, seed: int):
    """The better of the stacks with and without the boosted input, if it beats the base; else None."""
    candidates = [inputs.drop(columns="boosted"), inputs] if "boosted" in inputs else [inputs]
    stacks = [StackedModel(kind, seed=seed).fit(c, y, base, score) for c in candidates]
    best = max(stacks, key=lambda stack: stack.oof_score_)
    return best if best.use_ else None


def _day(window: pd.DataFrame) -> str:
    """A window's cut-off as YYYY-MM-DD (its `as_of` column), or "?" without one."""
    return str(pd.Timestamp(window["as_of"].iloc[0]).date()) if "as_of" in window and len(window) else "?"


def _orders_margin(enriched: pd.DataFrame) -> np.ndarray:
    """The base as an offset on the count model's log scale."""
    return np.log(np.clip(enriched["base_expected_orders"].to_numpy(float), 0, None) + 1e-3)


def _churn_margin(enriched: pd.DataFrame) -> np.ndarray:
    """The base's P(no purchase) as an offset on the churn model's log-odds scale."""
    return _logit(enriched["base_p_no_purchase"].to_numpy(float))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
