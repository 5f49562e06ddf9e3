"""`clv score`: the score table (one row per customer, the README's score columns), written atomically."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from config import Settings
from features.contract import Shop
from features.files import write_frame
from features.spark import SparkShop
from training import tracking
from training.cross_sell import fit_cross_sell, suggestions
from training.loading import LoadedModel, check_inputs, pass_table, score_features
from training.registry import Registry
from training.shop_data import ShopData

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ScoreSummary:
    """What `clv score` reports: rows, model version, cut-off, horizon, total value, unit, segment sizes, and
    the model's notes (`ModelCard.notes`: what `clv train` said a reader of its numbers should know)."""

    rows: int
    model_version: str
    as_of: dt.date
    horizon_days: int
    total_value: float
    value_unit: str
    segments: dict[str, int]
    notes: tuple[str, ...] = ()
    deciles: dict[int, int] = field(default_factory=dict)  # value_decile -> customers

    def __post_init__(self):
        # Largest first, ties by name: both engines print the same line for the same table.
        ordered = dict(sorted(self.segments.items(), key=lambda kv: (-kv[1], kv[0])))
        object.__setattr__(self, "segments", ordered)

    @classmethod
    def of(cls, table: pd.DataFrame, notes: Sequence[str] = ()) -> ScoreSummary:
        """The summary of a score table in memory (the default engine's), with the notes of the model that
        wrote it."""
        first = table.iloc[0]
        return cls(
            len(table),
            str(first["model_version"]),
            first["as_of"],
            int(first["horizon_days"]),
            float(table["predicted_clv"].sum()),
            str(first["value_unit"]),
            table["segment"].value_counts().to_dict(),
            tuple(notes),
            {int(k): int(v) for k, v in table["value_decile"].value_counts().items()},
        )

    def empty_deciles_note(self) -> str | None:
        """Why some value deciles hold nobody, when some do (None otherwise): the lines were set at training so
        that a decile holds at most a tenth of the customers there, and equal values share the lowest tenth
        they span (`models.targeting.top_line`). Seen on the apparel cohort: 191 of 600 customers at one
        value, decile 1 with 246 customers and deciles 2 to 4 empty, which read as a broken table."""
        empty = [d for d in range(1, 11) if not self.deciles.get(d)]
        if not self.deciles or not empty:
            return None
        largest = max(self.deciles, key=lambda d: (self.deciles[d], -d))
        return (
            f"value decile{'s' * (len(empty) > 1)} {', '.join(map(str, empty))} hold{'s' * (len(empty) == 1)} "
            "nobody: the decile lines were set at training so that a decile holds at most a tenth of the customers "
            "there, and customers with equal predicted values share the lowest tenth they span, so a large group of "
            f"equal values leaves the deciles above its own empty (here decile {largest} holds "
            f"{self.deciles[largest]:,} of {self.rows:,})"
        )


def score(
    shop: Shop,
    settings: Settings,
    out_path: Path,
    as_of: dt.date | None = None,
    model_uri: str | None = None,
    progress: Progress = lambda _: None,
    warn: Progress = lambda _: None,
) -> tuple[pd.DataFrame, LoadedModel]:
    """Score every customer with an order by `as_of` and write the table to `out_path`; returns the table and
    the model that wrote it (its card's notes are what `clv score` repeats, `ScoreSummary.of`).

    `warn(message)` hears about what the user should know but does not stop scoring: a model trained on
    other customers than these (another shop, or another part of one), an `as_of` long after the log ends.
    """
    loaded, data, as_of = prepare(shop, settings, model_uri, as_of, progress, warn)
    progress(f"features at {as_of}")
    features = data.features(as_of)
    if features.empty:
        raise ValueError(f"no customer has an order by {as_of}; nothing to score. Fix: use a later --as-of.")
    progress("cross-sell suggestions")
    suggested = suggestions(
        fit_cross_sell(data, as_of, loaded.card.horizon_days, settings, loaded.card.cross_sell_served),
        features["customer_id"],
    )
    progress(f"scoring {len(features):,} customers")
    table = score_features(loaded, features, suggested)
    progress(f"writing {out_path}")
    write_frame(table, out_path)
    return table, loaded


