"""Targeting rules: segments and next best actions that mean what their names say.

A segment is a statement about the customer's row, checked against thresholds a marketer can read
(`thresholds()`, shown on the page) and change (`[targeting]`). Value is relative to the shop (what
is "high" for a florist is not for a furniture store), so the value lines are quantiles learned by
`fit` on the base being scored. Risk is absolute: "at risk" means the churn probability is at or
above `at_risk_churn` (default 0.5: more likely than not to place no order in the horizon), or the
customer is overdue against her own rhythm (no order for more than `overdue_factor` times her usual
gap between orders) while the model still gives her some churn risk (at least `overdue_churn`,
default 0.25), not "above the base's 60th percentile", which on a lapsed base means 98%. Overdue
alone is not enough: a customer 2.4x past her usual gap whom the model gives a 95% chance of ordering
within the horizon was sent a retention offer with "churn risk 5%" on her row.
Batch scoring and the HTTP service both call `TargetingRules.apply`.

Segments, in order of precedence (the first that matches wins):

| segment | when | action |
|---|---|---|
| no_purchase | no purchase in the log (only refunds or free orders) | review |
| new | one purchase, within `new_customer_days`, P(alive) >= `lapsed_p_alive` | welcome_series (`models.campaigns`) |
| vip | high value, not at risk | upsell |
| high_value_at_risk | valuable, at risk, not lapsed | retention_offer |
| lapsed_valuable | valuable, lapsed: P(alive) below `lapsed_p_alive` and no order within her usual gap | win_back |
| active_low_value | not at risk (and not high value) | cross_sell (nurture without a suggestion) |
| nurture | everyone else: not valuable and at risk (churn or overdue) | nurture |

High value: predicted CLV in the top `1 - high_value_quantile` of the base. Valuable: high value, or
past revenue in the top `1 - valuable_history_quantile`, counted as the model counts it: her net
revenue with her mean purchase read through the spend model's fence (`spend_fence`,
`models.outliers.capped_mean`: her largest purchase counted at the fence),
so one order of 2.5e9 in a shop of 60s is not "top 20% by past spend" while the model values her at
23; the reason says "capped" when the cap applied. Past revenue is at least 0 (refunds beyond her
purchases bring nothing), and a valuable row's reason quotes what made it valuable: the predicted value
when high, the past revenue otherwise. At risk: churn probability at or above
`at_risk_churn`, or overdue with churn probability at or above `overdue_churn`.

`new` is a first-time buyer: one purchase so far. A welcome series onboards a customer after her first
order; one who has come back is judged by her value and risk like anyone else. When any recent first order
was `new`, a shop 13 weeks old (the grocery cohort at 2006-03-31) had 999 of its 1,525 customers `new`,
203 of them in value deciles 9 and 10: a customer with 9 orders in 51 days, in decile 10, got a welcome
series instead of an upsell. Now 684 one-order customers are `new` (deciles 2 to 8), and the 315 who came
back are vip (199), active_low_value (85), high_value_at_risk (8) or nurture (23).

A customer whose first order is recent but whom the model thinks probably gone (P(alive) below
`lapsed_p_alive`: mostly one order weeks ago and no visit since) is not `new`: a welcome
beside "probably no longer a customer" on her next-order column contradicts her own row (361 of
2,376 new customers of the demo shop, down to P(alive) 2%). The later rules place her by her numbers:
a win-back when she is valuable, nurture otherwise.

Lapsed means the model thinks her probably gone and she has been silent for longer than her own usual gap
between orders: a low P(alive) right after an order (the churn model reading her browsing) is a risk to
retain, not a customer to win back (seen on the demo shop: a win-back for a customer whose last order was 3
days ago, with a 38-day rhythm). She is `high_value_at_risk` (her churn probability is at least
1 - P(alive), so above the at-risk line), and the reason says why she is not a win-back. A one-time buyer
has no rhythm, so a low P(alive) is enough, as for the overdue rule.

Where the log shows no drop-out (`fit`'s `p_alive_identified` False, `models.predictor`), the log cannot
tell a customer who left from one who buys rarely, so p_alive is empty (NaN) and no rule reads it, nor its
only bound 1 - churn_prob. Nobody is lapsed (a valuable customer at risk is `high_value_at_risk`: her churn risk is
known, whether she has left is not) and a recent first-time buyer is `new`. Read as an estimate, the bound
made 41 of 200 customers of such a log win-backs, 7 of whom ordered within the 90 days (one 17 days
after her first order), and nobody `new`.

A customer without a purchase (`n_orders` 0: her orders are all refunds or free) is `no_purchase`,
before any other rule: she is never welcomed or targeted as a buyer, and her action `review` (look
at what she returned or got for free) enters no campaign list. Her numbers, and so her value decile,
are the model's for the conservative reading of her history (`models.predictor`): a one-time buyer
from the log's start. Her reason says she bought nothing.

"In the top 20%" is true of every row said to be there, ties included: values are compared at
`SIGNIFICANT_DIGITS` significant digits (69.031 and 69.033 are one value to a marketer, and to the
model's precision), and a group of equal values is above a line only if all of them fit in the
share (`top_line`). Two orders of a log where 39% of the customers placed two or more are not "the
top 20%"; the line is then three orders. Value deciles follow the same rule: decile 10 is the top
10% at most, so equal values share the lowest tenth they span, and a row is high value exactly when
its decile is above the high-value line's (9 and 10 with the default 0.8).

So every `vip` and `active_low_value` row has churn below the at-risk line and is not overdue with
churn at or above `overdue_churn`; every `high_value_at_risk` and `nurture` row has churn at or above
the line, or is overdue with churn at or above `overdue_churn`; and the `reason` quotes the numbers
that put the row where it is.

A cross-sell needs something to sell: once the suggestions are made (by the scorer, from the shop's log,
`models.cross_sell`), `settle_cross_sell` turns a `cross_sell` action without a suggestion into
`nurture` (the segment's other action, "cross-sell / nurture" for low value and active), with the
reason saying why. So every row's action, suggestion and reason agree, and every customer with an action
has its campaign list (`models.campaigns`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from models.outliers import capped_mean, excess_over_fence

SEGMENT_ACTIONS = {
    "no_purchase": "review",
    "new": "welcome_series",
    "vip": "upsell",
    "high_value_at_risk": "retention_offer",
    "lapsed_valuable": "win_back",
    "active_low_value": "cross_sell",
    "nurture": "nurture",
}
SEGMENTS = tuple(SEGMENT_ACTIONS)
# Values equal to this many significant digits are equal for the value lines and deciles.
SIGNIFICANT_DIGITS = 3
# The action of a `cross_sell` customer with nothing to cross-sell (`settle_cross_sell`).
CROSS_SELL_FALLBACK = "nurture"
ACTIONS = tuple(dict.fromkeys(SEGMENT_ACTIONS.values()))
REQUIRED = (
    "predicted_clv",
    "churn_prob",
    "p_alive",
    "tenure_days",
    "recency_days",
    "gap_mean_days",
    "n_orders",
    "monetary_mean",
    "largest_order_value",
    "monetary_total",
    "refund_share",
)


class TargetingRules(BaseEstimator):
    """Segment thresholds (value lines learned by `fit`) and the rules that turn predictions into actions.

    Parameters: `high_value_quantile` and `valuable_history_quantile` (0-1, of the scored base's
    predicted CLV and past revenue); `at_risk_churn` and `lapsed_p_alive` (probabilities);
    `overdue_factor` (times the customer's mean gap between orders; customers with one order are
    never overdue by this rule); `overdue_churn` (the churn probability from which an overdue
    customer counts as at risk); `new_customer_days` (days since the first order); `value_unit`
    ("currency" or "orders", for the reason text).
    Rows need `REQUIRED`: predictions, and the features tenure_days, recency_days, gap_mean_days
    (days), n_orders (purchases), monetary_mean (net value per purchase) and monetary_total (net
    revenue, refunds included), as `features.rfm` defines them.
    """

    def __init__(
        self,
        high_value_quantile: float = 0.8,
        valuable_history_quantile: float = 0.8,
        at_risk_churn: float = 0.5,
        overdue_factor: float = 2.0,
        overdue_churn: float = 0.25,
        lapsed_p_alive: float = 0.3,
        new_customer_days: int = 60,
        value_unit: str = "currency",
    ):
        self.high_value_quantile = high_value_quantile
        self.valuable_history_quantile = valuable_history_quantile
        self.at_risk_churn = at_risk_churn
        self.overdue_factor = overdue_factor
        self.overdue_churn = overdue_churn
        self.lapsed_p_alive = lapsed_p_alive
        self.new_customer_days = new_customer_days
        self.value_unit = value_unit

    def fit(
        self,
        predictions: pd.DataFrame,
        y=None,
        spend_fence: float = np.inf,
        p_alive_identified: bool = True,
    ) -> TargetingRules:
        """Learn the value lines (quantiles) and the value deciles from the scored base.

        `spend_fence`: the most a purchase counts for in past revenue (currency per order; the spend
        model's fence, `features.fence`, inf for none), kept as `spend_fence_`. The lines are learned on the
        rows with no purchase above it (all rows when every row has one). `p_alive_identified` False: the
        rows' p_alive is not known (NaN) and no rule reads it (module docstring), kept as `p_alive_identified_`."""
        _check(predictions)
        for name in (
            "high_value_quantile",
            "valuable_history_quantile",
            "at_risk_churn",
            "overdue_churn",
            "lapsed_p_alive",
        ):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        self.spend_fence_ = float(spend_fence)
        self.p_alive_identified_ = bool(p_alive_identified)
        # Customers with an order above the fence are valued from it as much as from themselves: the lines are
        # drawn without them (seen: an order of 2.5e9 in a shop of 40s, counted at the fence, put its customer's
        # past spend in the top 20% and pushed out a customer who spent 395). Ranks still shift by one customer,
        # so a customer next to a decile edge can cross it.
        ordinary = excess_over_fence(predictions, self.spend_fence_) <= 0
        lines = predictions[ordinary] if ordinary.any() else predictions
        clv = lines["predicted_clv"].to_numpy(float)
        self.value_edges_ = np.array([top_line(clv, share) for share in np.linspace(0.9, 0.1, 9)])
        self.high_value_ = top_line(clv, 1 - self.high_value_quantile)
        self.valuable_history_ = top_line(self.past_spend(lines)[0], 1 - self.valuable_history_quantile)
        return self

    def past_spend(self, predictions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(net revenue so far with her mean purchase read through `spend_fence_`, and at least 0; the mean
        purchase it counted where the fence applied, NaN elsewhere), per row, shape (n,) each:
        max(monetary_total - n_orders x (monetary_mean - capped mean), 0), the capped mean counting her
        largest purchase at the fence (`models.outliers.capped_mean`). The spend model reads a customer's
        mean order through the same fence (`models.order_value`), so the rule that calls her valuable by past
        spend sees the amounts the value was made from. Refunds beyond her purchases count as bringing
        nothing, as in the backtest's actuals and the textbook run rate: a refund is not capped by the
        fence, so a capped order refunded in full left "spent -2,499,999,700"."""
        mean = predictions["monetary_mean"].to_numpy(float)
        counted = capped_mean(predictions, self.spend_fence_)
        total = predictions["monetary_total"].to_numpy(float) - predictions["n_orders"].to_numpy(float) * (
            mean - counted
        )
        return np.clip(total, 0, None), np.where(counted < mean, counted, np.nan)

    def thresholds(self) -> dict[str, float | None]:
        """Every line the rules use, in plain numbers, for reports, the page and the model card;
        `lapsed_p_alive` is None where p_alive is not identified (`fit`), as no rule reads it there."""
        check_is_fitted(self, "high_value_")
        return {
            "high_value_quantile": self.high_value_quantile,
            "high_value_clv": self.high_value_,
            "valuable_history_quantile": self.valuable_history_quantile,
            "valuable_history_revenue": self.valuable_history_,
            "at_risk_churn_prob": self.at_risk_churn,
            "overdue_factor": self.overdue_factor,
            "overdue_churn_prob": self.overdue_churn,
            "lapsed_p_alive": self.lapsed_p_alive if self.p_alive_identified_ else None,
            "new_customer_days": self.new_customer_days,
        }

    def apply(self, predictions: pd.DataFrame) -> pd.DataFrame:
        """Segment, next_best_action, value_decile (1-10, 10 highest) and a one-line reason per row."""
        check_is_fitted(self, "high_value_")
        _check(predictions)
        clv = predictions["predicted_clv"].to_numpy(float)
        churn = predictions["churn_prob"].to_numpy(float)
        p_alive = predictions["p_alive"].to_numpy(float)
        tenure = predictions["tenure_days"].to_numpy(float)
        recency = predictions["recency_days"].to_numpy(float)
        gap = predictions["gap_mean_days"].to_numpy(float)
        history, counted_mean = self.past_spend(predictions)
        orders = predictions["n_orders"].to_numpy(float)
        bought = orders > 0
        value = significant(clv)

        high = value >= self.high_value_
        rich_history = significant(history) >= self.valuable_history_
        valuable = high | rich_history
        risky = churn >= self.at_risk_churn
        with np.errstate(invalid="ignore"):
            late = np.nan_to_num(recency > self.overdue_factor * gap, nan=0.0).astype(bool)
        overdue = late & (churn >= self.overdue_churn)
        unlikely_alive = (p_alive < self.lapsed_p_alive) & self.p_alive_identified_
        with np.errstate(invalid="ignore"):
            within_rhythm = np.nan_to_num(recency <= gap, nan=0.0).astype(bool)
        lapsed = unlikely_alive & ~within_rhythm
        is_new = (tenure <= self.new_customer_days) & (orders == 1) & ~unlikely_alive
        conditions = [
            ~bought,
            is_new,
            high & ~risky & ~overdue,
            valuable & (risky | overdue) & ~lapsed,
            valuable & lapsed,
            ~risky & ~overdue,
        ]
        segment = np.select(conditions, list(SEGMENTS[:6]), default="nurture")
        reason = self._reasons(
            segment,
            clv,
            churn,
            p_alive,
            tenure,
            recency,
            gap,
            history,
            counted_mean,
            high,
            risky,
        )
        return pd.DataFrame(
            {
                "segment": segment,
                "next_best_action": pd.Series(segment).map(SEGMENT_ACTIONS).to_numpy(),
                "value_decile": (np.searchsorted(self.value_edges_, value, side="right") + 1).astype("int64"),
                "reason": reason,
            },
            index=predictions.index,
        )

    def _reasons(
        self,
        segment,
        clv,
        churn,
        p_alive,
        tenure,
        recency,
        gap,
        history,
        counted_mean,
        high,
        risky,
    ) -> np.ndarray:
        """One line per row quoting the numbers and lines that decided its segment."""
        top_value = f"top {1 - self.high_value_quantile:.0%}"
        top_history = f"top {1 - self.valuable_history_quantile:.0%}"

        def churn_vs(i: int, line: float) -> tuple[str, str]:
            return percents(churn[i], line)

        def risk_why(i: int) -> str:
            """Why row i is at risk: its churn risk, or the silence against its own rhythm."""
            if risky[i]:
                risk, line = churn_vs(i, self.at_risk_churn)
                return f"churn risk {risk} is at or above {line}"
            risk, line = churn_vs(i, self.overdue_churn)
            return (
                f"no order for {recency[i]:.0f} days, {times(recency[i] / gap[i], self.overdue_factor)} the usual gap "
                f"of {gap[i]:.0f} days, and churn risk {risk} (at least {line})"
            )

        def past(i: int) -> str:
            if np.isnan(counted_mean[i]):
                return f"{self._past(history[i])} so far"
            cap = self._money(counted_mean[i])
            return f"{self._past(history[i])} so far, capped (her mean order counted at {cap})"

        def worth(i: int) -> str:
            """What made row i valuable: its predicted value, or else its past spend. The past spend of one
            valued by her prediction is no reason: a lapsed one whose refunds exceeded her purchases read
            "spent -130 so far" under lapsed_valuable."""
            if high[i]:
                return f"predicted value {self._money(clv[i])}{fenced(i)} is in the {top_value}"
            return f"{past(i)} ({top_history})"

        def fenced(i: int) -> str:
            """Why a capped row's value may be the fence's more than hers: a 2.5e9 order on the demo shop made
            its customer the most valuable, at a value set by the fence."""
            if np.isnan(counted_mean[i]):
                return ""
            return f" (her largest order counted at the outlier fence of {self._money(self.spend_fence_)})"

        out = []
        for i, name in enumerate(segment):
            value = self._money(clv[i])
            if name == "no_purchase":
                text = (
                    "no purchase in the log (only refunds or free orders): not targeted as a buyer; valued as "
                    f"a one-time buyer whose purchase, if any, was before the log began, {_days_ago(tenure[i])}"
                )
            elif name == "new":
                text = f"first and only order {_days_ago(tenure[i])}"
            elif name == "vip":
                risk, line = churn_vs(i, self.at_risk_churn)
                text = f"predicted value {value}{fenced(i)} is in the {top_value}, churn risk {risk} is below {line}"
            elif name == "high_value_at_risk":
                text = f"{worth(i)}; {risk_why(i)}"
                if p_alive[i] < self.lapsed_p_alive and self.p_alive_identified_:
                    alive, line = percents(p_alive[i], self.lapsed_p_alive)
                    text += (
                        f"; P(alive) {alive} is below the {line} line, but her last order, "
                        f"{_days_ago(recency[i])}, is within her usual gap of {gap[i]:.0f} days: retain, not win back"
                    )
            elif name == "lapsed_valuable":
                alive, line = percents(p_alive[i], self.lapsed_p_alive)
                text = f"{worth(i)}, but P(alive) is {in_words(alive)}, below the {line} line"
            elif name == "active_low_value":
                risk, line = churn_vs(i, self.at_risk_churn)
                below = self._money_below(clv[i], self.high_value_)
                text = f"churn risk {risk} is below {line}; predicted value {below} is below the {top_value}"
            else:
                below = self._money_below(clv[i], self.high_value_)
                text = f"predicted value {below} is below the {top_value} and {risk_why(i)}"
            out.append(text)
        return np.array(out, dtype=object)

    def _money(self, value: float, decimals: int | None = None) -> str:
        """`value` as the reasons show it: orders with 1 decimal, money in whole units from 10 on (else 2
        decimals), or with `decimals`."""
        if decimals is None:
            # Whole units hide small values: a predicted value of 0.31 read "predicted value 0". The line
            # is taken on the value as shown with 2 decimals, so 9.996 reads "10", not "10.00".
            decimals = 1 if self.value_unit == "orders" else 0 if abs(round(value, 2)) >= 10 else 2
        return f"{value:,.{decimals}f}" + (" orders" if self.value_unit == "orders" else "")

    def _money_below(self, value: float, line: float) -> str:
        """`value`, which is below `line`, with as many more decimals as keep it from reading as the line (up
        to 6): values are compared at `SIGNIFICANT_DIGITS` digits, so 4.255 orders against a line of 4.27
        read "4.3 orders is below the top 20%" beside a 4.266 that read "4.3 orders is in" it."""
        shown, line_shown = self._money(value), self._money(line)
        decimals = len(shown.split(" ")[0].partition(".")[2])
        while shown == line_shown and decimals < 6:
            decimals += 1
            shown, line_shown = self._money(value, decimals), self._money(line, decimals)
        return shown

    def _past(self, history: float) -> str:
        """What the customer brought so far: revenue, or orders placed for a log without amounts."""
        return f"placed {history:,.0f} orders" if self.value_unit == "orders" else f"spent {history:,.0f}"


def _days_ago(days: float) -> str:
    """ "today", "1 day ago", "12 days ago" ("first order 1 days ago" was a welcome reason)."""
    n = round(days)
    return "today" if n == 0 else "1 day ago" if n == 1 else f"{n:,} days ago"


def significant(values: np.ndarray, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """`values` rounded to `digits` significant digits (0 stays 0; NaN stays NaN)."""
    values = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.floor(np.log10(np.abs(values)))
    # Clipped so that subnormal values round to 0 instead of overflowing the scale.
    scale = 10.0 ** np.where(np.isfinite(magnitude), digits - 1 - np.clip(magnitude, -300, 300), 0)
    return np.round(values * scale) / scale


def top_line(values: np.ndarray, share: float) -> float:
    """The lowest value (at `SIGNIFICANT_DIGITS` digits) whose row is in the top `share` of `values`:
    at most `share` of the rows have a value at or above it. A row is in the top `share` exactly when
    its rounded value is at or above the line, so a group of equal values straddling the share stays
    below it whole. When even the highest value is shared by more than `share` of the rows, nobody
    is: the line is then the next value at those digits above it (63.7 above 63.6: a later row that high
    is in the top), so the line shown reads as it works; a line just above 63.6 was shown as "at least
    63.6" beside 200 rows of 63.63 that were not. Above a highest value of 0, the line is just above 0.
    Shape: `values` (n,) in any unit, `share` in (0, 1]; a base without finite values gives 0."""
    rounded = significant(values[np.isfinite(values)])
    if not len(rounded):
        return 0.0
    # Rows at or above each distinct value, as a share of all rows: np.unique sorts, and the first
    # position of a value in the sorted rows is how many rows lie below it.
    distinct, below = np.unique(rounded, return_counts=True)
    below = np.cumsum(below) - below
    at_or_above = (len(rounded) - below) / len(rounded)
    inside = distinct[at_or_above <= share + 1e-12]
    if len(inside):
        return float(inside[0])
    highest = distinct[-1]
    if not highest > 0:
        return float(np.nextafter(highest, np.inf))
    step = 10.0 ** (np.floor(np.log10(highest)) - (SIGNIFICANT_DIGITS - 1))
    return float(significant(highest + step))


def settle_cross_sell(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` (next_best_action, cross_sell, cross_sell_reason, and reason if it has one; any other columns
    kept) with every `cross_sell` action that has no suggestion (cross_sell empty or missing) turned into
    `CROSS_SELL_FALLBACK`, and its reason extended with why there is nothing to cross-sell (from
    cross_sell_reason). A new frame, or `rows` itself when no row changes (so a score table that needs
    nothing costs no copy); settling settled rows changes nothing."""
    empty = (rows["next_best_action"] == "cross_sell").to_numpy(bool, copy=True)
    # Only the cross_sell rows' suggestions are read: a million-row score table is settled at every load.
    empty[empty] = (
        pd.Series(rows["cross_sell"].to_numpy(object)[empty]).fillna("").astype(str).eq("").to_numpy()
    )
    if not empty.any():
        return rows
    out = rows.copy()
    why = rows.loc[empty, "cross_sell_reason"].fillna("").astype(str).str.removeprefix("no suggestion: ")
    fallback = (
        "nothing to cross-sell ("
        + why.where(why != "", "no suggestion was made")
        + f"): {CROSS_SELL_FALLBACK} instead"
    )
    before = (
        rows.loc[empty, "reason"].fillna("").astype(str)
        if "reason" in rows
        else pd.Series("", index=why.index)
    )
    out.loc[empty, "next_best_action"] = CROSS_SELL_FALLBACK
    out.loc[empty, "reason"] = (before + "; ").where(before != "", "") + fallback
    return out


def _check(predictions: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in predictions.columns]
    if missing:
        raise ValueError(f"targeting needs columns {', '.join(missing)}")
    if predictions.empty:
        raise ValueError("targeting needs at least one customer")


def percents(value: float, line: float) -> tuple[str, str]:
    """`value` and the `line` it is compared with, as percentages with the fewest decimals (up to 3)
    that show the line as it is and keep the two apart, so a row never reads "50% is below 50%"
    (a churn risk of 49.8% against a line of 50% reads "49.8% is below 50.0%"). A probability strictly
    between 0 and 1 never reads as a certainty: 0.0001 against a line of 20% reads "<1%", not "0%"."""
    digits = next((d for d in range(4) if abs(round(line * 100, d) - line * 100) < 1e-9), 3)
    while digits < 3 and value != line and f"{value:.{digits}%}" == f"{line:.{digits}%}":
        digits += 1
    return percent(value, digits), f"{line:.{digits}%}"


def times(value: float, line: float) -> str:
    """`value` as a multiple ("2.4x") with the fewest decimals (1 to 3) that keep it apart from the `line` it
    was compared with: 2.02 times the usual gap, above a line of 2, reads "2.02x", not "2.0x"."""
    digits = 1
    while digits < 3 and round(value, digits) == round(line, digits):
        digits += 1
    return f"{value:.{digits}f}x"


def in_words(share: str) -> str:
    """A percentage from `percent` as a sentence reads it: "<1%" as "under 1%", ">99%" as "over 99%"."""
    if share.startswith("<"):
        return "under " + share[1:]
    if share.startswith(">"):
        return "over " + share[1:]
    return share


def percent(value: float, digits: int = 0) -> str:
    """The probability `value` as a percentage with `digits` decimals, where a value strictly between 0 and 1
    never reads as a certainty: 0.9962 reads ">99%", 0.0001 "<1%"."""
    step = 10.0**-digits
    if value > 0 and round(value * 100, digits) == 0:
        return f"<{step:g}%"
    if value < 1 and round(value * 100, digits) == 100:
        return f">{100 - step:g}%"
    return f"{value:.{digits}%}"
