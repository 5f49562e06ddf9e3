"""Lifecycle campaign lists as files: one ranked CSV per campaign (`clv campaigns`, `POST /campaigns`).

The lists come from `models.campaigns` (rules in `[campaigns]`), on the score table and the
customers' lifecycle moments at the scores' as_of (`features.lifecycle`). Each file is written to a
temporary path and renamed (`features.files.atomic_path`), with spreadsheet formulas neutralised as
in every export (`serving.export.to_csv`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from config import Settings
from features.engine import to_pandas
from features.files import atomic_path
from features.lifecycle import lifecycle_table
from models.campaigns import CAMPAIGN_COLUMNS, build_campaigns
from serving.export import to_csv


@dataclass
class CampaignLists:
    as_of: dt.date
    lists: dict[str, pd.DataFrame]  # campaign -> ranked rows with CAMPAIGN_COLUMNS
    notes: list[str]  # campaigns left out, and why


def scores_as_of(scores: pd.DataFrame) -> dt.date:
    """The cut-off of a score table (its latest `as_of`)."""
    return max(pd.Timestamp(v).date() for v in scores["as_of"].unique())


def campaign_lists(scores: pd.DataFrame, tables: dict | None, settings: Settings) -> CampaignLists:
    """The lists for a score table; `tables`: the shop's Ibis tables (transactions, events, customers),
    None when no transactions are available (the campaigns that need dates are then left out)."""
    as_of = scores_as_of(scores)
    moments = None
    if tables is not None:
        moments = to_pandas(
            lifecycle_table(tables["transactions"], as_of, tables["events"], tables["customers"])
        )
    lists, notes = build_campaigns(
        scores, moments, as_of, settings.campaigns.model_dump(), settings.train.margin
    )
    return CampaignLists(as_of, lists, notes)


def service_lists(scores: pd.DataFrame, settings: Settings) -> CampaignLists:
    """The lists for the service: the shop's data from `[data]` when it is configured, else the score
    table alone (`POST /campaigns`). Raises ValueError when the configured data breaks the contract."""
    from features.contract import ContractError, load_shop

    data = settings.data
    tables = None
    if data.configured:
        try:
            shop = load_shop(
                data.transactions, data.events, data.customers, data.mapping, data.timestamp_format
            )
        except ContractError as exc:
            raise ValueError(f"the configured data ([data] in clv.toml) cannot be read: {exc}") from None
        tables = shop.tables()
    result = campaign_lists(scores, tables, settings)
    if tables is None:
        result.notes.append(
            "no [data] transactions are configured for the service, so lists from dates are left out"
        )
    return result


def summary(result: CampaignLists) -> dict:
    """Per list: rows, total expected value and predicted CLV; the notes; as_of (JSON-ready)."""
    return {
        "as_of": str(result.as_of),
        "campaigns": {
            name: {
                "rows": len(frame),
                "expected_value": round(float(frame["expected_value"].sum()), 6),
                "predicted_clv": round(float(frame["predicted_clv"].sum()), 6),
            }
            for name, frame in result.lists.items()
        },
        "notes": list(result.notes),
    }


def as_csv(frame: pd.DataFrame) -> str:
    """A list as CSV text: the same bytes from `clv campaigns` and `POST /campaigns`."""
    return to_csv(frame[list(CAMPAIGN_COLUMNS)])


def write_campaigns(result: CampaignLists, out_dir: Path) -> dict[str, Path]:
    """One `<campaign>.csv` per list in `out_dir` (created when missing), each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, frame in result.lists.items():
        path = out_dir / f"{name}.csv"
        with atomic_path(path) as tmp:
            tmp.write_text(as_csv(frame))
        written[name] = path
    return written