def prepare(
    shop: Shop | SparkShop,
    settings: Settings,
    model_uri: str | None,
    as_of: dt.date | None,
    progress: Progress,
    warn: Progress,
) -> tuple[LoadedModel, ShopData, dt.date]:
    """The model, the shop's tables and the cut-off (`as_of`, default the last transaction date), once the
    model is known to fit these customers (`check_customers`) and the input (`check_inputs`); warns when
    the cut-off lies more than the model's horizon after the log. ValueError for a cut-off before the
    log's first transaction (`ShopData.check_cutoff`) and for a default champion trained on another shop."""
    progress("loading model")
    registry = Registry(settings.mlflow)
    loaded = registry.load(model_uri)
    data = ShopData.from_shop(shop)
    as_of = as_of or data.last_date
    late = data.check_cutoff(as_of, loaded.card.horizon_days)
    # Customers first: the champion of another shop is the wrong model whatever its inputs, and its
    # refusal names the right one ("pass --events" to a shop without events was the wrong fix).
    theirs_to_train = check_customers(loaded, data, as_of, warn, None if model_uri else registry)
    check_inputs(
        loaded,
        {"events": data.events is not None, "customers": data.customers is not None},
        data.value_unit,
        data.columns,
        data.event_types() if data.events is not None else None,
        **({"fix": _train_theirs} if theirs_to_train else {}),
    )
    if late:
        warn(late)
    return loaded, data, as_of


def _train_theirs(table: str) -> str:
    # A model of other customers asks for a table this shop may never have had: "pass --events" alone sent
    # a shop without events after the other shop's table.
    return (
        "`clv train` on these transactions (the model was trained on other customers, warned above), or "
        f"{pass_table(table)} if this shop has that table"
    )


def check_customers(
    loaded: LoadedModel, data: ShopData, as_of: dt.date, warn: Progress, champion_of: Registry | None
) -> bool:
    """Whether the model fits these customers, by its customer sketch against these transactions'; True
    when it warned that the model was trained on other customers and these can be trained on.

    Sharing under `tracking.SAME_CUSTOMERS` with them (part of the shop, a shop grown since, another
    shop), the model is warned about. The champion taken by default (`champion_of` given) is refused with
    a ValueError naming the version trained on these customers, if the registry has one, when these
    transactions can be trained on (else a model of a similar shop is the one to use,
    `ShopData.untrainable`) and either the two are other shops (`tracking.other_shop`) or neither is known
    to hold the other (`tracking.one_holds_the_other`) while such a version exists: every row it would
    write is another shop's model's number (seen: the lists of a shop scored with the champion of another
    shop's log, vip 17 against its own model's 10, with only a warning; and a shop of 1,000 customers
    scored with the 20,000-customer demo shop's champion, its own model one `clv promote` away).
    """
    trained_on = loaded.card.customer_sketch
    if not trained_on:
        return False
    sketch = tracking.customer_sketch(data.transactions)
    shared = tracking.shared_customers(sketch, trained_on)
    if shared >= tracking.SAME_CUSTOMERS:
        return False
    model = f"model {loaded.uri} (v{loaded.version})"
    mismatch = f"{model} was trained on other customers than these (about {shared:.0%} in common)"
    may_not_fit = f"{mismatch}: its numbers may not fit this shop."
    if why := data.untrainable(as_of):
        warn(
            f"{may_not_fit} These transactions cannot be trained on yet ({why}), "
            "so a model of a similar shop is the one to use: check that the shop it was trained on sells like "
            "this one, and `clv train` on these transactions once customers have come back."
        )
        return False
    by_default = champion_of is not None
    two_shops = by_default and tracking.other_shop(sketch, trained_on)
    # Logs of very different sizes leave too few digests to tell "part of its shop" from "another shop"
    # (`tracking.contained`); then a version trained on these very customers settles which model is theirs.
    own = (
        champion_of.trained_on(sketch)
        if by_default and not tracking.one_holds_the_other(sketch, trained_on)
        else None
    )
    if not (two_shops or own):
        warn(f"{may_not_fit} Fix: `clv train` on these transactions.")
        return True
    fix = (
        f"`clv promote {own}` (v{own} was trained on them), or score with it: --model "
        f"models:/{champion_of.name}/{own}"
        if own
        else "`clv train` on these transactions (and `clv promote` the new version if the gate does not)"
    )
    said = (
        "so every row would be another shop's numbers"
        if two_shops
        else "and the two logs differ too much in size to tell whether these customers are part of its "
        "shop, while the registry holds a version trained on them"
    )
    raise ValueError(
        f"{mismatch}, {said}. Fix: {fix}; or pass --model to score with another model on purpose."
    )
