"""The registry gate on one window: the champion re-scored where the candidate was backtested.

A candidate's backtest and the champion's logged one were measured on different windows (and data grows
between runs), so comparing the two numbers says little. Every run logs its backtest model: the one it
serves (the full model or the base alone), as fitted at its backtest cut-off (`backtest_model`). The
champion's is re-scored on the candidate's backtest window and customers. That is fair when it was
fitted on or before this window's cut-off, so it has seen nothing of the window, and when it predicts a
window as long; otherwise the gate falls back to the logged numbers and says why.

On the same customers the two are compared with a paired bootstrap (`models.metrics.bootstrap_gains`):
the candidate is promoted unless the champion is better beyond noise (the candidate's gain is below 0
in 95% of the resamples). With equal skill the model that has seen the more recent data should serve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from config import Settings
from models import metrics
from training.backtest import Backtest
from training.registry import ModelNotFound, Registry

BACKTEST_MODEL = "backtest_model"


@dataclass(frozen=True)
class SameWindow:
    """Candidate and champion scored on one backtest window and its customers."""

    metric: str
    candidate: float
    champion: float
    gain_low: float  # 5% quantile of candidate - champion over the resamples
    gain_high: float  # 95% quantile
    champion_metrics: dict[str, float]  # every metric of the champion there, for the table
    window: str

    @property
    def champion_better(self) -> bool:
        return bool(self.gain_high < 0)

    def tags(self) -> dict[str, str]:
        """What the run and the version record of the comparison."""
        return {
            "gate_window": self.window,
            f"gate_candidate_{self.metric}": f"{self.candidate:.6f}",
            f"gate_champion_{self.metric}": f"{self.champion:.6f}",
            "gate_gain_90pct": f"{self.gain_low:+.6f} to {self.gain_high:+.6f}",
        }


def rescore_champion(
    registry: Registry, settings: Settings, champion_run_id: str, result: Backtest
) -> SameWindow | str:
    """The champion's backtest model scored on `result`'s window, or why it cannot be (a phrase).

    The metric is `settings.train.promotion_metric`, a ranking metric of `models.metrics` (higher is
    better), bootstrapped with `settings.train.seed`; the candidate is the row the backtest serves.
    """
    metric, seed = settings.train.promotion_metric, settings.train.seed
    try:
        loaded = registry.load(f"runs:/{champion_run_id}/{BACKTEST_MODEL}")
    except ModelNotFound as exc:
        return f"its backtest model cannot be run by this code ({str(exc)[:160]})"
    fitted_at, days = loaded.card.backtest_cutoff, loaded.card.backtest_horizon_days
    if fitted_at > result.cutoff:
        return (
            f"its backtest model was fitted at {fitted_at}, after this backtest's cut-off {result.cutoff}, "
            "so it has seen part of the window"
        )
    if days != result.horizon_days:
        return f"its backtest model predicts {days} days, this backtest's window is {result.horizon_days}"
    try:
        predicted = loaded.predictor.predict(result.fit.reference)
    except Exception as exc:  # noqa: BLE001 - a champion that cannot score this data is not compared here
        return f"its backtest model cannot score this window ({type(exc).__name__}: {str(exc)[:120]})"
    actual = result.frame["actual_revenue"].to_numpy(float)
    new = result.frame[result.served].to_numpy(float)
    old = predicted["predicted_clv"].to_numpy(float)
    score = getattr(metrics, metric)
    gains = metrics.bootstrap_gains(
        lambda rows: score(actual[rows], new[rows]) - score(actual[rows], old[rows]), len(actual), seed
    )
    return SameWindow(
        metric,
        float(score(actual, new)),
        float(score(actual, old)),
        float(np.nanquantile(gains, 0.05)),
        float(np.nanquantile(gains, 0.95)),
        {
            **metrics.value_metrics(actual, old),
            **metrics.churn_metrics(result.frame["actual_churned"].to_numpy(bool), predicted["churn_prob"]),
        },
        f"{result.cutoff} + {result.horizon_days} days, {len(actual):,} customers",
    )
