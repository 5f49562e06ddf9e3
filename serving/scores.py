"""The latest score table, held in memory for lookups by customer id.

Start-up time is what a deploy waits for, so loading does as little per row as possible: columns
stay numpy arrays (text columns as category codes), and ids are found by binary search in the
sorted id column (`clv score` writes the table sorted by id; another table is sorted once), not
through a dict: hashing a million ids into one took 0.35-0.5 s of every start, a search costs about
3 microseconds. A lookup gathers the requested positions from each column with numpy and builds the
JSON-ready rows, with no pandas on the request path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.files import read_frame
from features.schema import LATER_SCORE_COLUMNS, SCORE_COLUMNS
from models.targeting import settle_cross_sell

# positions (an integer array) -> the column's values at those positions as JSON-ready Python values
Gather = Callable[[np.ndarray], list]


class ScoresUnavailable(RuntimeError):
    """The score table is missing or unreadable; the message says how to produce it."""


@dataclass(frozen=True)
class ScoreTable:
    frame: pd.DataFrame
    # The ids in ascending order, and the row of each (None when the rows are in that order).
    sorted_ids: np.ndarray
    rows: np.ndarray | None
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
            # Ids are text even when they look like numbers, and exactly as scored (a CSV's quoted cells undone).
            frame = read_frame(path)
        except Exception as exc:  # noqa: BLE001 - any reader error means the same thing to the operator
            raise ScoresUnavailable(f"cannot read the score table {path}: {exc}") from None
        if "cross_sell" in frame:
            # `clv score` writes "" for no suggestion, as /predict_history answers it, but a CSV cannot tell an
            # empty cell from a missing one (/predict answered null from a CSV table, "" from its Parquet twin).
            frame["cross_sell"] = frame["cross_sell"].fillna("")
        for column in LATER_SCORE_COLUMNS:  # a table written before these columns existed
            if column not in frame.columns:
                frame[column] = None
        missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
        if missing:
            raise ScoresUnavailable(
                f"{path} is not a score table: it lacks {', '.join(missing)}. Fix: write it with `clv score`."
            )
        # A table written before a cross-sell needed a suggestion is served as a new one would be written.
        frame = settle_cross_sell(frame)
        frame["customer_id"] = frame["customer_id"].astype(str)
        ids = frame["customer_id"].to_numpy(dtype=object)
        rows = None if bool((ids[1:] >= ids[:-1]).all()) else np.argsort(ids, kind="stable")
        # Few distinct cut-offs: convert each once instead of a million times.
        codes, cutoffs = pd.factorize(frame["as_of"])
        days = np.array([str(pd.Timestamp(v).date()) for v in cutoffs], dtype=object)
        frame["as_of"] = days[codes]
        frame["model_version"] = frame["model_version"].astype(str)
        return cls(
            frame,
            ids if rows is None else ids[rows],
            rows,
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
        if not len(self.sorted_ids):
            return [], list(customer_ids)
        wanted = np.empty(len(customer_ids), dtype=object)
        wanted[:] = customer_ids
        at = np.minimum(np.searchsorted(self.sorted_ids, wanted), len(self.sorted_ids) - 1)
        known = self.sorted_ids[at] == wanted
        unknown = [customer_ids[i] for i in np.flatnonzero(~known)]
        if not known.any():
            return [], unknown
        index = at[known] if self.rows is None else self.rows[at[known]]
        names = [name for name, _ in self.gatherers]
        columns = [gather(index) for _, gather in self.gatherers]
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)], unknown

    def __len__(self) -> int:
        return len(self.sorted_ids)


def json_records(frame: pd.DataFrame) -> list[dict]:
    """The rows of `frame` as JSON-ready dicts, read as `ScoreTable.lookup` reads the score table: numbers in
    full (pandas' `to_json` keeps 10 decimals: 85.2614588484 from /predict_history for /predict's
    85.26145884844496), NaN, infinity and missing values as null, timestamps in ISO 8601, anything else
    (text, dates, periods, and numbers in an object column) as its text."""
    index = np.arange(len(frame))
    columns = [_gatherer(frame[name])(index) for name in frame.columns]
    return [dict(zip(frame.columns, row, strict=True)) for row in zip(*columns, strict=True)]


def _id_gatherer(ids: np.ndarray) -> Gather:
    return lambda index: ids[index].tolist()


def _gatherer(column: pd.Series) -> Gather:
    """How to read one column at given positions, prepared once per load."""
    if pd.api.types.is_float_dtype(column):
        values = column.to_numpy(dtype=float)
        if np.isfinite(values).all():
            return lambda index: values[index].tolist()
        # JSON has no NaN or infinity.
        return lambda index: [v if math.isfinite(v) else None for v in values[index].tolist()]
    if pd.api.types.is_integer_dtype(column) or pd.api.types.is_bool_dtype(column):
        # A nullable column (Int64, boolean) holds pd.NA where a value is missing: null in JSON.
        values = column.to_numpy(dtype=object, na_value=None) if column.hasnans else column.to_numpy()
        return lambda index: values[index].tolist()
    if pd.api.types.is_datetime64_any_dtype(column):
        stamps = [None if pd.isna(v) else v.isoformat() for v in column]
        return lambda index: [stamps[i] for i in index.tolist()]
    # Text (segment, action, version, ...): a handful of distinct values, so codes are cheap to load.
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    labels = [None if pd.isna(v) else str(v) for v in uniques]
    return lambda index: [labels[c] for c in codes[index].tolist()]
