"""`clv score`: the score table (one row per customer, DESIGN.md columns), written atomically."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from clv.config import Settings
from features.contract import Shop
from features.files import write_frame
from training import tracking
from training.backtest import ShopData
from training.loading import check_inputs, load_model, score_features

Progress = Callable[[str], None]


def score(
    shop: Shop,
    settings: Settings,
    out_path: Path,
    as_of: dt.date | None = None,
    model_uri: str | None = None,
    progress: Progress = lambda _: None,
    warn: Progress = lambda _: None,
) -> pd.DataFrame:
    """Score every customer with an order by `as_of` and write the table to `out_path`.

    `warn(message)` hears about what the user should know but does not stop scoring: a model trained on
    other customers than these (another shop, or another part of one).
    """
    progress("loading model")
    loaded = load_model(settings, model_uri)
    data = ShopData.from_shop(shop)
    check_inputs(
        loaded,
        {"events": data.events is not None, "customers": data.customers is not None},
        data.value_unit,
    )
    trained_on = loaded.model.metadata.get("customer_sketch")
    if trained_on:
        shared = tracking.shared_customers(tracking.customer_sketch(data.transactions), trained_on)
        if shared < tracking.SAME_CUSTOMERS:
            warn(
                f"model {loaded.uri} (v{loaded.version}) was trained on other customers than these (about "
                f"{shared:.0%} in common): its numbers may not fit this shop. Fix: `clv train` on these "
                "transactions (and `clv promote` the new version if the gate does not)."
            )
    as_of = as_of or data.last_date
    progress(f"features at {as_of}")
    features = data.features(as_of)
    if features.empty:
        raise ValueError(f"no customer has an order by {as_of}; nothing to score. Fix: use a later --as-of.")
    progress(f"scoring {len(features):,} customers")
    table = score_features(loaded, features)
    progress(f"writing {out_path}")
    write_frame(table, out_path)
    return table
