"""The score table's lookups: the right row for each id, in request order, whatever order the file has."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.files import write_frame
from features.schema import SCORE_COLUMNS
from serving.scores import ScoreTable, json_records


def table(ids: list[str]) -> pd.DataFrame:
    n = len(ids)
    frame = pd.DataFrame({c: np.zeros(n) for c in SCORE_COLUMNS})
    frame["customer_id"] = ids
    frame["predicted_clv"] = np.arange(n, dtype=float) * 10  # tells the rows apart
    frame["segment"] = "vip"
    frame["next_best_action"] = "upsell"
    frame["as_of"] = "2025-01-31"
    frame["model_version"] = "3"
    return frame


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("ids", [["a", "b", "c", "d"], ["c", "a", "d", "b"]], ids=["sorted", "unsorted"])
def test_lookup_returns_each_ids_row_in_request_order(tmp_path, suffix, ids):
    path = tmp_path / f"scores{suffix}"
    frame = table(ids)
    frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path, index=False)
    scores = ScoreTable.load(path)
    value = dict(zip(ids, frame["predicted_clv"], strict=True))

    rows, unknown = scores.lookup(["d", "zz", "a", "0", "b", "a"])

    assert [r["customer_id"] for r in rows] == ["d", "a", "b", "a"]
    assert [r["predicted_clv"] for r in rows] == [value["d"], value["a"], value["b"], value["a"]]
    assert unknown == ["zz", "0"]
    assert len(scores) == 4
    assert scores.lookup(["x"]) == ([], ["x"])


def test_lookup_keeps_ids_that_look_like_numbers_as_text(tmp_path):
    path = tmp_path / "scores.csv"
    table(["00123", "123", "9"]).to_csv(path, index=False)
    rows, unknown = ScoreTable.load(path).lookup(["123", "00123", "0123"])
    assert [r["customer_id"] for r in rows] == ["123", "00123"]
    assert unknown == ["0123"]


def test_empty_table_knows_nobody(tmp_path):
    path = tmp_path / "scores.parquet"
    table([]).to_parquet(path)
    assert ScoreTable.load(path).lookup(["a"]) == ([], ["a"])


def test_an_older_table_with_a_cross_sell_and_nothing_to_offer_is_served_as_a_new_one_is_written(tmp_path):
    path = tmp_path / "scores.csv"
    older = table(["a", "b"]).drop(columns=["cross_sell", "cross_sell_reason"])
    older["next_best_action"] = ["cross_sell", "upsell"]
    older.to_csv(path, index=False)
    rows, _ = ScoreTable.load(path).lookup(["a", "b"])
    assert [r["next_best_action"] for r in rows] == ["nurture", "upsell"]
    assert rows[0]["reason"] == "nothing to cross-sell (no suggestion was made): nurture instead"


def test_json_records_keep_every_number_in_full():
    """Seen: /predict_history answered 85.2614588484 where /predict answered 85.26145884844496 (pandas'
    to_json keeps 10 decimals, and turned 1.2345678901234567e-09 into 0.0000000012)."""
    frame = pd.DataFrame(
        {
            "value": [85.26145884844496, 1.2345678901234567e-9, np.nan, np.inf],
            "count": [1, 2, 3, 4],
            "cohort": pd.period_range("2025-01", periods=4, freq="M"),
            "date": ["2025-01-31", None, "2025-02-01", None],
            "nullable": pd.array([1, None, 3, None], dtype="Int64"),
            "flag": pd.array([True, None, False, True], dtype="boolean"),
            "stamp": pd.to_datetime(["2025-01-31 10:00", None, "2025-02-01 00:00", "2025-02-02 00:00"]),
        }
    )
    records = json.loads(json.dumps(json_records(frame), allow_nan=False))
    assert [r["value"] for r in records] == [85.26145884844496, 1.2345678901234567e-9, None, None]
    assert [r["count"] for r in records] == [1, 2, 3, 4]
    assert [r["cohort"] for r in records] == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert [r["date"] for r in records] == ["2025-01-31", None, "2025-02-01", None]
    assert [r["nullable"] for r in records] == [1, None, 3, None]
    assert [r["flag"] for r in records] == [True, None, False, True]
    assert [r["stamp"] for r in records] == [
        "2025-01-31T10:00:00",
        None,
        "2025-02-01T00:00:00",
        "2025-02-02T00:00:00",
    ]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_no_suggestion_reads_the_same_from_csv_and_parquet(tmp_path, suffix):
    """`clv score` writes "" for no suggestion, as /predict_history answers it; from a CSV score table /predict
    answered null (a CSV cell cannot tell "" from missing), from its Parquet twin ""."""
    frame = table(["a", "b"]).assign(cross_sell=["", "shoes"], cross_sell_reason=["no suggestion: x", "r"])
    path = write_frame(frame, tmp_path / f"scores{suffix}")
    rows, _ = ScoreTable.load(path).lookup(["a", "b"])
    assert [r["cross_sell"] for r in rows] == ["", "shoes"]
