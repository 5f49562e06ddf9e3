"""The latest score table, held in memory for lookups by customer id.

Columns are converted to Python lists once at load time (about a second for a million customers,
where building a dict per row would take ten times longer), and an id -> position dict answers
`POST /predict` with a few list lookups per id and no pandas on the request path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.files import read_frame
from features.schema import SCORE_COLUMNS


class ScoresUnavailable(RuntimeError):
    """The score table is missing or unreadable; the message says how to produce it."""


@dataclass(frozen=True)
class ScoreTable:
    frame: pd.DataFrame
    positions: dict[str, int]
    columns: dict[str, list]
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
        # Few distinct cut-offs: convert each once instead of a million times.
        frame["as_of"] = frame["as_of"].map({v: str(pd.Timestamp(v).date()) for v in frame["as_of"].unique()})
        frame["model_version"] = frame["model_version"].astype(str)
        columns = {name: _json_list(frame[name]) for name in frame.columns}
        positions = dict(zip(columns["customer_id"], range(len(frame)), strict=True))
        return cls(frame, positions, columns, path, path.stat().st_mtime)

    def lookup(self, customer_ids: list[str]) -> tuple[list[dict], list[str]]:
        """(rows of the known ids in request order, unknown ids)."""
        found, unknown = [], []
        columns = self.columns.items()
        for customer_id in customer_ids:
            position = self.positions.get(customer_id)
            if position is None:
                unknown.append(customer_id)
            else:
                found.append({name: values[position] for name, values in columns})
        return found, unknown

    def __len__(self) -> int:
        return len(self.positions)


def _json_list(column: pd.Series) -> list:
    """Python values JSON can carry: floats that are not finite become None."""
    values = column.tolist()
    if pd.api.types.is_float_dtype(column) and not np.isfinite(column.to_numpy()).all():
        values = [v if math.isfinite(v) else None for v in values]
    return values
