"""The marketer page at /ui: segments, the CLV distribution, the textbook view with a what-if (and the
model's, customer by customer), filtered top lists with a CSV download, the Campaigns view and the
Acquisition view (CLV:CAC by channel, cohort curves).

The HTML, script and stylesheet are files of this package (serving/static, served at /ui/static by
`serving.api.create_app`), never a CDN, so the page works without internet. The page itself holds no
customer data: it asks for a key and then calls `GET /ui/api/summary`, `POST /export`, `POST /campaigns`
and `GET /economics` with it (all need the marketer role), so the lists it shows and the files it
downloads are exactly what the API answers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, RedirectResponse

from models.targeting import ACTIONS, SEGMENTS
from serving.auth import EXPORT
from serving.routes import State, needs

STATIC = Path(__file__).with_name("static")
N_BINS = 30

router = APIRouter()


@router.get("/", include_in_schema=False)
def root():
    return RedirectResponse("/ui")


@router.get("/ui", include_in_schema=False)
def page():
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


@router.get("/ui/api/summary", dependencies=[Depends(needs(EXPORT))])
def summary(state: State):
    current = state.current
    if current is None:
        return {"loading": True}
    info = current.info()
    scores = current.scores.frame
    return {
        "model": info["model"],
        "quality": quality_in_words(info["model"]),
        "segments": segment_table(scores),
        "histogram": clv_histogram(scores["predicted_clv"].to_numpy(float)),
        "totals": {
            "customers": int(len(scores)),
            "predicted_value": float(scores["predicted_clv"].sum()),
            "mean_churn": float(scores["churn_prob"].mean()),
        },
        "textbook": info["model"].get("textbook_base"),
        "choices": {"segments": list(SEGMENTS), "actions": list(ACTIONS)},
    }


def segment_table(scores: pd.DataFrame) -> list[dict]:
    """One row per segment and the action its rows carry, in `SEGMENTS` then `ACTIONS` order. The action is
    the rows', not the segment's usual one: an active_low_value customer without a suggestion is nurtured
    (`models.targeting.settle_cross_sell`), and the page said "cross_sell" for 7 rows that all said nurture."""
    grouped = scores.groupby(["segment", "next_best_action"]).agg(
        customers=("customer_id", "size"),
        total_value=("predicted_clv", "sum"),
        mean_churn=("churn_prob", "mean"),
    )
    order = {
        (segment, action): (i, j) for i, segment in enumerate(SEGMENTS) for j, action in enumerate(ACTIONS)
    }
    rows = []
    for (segment, action), row in sorted(grouped.iterrows(), key=lambda item: order.get(item[0], (99, 99))):
        rows.append(
            {
                "segment": segment,
                "action": action,
                "customers": int(row["customers"]),
                "total_value": float(row["total_value"]),
                "mean_churn": float(row["mean_churn"]),
            }
        )
    return rows


def clv_histogram(values: np.ndarray) -> dict:
    """Counts in equal bins up to the 99th percentile, plus one bin for the long tail above it."""
    if not len(values):
        return {"edges": [], "counts": [], "overflow": 0}
    top = float(np.quantile(values, 0.99)) or float(values.max()) or 1.0
    counts, edges = np.histogram(np.clip(values, 0, None), bins=N_BINS, range=(0.0, top))
    return {
        "edges": edges.round(2).tolist(),
        "counts": counts.tolist(),
        "overflow": int((values > top).sum()),
    }


def quality_in_words(model: dict) -> str:
    backtest = model.get("backtest") or {}
    metrics, baselines = backtest.get("metrics") or {}, backtest.get("baselines") or {}
    if not metrics:
        return "This model has no backtest recorded."
    btyd = baselines.get("bgnbd_gg", {})
    parts = [
        f"Tested on what customers really spent in the {backtest.get('horizon_days')} days after "
        f"{backtest.get('cutoff')}, using only data up to that day."
    ]
    if "top_decile_capture" in metrics:
        parts.append(
            f"The 10% of customers it ranked highest brought {metrics['top_decile_capture']:.0%} of the revenue"
            + (f" (the standard BG/NBD model's top 10%: {btyd['top_decile_capture']:.0%})." if btyd else ".")
        )
    if "aggregate_error" in metrics:
        direction = "over" if metrics["aggregate_error"] > 0 else "under"
        parts.append(f"Its total was {abs(metrics['aggregate_error']):.0%} {direction} the real total.")
    if "churn_auc" in metrics:
        parts.append(
            f"Told a customer who left from one who stayed correctly {metrics['churn_auc']:.0%} of the time"
            + (f" (BG/NBD: {btyd['churn_auc']:.0%})." if "churn_auc" in btyd else ".")
        )
    if "interval_coverage" in metrics:
        parts.append(
            f"{metrics['interval_coverage']:.0%} of real values fell inside the predicted low-high range."
        )
    return " ".join(parts)
