"""The latest score table, held in memory for lookups by customer id.

Rows are converted to JSON-ready dicts once at load time, so answering `POST /predict` is a dict
lookup per id with no pandas on the request path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.files import read_frame
from features.schema import SCORE_COLUMNS


class ScoresUnavailable(RuntimeError):
    """The score table is missing or unreadable; the message says how to produce it."""


@dataclass(frozen=True)
class ScoreTable:
    frame: pd.DataFrame
    records: dict[str, dict]
    path: Path
    mtime: float

    @classmethod
    def load(cls, path: Path) -> ScoreTable:
        path = Path(path)
        if not path.exists():
            raise ScoresUnavailable(
                f"no score table at {path}. Fix: run `make train` (or `clv score --out {path}`), "
                "or point [serve] scores / CLV_SERVE__SCORES at an existing table."
            )
        try:
            frame = read_frame(path)
        except Exception as exc:  # noqa: BLE001 - any reader error means the same thing to the operator
            raise ScoresUnavailable(f"cannot read the score table {path}: {exc}") from None
        missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
        if missing:
            raise ScoresUnavailable(
                f"{path} is not a score table: it lacks {', '.join(missing)}. Fix: write it with `clv score`."
            )
        frame["customer_id"] = frame["customer_id"].astype(str)
        frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date.astype(str)
        frame["model_version"] = frame["model_version"].astype(str)
        return cls(frame, _records(frame), path, path.stat().st_mtime)

    def lookup(self, customer_ids: list[str]) -> tuple[list[dict], list[str]]:
        """(rows of the known ids in request order, unknown ids)."""
        found, unknown = [], []
        for customer_id in customer_ids:
            row = self.records.get(customer_id)
            if row is None:
                unknown.append(customer_id)
            else:
                found.append(row)
        return found, unknown

    def __len__(self) -> int:
        return len(self.records)


def _records(frame: pd.DataFrame) -> dict[str, dict]:
    rows = frame.to_dict(orient="records")
    return {row["customer_id"]: {k: _json_value(v) for k, v in row.items()} for row in rows}


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value
