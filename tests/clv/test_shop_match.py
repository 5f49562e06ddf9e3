"""A score table combined with a shop's log (`clv campaigns`, `clv economics`, `POST /campaigns`,
`GET /economics`) must be that shop's: the same value unit and mostly the same customers
(serving.shop_match). Campaign lists say their unit as exports do."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from clv.cli import app
from config import load_settings
from features.schema import SCORE_COLUMNS
from serving.campaigns import service_lists
from serving.economics import service_economics

runner = CliRunner()


def plain(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def write_shop(folder, ids: list[str], amounts: bool) -> None:
    """A log where each customer ordered twice in 2025 (with amounts or without), customers and spend."""
    rows = pd.DataFrame(
        {"customer_id": ids * 2, "timestamp": ["2025-01-10"] * len(ids) + ["2025-03-10"] * len(ids)}
    )
    if amounts:
        rows["amount"] = 40.0
    rows.to_csv(folder / "t.csv", index=False)
    pd.DataFrame({"customer_id": ids, "acquisition_channel": "ads"}).to_csv(folder / "c.csv", index=False)
    (folder / "spend.csv").write_text("channel,month,spend\nads,2025-01,100\n")


def write_scores(folder, ids: list[str], unit: str) -> None:
    """A score table as `clv score` writes it (values are placeholders: the checks read ids and unit)."""
    scores = pd.DataFrame({c: [0.0] * len(ids) for c in SCORE_COLUMNS})
    scores["customer_id"], scores["predicted_clv"], scores["p_alive"] = ids, 3.5, 0.9
    scores["segment"], scores["next_best_action"] = "vip", "upsell"
    scores["as_of"], scores["model_version"], scores["value_unit"] = "2025-06-30", "1", unit
    scores.to_csv(folder / "scores.csv", index=False)


SHOP = [str(i) for i in range(1, 41)]
OTHER = [str(i) for i in range(1, 11)]  # another shop's customers: ids 1, 2, 3... too


def test_another_shops_table_in_another_unit_is_refused_by_economics_and_campaigns(tmp_path, monkeypatch):
    """Seen: a table in orders was added to the apparel shop's revenue (339.6 "orders" plus 33,773)."""
    write_shop(tmp_path, SHOP, amounts=True)
    write_scores(tmp_path, SHOP, "orders")
    monkeypatch.chdir(tmp_path)
    data = ["--scores", "scores.csv", "-t", "t.csv", "--customers", "c.csv"]
    economics = ["economics", "--spend", "spend.csv", "--out", "cohorts/by_cohort.csv"]
    for args in ([*economics, *data], ["campaigns", "--out", "lists", *data]):
        result = runner.invoke(app, args)
        text = plain(result.output)
        assert result.exit_code == 1, text
        assert "the score table has values in orders, but the transactions' values are in currency" in text
        assert "Fix: score this shop with `clv score`" in text and "Traceback" not in text
    # Seen: both refusals left their --out directory behind, empty, after saying they had created it.
    assert "created the directory" not in text
    assert not (tmp_path / "lists").exists() and not (tmp_path / "cohorts").exists()


def test_a_table_whose_ids_all_occur_in_a_larger_log_is_refused(tmp_path, monkeypatch):
    """Seen: `clv campaigns --scores apparel_scores.csv -t grocery/transactions.csv` took the win-back
    dates from the grocery shop: every apparel id (1 to 600) is also a grocery id (1 to 1525)."""
    write_shop(tmp_path, SHOP, amounts=True)
    write_scores(tmp_path, OTHER, "currency")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["campaigns", "--scores", "scores.csv", "-t", "t.csv", "--out", "lists"])
    text = plain(result.output)
    assert result.exit_code == 1, text
    assert (
        "is not this log's: 100% of its 10 customers have an order in the transactions by then, and 25% of "
        "the log's 40 customers by then have a score (at least 50% each way are needed)"
    ) in text


