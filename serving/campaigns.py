"""Lifecycle campaign lists as files: one ranked CSV per campaign (`clv campaigns`, `POST /campaigns`).

The lists come from `models.campaigns` (rules in `[campaigns]`), on the score table and the
customers' lifecycle moments at the scores' as_of (`features.lifecycle`). The files are written to a
temporary directory and moved in when all are complete (`features.files.atomic_files`), with
spreadsheet formulas neutralised as in every export (`serving.export.to_csv`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from config import CAMPAIGN_NAMES, Settings
from features.contract import Shop
from features.engine import to_pandas
from features.files import atomic_files
from features.lifecycle import lifecycle_table
from models.campaigns import CAMPAIGN_COLUMNS, build_campaigns
from serving.export import to_csv
from serving.shop_match import check_same_shop


@dataclass
class CampaignLists:
    as_of: dt.date
    lists: dict[str, pd.DataFrame]  # campaign -> ranked rows with CAMPAIGN_COLUMNS
    # A score table that differs from the log (`serving.shop_match`); campaigns left out, and why.
    notes: list[str]


def scores_as_of(scores: pd.DataFrame) -> dt.date:
    """The cut-off of a score table (its latest `as_of`)."""
    return max(pd.Timestamp(v).date() for v in scores["as_of"].unique())


def campaign_lists(scores: pd.DataFrame, shop: Shop | None, settings: Settings) -> CampaignLists:
    """The lists for a score table; `shop`: the shop's log (None when no transactions are available: the
    campaigns that need dates are then left out). ValueError when the scores are not the shop's
    (`serving.shop_match`)."""
    as_of = scores_as_of(scores)
    moments, warnings = None, []
    if shop is not None:
        warnings = check_same_shop(scores, as_of, shop)
        tables = shop.tables()
        moments = to_pandas(
            lifecycle_table(tables["transactions"], as_of, tables["events"], tables["customers"])
        )
    lists, notes = build_campaigns(
        scores, moments, as_of, settings.campaigns.model_dump(), settings.train.margin
    )
    return CampaignLists(as_of, lists, warnings + notes)


def service_lists(scores: pd.DataFrame, settings: Settings) -> CampaignLists:
    """The lists for the service: the shop's data from `[data]` when it is configured, else the score
    table alone (`POST /campaigns`). Raises ValueError when the configured data breaks the contract or
    is not the scores' shop."""
    from features.contract import ContractError, load_shop

    data = settings.data
    shop = None
    if data.configured:
        try:
            shop = load_shop(
                data.transactions, data.events, data.customers, data.mapping, data.timestamp_format
            )
        except ContractError as exc:
            raise ValueError(f"the configured data ([data] in clv.toml) cannot be read: {exc}") from None
    result = campaign_lists(scores, shop, settings)
    if shop is None:
        result.notes.append(
            "no [data] transactions are configured for the service, so lists from dates are left out"
        )
    return result


def summary(result: CampaignLists) -> dict:
    """Per list: rows, total expected value and predicted CLV; the notes; as_of; the values' unit
    (`value_unit` of the lists, None when the score table states none) (JSON-ready)."""
    units = {u for frame in result.lists.values() for u in frame["value_unit"].dropna()}
    return {
        "as_of": str(result.as_of),
        "value_unit": units.pop() if len(units) == 1 else None,
        "campaigns": {
            name: {
                "rows": len(frame),
                "expected_value": float(frame["expected_value"].sum()),
                "predicted_clv": float(frame["predicted_clv"].sum()),
            }
            for name, frame in result.lists.items()
        },
        "notes": list(result.notes),
    }


def as_csv(frame: pd.DataFrame) -> str:
    """A list as CSV text: the same bytes from `clv campaigns` and `POST /campaigns`."""
    return to_csv(frame[list(CAMPAIGN_COLUMNS)])


def write_campaigns(result: CampaignLists, out_dir: Path) -> tuple[dict[str, Path], list[Path]]:
    """One `<campaign>.csv` per list in `out_dir`, all at once (`atomic_files`: a new directory appears
    with every list, an existing one gets them only when all are complete).

    Returns campaign -> path, and the lists an earlier run left in `out_dir` that this run did not make
    (a list left out now, e.g. birthdays without a customer table), which are removed once the new ones
    are in: a marketer must not send yesterday's list beside today's. Other files are left alone."""
    with atomic_files(out_dir) as tmp:
        for name, frame in result.lists.items():
            (tmp / f"{name}.csv").write_text(as_csv(frame))
    stale = [
        path
        for name in CAMPAIGN_NAMES
        if name not in result.lists and (path := out_dir / f"{name}.csv").is_file()
    ]
    for path in stale:
        path.unlink()
    return {name: out_dir / f"{name}.csv" for name in result.lists}, stale
