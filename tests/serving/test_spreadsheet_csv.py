"""Every CSV written for people (the score table, exports, campaign lists) follows one rule
(`features.files.spreadsheet_csv`): a cell a spreadsheet would run as a formula gets a leading quote,
and so does one that began with a quote, so removing one leading quote gives the id back exactly and it
joins the log; the product's own reader (a CSV score table served, exported, listed) does that."""

from __future__ import annotations

import io

import pandas as pd
from typer.testing import CliRunner

from clv.cli import app
from serving.scores import ScoreTable

runner = CliRunner()
HOSTILE = ['=HYPERLINK("http://x.invalid","click")', "@SUM(A1)", "+1-2", "-3", "'quoted"]


def unquoted(ids: pd.Series) -> set[str]:
    return {i[1:] if i.startswith("'") else i for i in ids.astype(str)}


def test_hostile_ids_are_quoted_in_every_csv_and_join_back_to_the_log(trained, tmp_path, monkeypatch):
    """Seen: `clv score --out x.csv` wrote `=HYPERLINK(...)` as is, while `clv export` wrote `'=HYPERLINK(...)`,
    an id that no longer joined the log."""
    shop = tmp_path / "shop"
    shop.mkdir()
    tables = {
        name: pd.read_parquet(trained.shop / f"{name}.parquet") for name in ("transactions", "customers")
    }
    first = sorted(tables["customers"]["customer_id"].astype(str))[: len(HOSTILE)]
    renamed = dict(zip(first, HOSTILE, strict=True))
    for name, frame in tables.items():
        frame["customer_id"] = frame["customer_id"].astype(str).replace(renamed)
        frame.to_parquet(shop / f"{name}.parquet", index=False)
    log_ids = set(tables["transactions"]["customer_id"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.settings.mlflow.tracking_uri)
    data = ["-t", "shop/transactions.parquet", "--customers", "shop/customers.parquet"]
    # The model was trained with events; scoring without them is refused, so score the customers' orders
    # with the events of the served shop.
    data += ["--events", str(trained.shop / "events.parquet")]
    scored = runner.invoke(app, ["score", *data, "--out", "scores.csv"])
    assert scored.exit_code == 0, scored.output
    exported = runner.invoke(app, ["export", "--scores", "scores.csv", "--out", "all.csv"])
    listed = runner.invoke(app, ["campaigns", "--scores", "scores.csv", *data, "--out", "lists"])
    assert exported.exit_code == 0 and listed.exit_code == 0, exported.output + listed.output
    files = [tmp_path / "scores.csv", tmp_path / "all.csv", *sorted((tmp_path / "lists").glob("*.csv"))]
    assert len(files) > 3
    for path in files:
        raw = pd.read_csv(path, dtype={"customer_id": str}, keep_default_na=False)
        cells = raw.select_dtypes(exclude="number").stack().astype(str)
        assert not cells.str.startswith(("=", "+", "-", "@")).any(), path  # nothing a spreadsheet would run
        assert unquoted(raw["customer_id"]) <= log_ids, path  # every id joins the log
    written = pd.read_csv(tmp_path / "scores.csv", dtype={"customer_id": str})["customer_id"]
    assert set(written) >= {"'" + h for h in HOSTILE} and unquoted(written) == log_ids
    assert set(pd.read_csv(tmp_path / "all.csv", dtype={"customer_id": str})["customer_id"]) == set(written)
    # The product reads its own CSV back exactly: what the service answers for /predict and the lists use.
    table = ScoreTable.load(tmp_path / "scores.csv")
    assert set(table.frame["customer_id"]) == log_ids
    rows, unknown = table.lookup(HOSTILE)
    assert unknown == [] and [r["customer_id"] for r in rows] == HOSTILE


def test_exports_write_numbers_in_full_as_the_score_table_does():
    """Seen: exports rounded to 6 significant digits, so a shop counting in a currency of large units read
    `3.93297e+06` in `predicted_clv` beside the reason "predicted value 3,932,970"."""
    from serving.export import to_csv

    frame = pd.DataFrame(
        {"customer_id": ["A", "B"], "predicted_clv": [3_932_970.123456, 12.5], "p_alive": [0.000127, 0.99]}
    )
    text = to_csv(frame)
    assert "e+" not in text and "3932970.123456" in text
    read = pd.read_csv(io.StringIO(text), dtype={"customer_id": str})
    pd.testing.assert_frame_equal(read, frame)