def test_the_service_refuses_with_the_same_check(tmp_path):
    """`POST /campaigns` and `GET /economics` answer from the same check as the command line."""
    write_shop(tmp_path, SHOP, amounts=True)
    write_scores(tmp_path, OTHER, "currency")
    settings = load_settings(
        data={"transactions": str(tmp_path / "t.csv"), "customers": str(tmp_path / "c.csv")},
        economics={"spend": str(tmp_path / "spend.csv")},
    )
    scores = pd.read_csv(tmp_path / "scores.csv", dtype={"customer_id": str})
    messages = []
    for compute in (service_lists, service_economics):
        with pytest.raises(ValueError, match="is not this log's") as refused:
            compute(scores, settings)
        messages.append(str(refused.value))
    assert messages[0] == messages[1]


def test_campaign_lists_state_their_unit_as_exports_do(tmp_path, monkeypatch):
    """Seen: the grocery shop's upsell.csv read max_spend 3.77699 with nothing saying it counts orders; a
    budget is money, so it is left empty there, with a note."""
    write_shop(tmp_path, SHOP, amounts=False)
    write_scores(tmp_path, SHOP, "orders")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["campaigns", "--scores", "scores.csv", "-t", "t.csv", "--out", "lists"])
    assert result.exit_code == 0, result.output
    assert "created the directory lists for --out lists" in plain(result.output)
    upsell = pd.read_csv(tmp_path / "lists/upsell.csv")
    assert len(upsell) == 40 and set(upsell["value_unit"]) == {"orders"}
    assert upsell["max_spend"].isna().all()
    assert "max_spend: left empty, the log has no amounts" in plain(result.output)
    assert re.search(r"upsell: 40 customers, expected value [\d,.]+ orders ->", plain(result.output))
    exported = runner.invoke(app, ["export", "--scores", "scores.csv", "--out", "all.csv"])
    assert set(pd.read_csv(tmp_path / "all.csv")["value_unit"]) == {"orders"}
    assert "orders." in plain(exported.output)


def test_campaign_lists_join_an_existing_directory_whole_and_leave_its_other_files(tmp_path, monkeypatch):
    """Into an existing --out the lists move only once all are written (no temporary file stays), and the
    user's own files there are kept."""
    write_shop(tmp_path, SHOP, amounts=True)
    write_scores(tmp_path, SHOP, "currency")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists/notes.txt").write_text("mine")
    (tmp_path / "lists/upsell.csv").write_text("an old list")
    result = runner.invoke(app, ["campaigns", "--scores", "scores.csv", "-t", "t.csv", "--out", "lists"])
    assert result.exit_code == 0 and "created the directory" not in result.output, result.output
    names = sorted(p.name for p in (tmp_path / "lists").iterdir())
    assert "notes.txt" in names and "upsell.csv" in names and not [n for n in names if n.startswith(".")]
    assert (tmp_path / "lists/notes.txt").read_text() == "mine"
    assert len(pd.read_csv(tmp_path / "lists/upsell.csv")) == 40


def test_an_export_that_matches_nobody_says_so_and_why(tmp_path, monkeypatch):
    """Seen: `clv export --min-clv 1e9` wrote a header-only list with exit code 0 and no word about it."""
    write_scores(tmp_path, SHOP, "currency")
    scores = pd.read_csv(tmp_path / "scores.csv")
    scores.assign(churn_prob=np.linspace(0.03, 0.99998, len(scores))).to_csv(
        tmp_path / "scores.csv", index=False
    )
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["export", "--scores", "scores.csv", "--min-clv", "1e9", "--out", "vip.csv"])
    text = plain(result.output)
    assert result.exit_code == 0 and "Wrote 0 of 40 customers" in text, text
    assert (
        "no customer matches min_clv=1000000000.0" in text and "predicted_clv runs from 3.50 to 3.50" in text
    )
    # No row is certain to churn: the range does not say 1.00 (seen: "from 0.03 to 1.00" for 0.99998).
    assert "churn_prob from 0.03 to 0.99998;" in text, text
    assert (tmp_path / "vip.csv").read_text().count("\n") == 1
    found = runner.invoke(app, ["export", "--scores", "scores.csv", "--min-clv", "3", "--out", "all.csv"])
    assert "Wrote 40 of 40" in plain(found.output) and "no customer matches" not in plain(found.output)
