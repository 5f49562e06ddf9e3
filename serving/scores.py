"""The latest score table, held in memory for lookups by customer id.

Start-up time is what a deploy waits for, so loading does as little per row as possible: columns
stay numpy arrays (text columns as category codes), and the only per-row Python work is the
id -> position dict. A lookup gathers the requested positions from each column with numpy and
builds the JSON-ready rows, with no pandas on the request path: a few microseconds for one id.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.files import read_frame
from features.schema import SCORE_COLUMNS

# positions (an integer array) -> the column's values at those positions as JSON-ready Python values
Gather = Callable[[np.ndarray], list]


class ScoresUnavailable(RuntimeError):
    """The score table is missing or unreadable; the message says how to produce it."""


@dataclass(frozen=True)
class ScoreTable:
    frame: pd.DataFrame
    positions: dict[str, int]
    path: Path
    mtime: float
    # Summaries for GET /model and error messages, computed once rather than per request.
    as_of: tuple[str, ...]
    model_versions: tuple[str, ...]
    gatherers: tuple[tuple[str, Gather], ...]

    @classmethod
    def load(cls, path: Path) -> ScoreTable:
        """Read and index a score table written by `clv score`; raises ScoresUnavailable."""
        path = Path(path)
        if not path.exists():
            raise ScoresUnavailable(
                f"no score table at {path}. Fix: run `make train` (or `clv score --out {path}`), "
                "or point [serve] scores / CLV_SERVE__SCORES at an existing table."
            )
        mtime = path.stat().st_mtime
        try:
            # Ids are text even when they look like numbers: "00123" must stay "00123".
            frame = (
                pd.read_csv(path, dtype={"customer_id": str})
                if path.suffix.lower() == ".csv"
                else read_frame(path)
            )
        except Exception as exc:  # noqa: BLE001 - any reader error means the same thing to the operator
            raise ScoresUnavailable(f"cannot read the score table {path}: {exc}") from None
        missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
        if missing:
            raise ScoresUnavailable(
                f"{path} is not a score table: it lacks {', '.join(missing)}. Fix: write it with `clv score`."
            )
        frame["customer_id"] = frame["customer_id"].astype(str)
        ids = frame["customer_id"].tolist()
        # Few distinct cut-offs: convert each once instead of a million times.
        codes, cutoffs = pd.factorize(frame["as_of"])
        days = np.array([str(pd.Timestamp(v).date()) for v in cutoffs], dtype=object)
        frame["as_of"] = days[codes]
        frame["model_version"] = frame["model_version"].astype(str)
        return cls(
            frame,
            dict(zip(ids, range(len(frame)), strict=True)),
            path,
            mtime,
            tuple(sorted(set(days))),
            tuple(sorted(frame["model_version"].unique())),
            tuple(
                (name, _id_gatherer(ids) if name == "customer_id" else _gatherer(frame[name]))
                for name in frame.columns
            ),
        )

    def lookup(self, customer_ids: list[str]) -> tuple[list[dict], list[str]]:
        """(rows of the known ids in request order, unknown ids)."""
        found, unknown = [], []
        for customer_id in customer_ids:
            position = self.positions.get(customer_id)
            if position is None:
                unknown.append(customer_id)
            else:
                found.append(position)
        if not found:
            return [], unknown
        index = np.array(found, dtype=np.intp)
        names = [name for name, _ in self.gatherers]
        columns = [gather(index) for _, gather in self.gatherers]
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)], unknown

    def __len__(self) -> int:
        return len(self.positions)


def _id_gatherer(ids: list[str]) -> Gather:
    values = np.array(ids, dtype=object)
    return lambda index: values[index].tolist()


def _gatherer(column: pd.Series) -> Gather:
    """How to read one column at given positions, prepared once per load."""
    if pd.api.types.is_float_dtype(column):
        values = column.to_numpy(dtype=float)
        if np.isfinite(values).all():
            return lambda index: values[index].tolist()
        # JSON has no NaN or infinity.
        return lambda index: [v if math.isfinite(v) else None for v in values[index].tolist()]
    if pd.api.types.is_integer_dtype(column) or pd.api.types.is_bool_dtype(column):
        values = column.to_numpy()
        return lambda index: values[index].tolist()
    # Text (segment, action, version, ...): a handful of distinct values, so codes are cheap to load.
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    labels = [None if pd.isna(v) else str(v) for v in uniques]
    return lambda index: [labels[c] for c in codes[index].tolist()]
