"""`clv economics` as a user runs it: CLV:CAC per channel printed, the cohort table written; a missing spend
file is asked for by name."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from clv.cli import app
from demo.shop import write_demo_shop
from features.schema import SCORE_COLUMNS

runner = CliRunner()


def plain(text: str) -> str:
    return re.sub(r"[\s│╭╮╰╯─┃━┏┓┗┛┡┩└┘┌┐]+", " ", text)


def shop(folder):
    pd.DataFrame(
        {
            "customer_id": ["A", "A", "B", "C"],
            "timestamp": ["2025-01-05", "2025-02-07", "2025-01-20", "2025-02-11"],
            "amount": [100.0, 50.0, 40.0, 30.0],
        }
    ).to_csv(folder / "t.csv", index=False)
    pd.DataFrame({"customer_id": ["A", "B", "C"], "acquisition_channel": ["ads", "ads", "seo"]}).to_csv(
        folder / "c.csv", index=False
    )
    scores = pd.DataFrame({c: [0.0] * 3 for c in SCORE_COLUMNS})
    scores["customer_id"] = ["A", "B", "C"]
    scores["predicted_clv"] = [60.0, 0.0, 10.0]
    scores["as_of"] = "2025-02-28"
    scores["model_version"] = "1"
    scores["value_unit"] = "currency"
    scores["horizon_days"] = 90
    scores.to_csv(folder / "scores.csv", index=False)
    (folder / "spend.csv").write_text("channel,month,spend\nads,2025-01,50\nseo,2025-02,20\n")


def test_economics_prints_clv_to_cac_per_channel_and_writes_cohorts(tmp_path, monkeypatch):
    shop(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLV_TRAIN__MARGIN", "0.5")
    args = [
        "economics",
        "--spend",
        "spend.csv",
        "--scores",
        "scores.csv",
        "-t",
        "t.csv",
        "--customers",
        "c.csv",
    ]
    result = runner.invoke(app, [*args, "--out", "cohorts.csv"])
    assert result.exit_code == 0, result.output
    text = plain(result.output)
    # ads: 2 customers for 50 -> CAC 25; value (190 past + 60 predicted) / 2 = 125; x 0.5 / 25 = 2.5;
    # paid back in the first month (140 x 0.5 >= 50); profit CLV 125 x 0.5 - 25 = 37.5
    assert re.search(r"ads 2 50\.00 25\.00 125\.00 2\.50 0 37\.50", text), text
    # clv holds the value predicted over the score table's horizon, not a lifetime: the caption says which.
    assert "clv = (revenue to date + predicted_clv over the next 90 days) / customers" in text, text
    cohorts = pd.read_csv(tmp_path / "cohorts.csv")
    assert set(cohorts["cohort"]) == {"2025-01", "2025-02"}
    ads = cohorts[cohorts["acquisition_channel"] == "ads"]  # the two parts of clv, per cohort
    assert ads["revenue_to_date"].sum() == 190.0 and ads["predicted_clv"].sum() == 60.0


def test_economics_without_spend_names_the_option_and_the_setting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["economics"])
    assert (
        result.exit_code == 2
        and "--spend" in plain(result.output)
        and "[economics] spend" in plain(result.output)
    )


def test_an_out_that_is_an_input_or_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch):
    """Seen: `--out spend.csv` replaced the spend file and `--out scores.csv` the score table; `clv campaigns
    --out /proc/x` printed a traceback."""
    shop(tmp_path)
    monkeypatch.chdir(tmp_path)
    inputs = ["--spend", "spend.csv", "--scores", "scores.csv", "-t", "t.csv", "--customers", "c.csv"]
    for taken, name in (("spend.csv", "spend"), ("scores.csv", "score table"), ("t.csv", "transactions")):
        before = (tmp_path / taken).read_bytes()
        result = runner.invoke(app, ["economics", *inputs, "--out", taken])
        assert result.exit_code == 2 and f"is the {name} input" in plain(result.output), result.output
        assert (tmp_path / taken).read_bytes() == before
    exported = runner.invoke(app, ["export", "--scores", "scores.csv", "--out", "scores.csv"])
    assert exported.exit_code == 2 and "is the score table input" in plain(exported.output)
    unwritable = runner.invoke(app, ["campaigns", "--scores", "scores.csv", "--out", "/proc/clv-lists"])
    assert unwritable.exit_code == 2 and "Fix: choose a place you can write to" in plain(unwritable.output)
    assert unwritable.exception is None or isinstance(unwritable.exception, SystemExit)


def test_a_spend_channel_no_customer_has_is_named_with_the_known_ones(tmp_path, monkeypatch):
    shop(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spend.csv").write_text("channel,month,spend\nads,2025-01,50\nAds,2025-02,20\n")
    inputs = ["--spend", "spend.csv", "--scores", "scores.csv", "-t", "t.csv", "--customers", "c.csv"]
    result = runner.invoke(app, ["economics", *inputs])
    assert result.exit_code == 0, result.output
    assert "channel 'Ads' has no customers (their channels: ads, seo)" in plain(result.output)


def test_a_channel_missing_from_the_spend_file_reads_unknown_not_free(tmp_path, monkeypatch):
    shop(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spend.csv").write_text("channel,month,spend\nads,2025-01,50\n")
    inputs = ["--spend", "spend.csv", "--scores", "scores.csv", "-t", "t.csv", "--customers", "c.csv"]
    result = runner.invoke(app, ["economics", *inputs, "--out", "cohorts.csv"])
    assert result.exit_code == 0, result.output
    text = plain(result.output)
    # seo: 1 customer, clv (30 past + 10 predicted) known; what needs the spend is unknown, not 0.
    assert re.search(r"seo 1 unknown unknown 40\.00 unknown unknown unknown", text), text
    assert (
        "channel 'seo' is not in the spend file" in text and "Fix: add its months to the spend file" in text
    )
    seo = pd.read_csv(tmp_path / "cohorts.csv").query("acquisition_channel == 'seo'")
    assert seo[["spend", "cac", "payback_months", "profit_clv"]].isna().all().all()


def demo_with_scores(folder):
    """The demo shop where `make train` puts it, and a score table where `clv score` does (values 0: the
    economics read only ids and predicted_clv)."""
    write_demo_shop(folder / "data/demo", n_customers=600, seed=2)
    ids = pd.read_parquet(folder / "data/demo/customers.parquet")["customer_id"]
    scores = pd.DataFrame({c: [0.0] * len(ids) for c in SCORE_COLUMNS})
    scores["customer_id"], scores["p_alive"], scores["predicted_clv"] = ids, 0.5, 10.0
    scores["as_of"], scores["model_version"], scores["value_unit"] = "2025-12-31", "1", "currency"
    (folder / "artifacts").mkdir()
    scores.to_parquet(folder / "artifacts/scores.parquet")


def test_the_demo_shop_needs_no_flags_and_the_what_if_prints_beside_it(tmp_path, monkeypatch):
    demo_with_scores(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["economics", "--retention-lift", "10"])
    assert result.exit_code == 0, result.output
    text = plain(result.output)
    for channel in ("organic", "paid_search", "paid_social", "email", "referral", "affiliate"):
        assert f" {channel} " in text, channel
    # Every customer p_alive 0.5 with 10 predicted: 20 if alive, x 0.6 = 12, so the total rises by 20%.
    assert "Retention up 10 points" in text and "6,000 -> 7,200 (+20.0%)" in text, text


def test_configured_data_does_not_borrow_the_demo_spend_file(tmp_path, monkeypatch):
    demo_with_scores(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLV_DATA__TRANSACTIONS", "data/demo/transactions.parquet")
    result = runner.invoke(app, ["economics"])
    assert result.exit_code == 2 and "no spend file" in plain(result.output), result.output


def test_a_bad_retention_lift_is_refused_with_its_range(tmp_path, monkeypatch):
    demo_with_scores(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["economics", "--retention-lift", "150"])
    text = plain(result.output)
    assert result.exit_code == 2 and "'--retention-lift'" in text and "less than or equal to 100" in text, (
        text
    )
    result = runner.invoke(app, ["economics", "--retention-lift", "nan"])
    assert result.exit_code == 2 and "'--retention-lift'" in plain(result.output), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_clv_serve_gives_the_service_the_demo_shop_and_its_spend_file(tmp_path, monkeypatch):
    demo_with_scores(tmp_path)
    monkeypatch.chdir(tmp_path)
    served = []
    monkeypatch.setattr("serving.run.run", lambda settings: served.append(settings) or 0)
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    (settings,) = served
    assert settings.data.customers == "data/demo/customers.parquet"
    assert settings.economics.spend == "data/demo/spend.csv"  # GET /economics answers for the demo


def test_a_demo_shop_without_its_spend_file_says_how_to_remake_it(tmp_path, monkeypatch):
    demo_with_scores(tmp_path)
    (tmp_path / "data/demo/spend.csv").unlink()  # as an older version left it
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["economics"])
    assert result.exit_code == 2 and "`make demo` remakes it" in plain(result.output), result.output


ARGS = ["economics", "--spend", "spend.csv", "--scores", "scores.csv", "-t", "t.csv", "--customers", "c.csv"]


def test_spend_after_the_scores_as_of_is_left_out_and_said_so(tmp_path, monkeypatch):
    """Seen: scores as of 2024-12-31 and a spend file to 2025-12 counted a year of later spend in the CAC
    (paid_social 120.81 instead of ~59) and wrote 2025 cohorts of 0 customers with spend."""
    shop(tmp_path)
    monkeypatch.chdir(tmp_path)
    scores = pd.read_csv(tmp_path / "scores.csv").assign(as_of="2025-01-31")
    scores.to_csv(tmp_path / "scores.csv", index=False)
    (tmp_path / "spend.csv").write_text(
        "channel,month,spend\nads,2025-01,50\nads,2025-02,500\nseo,2025-03,9\n"
    )
    result = runner.invoke(app, [*ARGS, "--out", "cohorts.csv"])
    assert result.exit_code == 0, result.output
    text = plain(result.output)
    # As of January only A and B (ads) bought: 50 / 2 = 25, not 550 / 2.
    assert re.search(r" ads 2 50\.00 25\.00 ", text), text
    assert "note: 2 spend rows after the scores' as_of 2025-01-31 (2025-02 to 2025-03) were left out" in text
    cohorts = pd.read_csv(tmp_path / "cohorts.csv")
    assert set(cohorts["cohort"]) == {"2025-01"}, cohorts


def test_another_shops_score_table_is_refused_and_a_partial_one_warned(tmp_path, monkeypatch):
    """Seen: another shop's score table printed predicted_clv 0.00 for every channel and a note that the
    spend file's channels had no customers (their channels: none)."""
    shop(tmp_path)
    monkeypatch.chdir(tmp_path)
    scores = pd.read_csv(tmp_path / "scores.csv")
    scores.assign(customer_id=["X", "Y", "Z"]).to_csv(tmp_path / "scores.csv", index=False)
    result = runner.invoke(app, ARGS)
    text = plain(result.output)
    assert result.exit_code == 1, text
    assert "the score table (as_of 2025-02-28) is not this log's: 0% of its 3 customers" in text, text
    assert "score this shop with `clv score`" in text and "--scores" in text
    assert "has no customers" not in text
    extra = pd.concat([scores, scores.iloc[[0]].assign(customer_id="Z")])  # A, B, C and one not in the log
    extra.to_csv(tmp_path / "scores.csv", index=False)
    result = runner.invoke(app, ARGS)
    text = plain(result.output)
    assert (
        result.exit_code == 0
        and "warning: the score table (as_of 2025-02-28) differs from this log: 75%" in text
    )


def test_the_table_is_readable_in_100_columns(tmp_path, monkeypatch):
    """Seen: in a 100-column terminal the channels read `paid_s…` and the numbers `56,028…`."""
    from rich.console import Console

    demo_with_scores(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("clv.cli.out", Console(width=100))
    monkeypatch.setenv("CLV_TRAIN__MARGIN", "0.5")
    result = runner.invoke(app, ["economics"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output and max(map(len, result.output.splitlines())) <= 100, result.output
    spend = pd.read_csv(tmp_path / "data/demo/spend.csv").groupby("channel")["spend"].sum()
    for channel, total in spend.items():
        assert re.search(rf"│ {channel} +│ +[\d,]+ │ +{total:,.2f} │", result.output), (
            channel,
            result.output,
        )


def test_a_log_without_amounts_is_refused_naming_the_cause_and_the_fix(tmp_path, monkeypatch):
    """Seen on a log without amounts (values in orders): `email  6.13 cac  6.28 clv  1.02 clv:cac`, a CLV of
    6.28 orders divided by 6.13 of money, and payback months from order counts; every ratio was wrong."""
    shop(tmp_path)
    monkeypatch.chdir(tmp_path)
    pd.read_csv(tmp_path / "t.csv").drop(columns="amount").to_csv(tmp_path / "t.csv", index=False)
    scores = pd.read_csv(tmp_path / "scores.csv")
    scores.assign(value_unit="orders").to_csv(tmp_path / "scores.csv", index=False)
    result = runner.invoke(app, [*ARGS, "--retention-lift", "5", "--out", "cohorts.csv"])
    text = plain(result.output)
    assert result.exit_code == 1 and "Traceback" not in text, text
    assert (
        "no acquisition economics for this log: it has no amount column, so the model values customers "
        in text
    )
    assert "Fix: use a transactions log with an amount per order" in text and "--map amount=COLUMN" in text
    assert "clv:cac" not in text and "Retention up" not in text
    assert not (tmp_path / "cohorts.csv").exists()


def add_customers(folder, rows: list[tuple[str, str, float, str | None]]) -> None:
    """Customers beside shop()'s A, B and C: (id, first order date, amount, channel or None for none)."""
    t = pd.read_csv(folder / "t.csv")
    new = pd.DataFrame([r[:3] for r in rows], columns=["customer_id", "timestamp", "amount"])
    pd.concat([t, new]).to_csv(folder / "t.csv", index=False)
    c = pd.read_csv(folder / "c.csv")
    given = pd.DataFrame([(r[0], r[3]) for r in rows if r[3]], columns=["customer_id", "acquisition_channel"])
    pd.concat([c, given]).to_csv(folder / "c.csv", index=False)
    scores = pd.read_csv(folder / "scores.csv")
    extra = pd.concat([scores.iloc[[0]]] * len(rows)).assign(customer_id=[r[0] for r in rows])
    pd.concat([scores, extra]).to_csv(folder / "scores.csv", index=False)


def economics_with_spend(folder, monkeypatch, spend: str) -> str:
    """What `clv economics` printed (exit code 0) on `folder`'s shop with the spend file `spend`."""
    (folder / "spend.csv").write_text(spend)
    monkeypatch.chdir(folder)
    result = runner.invoke(app, ARGS)
    assert result.exit_code == 0, result.output
    return plain(result.output)


def test_a_paid_channels_month_without_a_spend_row_counts_0_and_is_named(tmp_path, monkeypatch):
    """Seen: a paid channel's month with new customers and no spend row counted as spend 0, so its CAC read
    lower than the truth, silently. Still 0 (a paused channel is real), now with a note naming the months;
    a channel that spent 0 in every listed month (organic) is not named."""
    shop(tmp_path)
    add_customers(tmp_path, [("D", "2025-02-15", 20.0, "ads"), ("E", "2025-02-16", 5.0, "organic")])
    text = economics_with_spend(
        tmp_path, monkeypatch, "channel,month,spend\nads,2025-01,50\nseo,2025-02,20\norganic,2025-01,0\n"
    )
    assert re.search(r" ads 3 50\.00 16\.67 ", text), text  # February counted as 0: 50 / 3
    assert (
        "note: paid channel 'ads' has 1 customer acquired in 2025-02 but no spend row for that month: "
        "counted as 0 spend, so its CAC may be too low. Fix: add rows for that month (spend 0 if it really "
        "spent nothing)." in text
    ), text
    assert "'organic' has" not in text and "'seo' has" not in text
    (tmp_path / "spend.csv").write_text(
        "channel,month,spend\nads,2025-01,50\nads,2025-02,0\nseo,2025-02,20\norganic,2025-01,0\n"
    )
    assert "no spend row" not in plain(runner.invoke(app, ARGS).output)  # a row of 0: paused, said so


def test_a_note_names_a_few_months_then_how_many_more():
    from serving.economics import _unspent_notes

    months = pd.period_range("2024-01", "2024-07", freq="M")
    by_cohort = pd.DataFrame({"acquisition_channel": "ads", "cohort": months, "customers": 2})
    spend = pd.DataFrame({"channel": ["ads"], "month": [months[0] - 1], "spend": [9.0]})
    (note,) = _unspent_notes(by_cohort, spend, months[-1])
    assert (
        "has 14 customers acquired in 2024-01, 2024-02, 2024-03, 2024-04 and 3 more but no spend row" in note
    )
    assert "for those months" in note


def test_repeated_spend_rows_are_summed_and_said_so(tmp_path, monkeypatch):
    """Seen: a spend row entered twice doubled the channel's spend and CAC, silently."""
    shop(tmp_path)
    text = economics_with_spend(
        tmp_path,
        monkeypatch,
        "channel,month,spend\nads,2025-01,50\nads,2025-01,50\nseo,2025-02,20\nseo,2025-03,1\nseo,2025-03,1\n",
    )
    assert re.search(r" ads 2 100\.00 50\.00 ", text), text  # still summed
    assert "No [train] margin: clv_to_cac, payback_months and profit_clv count revenue, not margin." in text
    assert (
        "note: the spend file has more than one row for channel 'ads' in 2025-01 (2 rows): each month's rows "
        "were summed into its spend. Fix: one row per month and channel (remove a row entered twice)." in text
    ), text
    # seo's repeated March is after the as_of and counts for nothing: one note says so, once for the month.
    assert "more than one row for channel 'seo'" not in text
    assert "2 spend rows after the scores' as_of 2025-02-28 (2025-03) were left out" in text, text


NO_CHANNELS = "no acquisition economics per channel: they need each customer's acquisition_channel, and "


def test_without_channels_economics_stop_with_one_message_naming_what_is_missing(tmp_path, monkeypatch):
    """Seen: without a customers table (or its acquisition_channel) every customer was 'unknown', the table
    showed spend for channels of 0 customers, and three notes said to spell channels as the customers table
    does. Now one refusal, as for a log without amounts: exit code 1 and nothing written."""
    shop(tmp_path)
    monkeypatch.chdir(tmp_path)
    pd.read_csv(tmp_path / "c.csv").assign(acquisition_channel=None).rename(
        columns={"acquisition_channel": "country"}
    ).to_csv(tmp_path / "no_column.csv", index=False)
    pd.read_csv(tmp_path / "c.csv").assign(acquisition_channel="").to_csv(tmp_path / "empty.csv", index=False)
    base = ["economics", "--spend", "spend.csv", "--scores", "scores.csv", "-t", "t.csv", "--out", "x.csv"]
    for customers, missing in (
        (
            [],
            "no customers table was given. Fix: pass --customers PATH, a table of customer_id and "
            "acquisition_channel ([data] customers in clv.toml for the service).",
        ),
        (
            ["--customers", "no_column.csv"],
            "the customers table has no acquisition_channel column. Fix: add "
            "that column to the customers table",
        ),
        (["--customers", "empty.csv"], "none of the log's 3 customers has one in the customers table"),
    ):
        result = runner.invoke(app, [*base, *customers])
        text = plain(result.output)
        assert result.exit_code == 1 and "Traceback" not in text, text
        assert f"error: {NO_CHANNELS}{missing}" in text, text
        assert "note:" not in text and "clv:cac" not in text and "spell it" not in text, text
        assert not (tmp_path / "x.csv").exists()


def test_get_economics_refuses_without_channels_as_the_command_does(tmp_path, monkeypatch):
    """The same refusal on the service: a missing input, 404 with the message `clv economics` prints."""
    from types import SimpleNamespace

    from config import DataSettings, Settings
    from serving.economics import service_economics
    from serving.routes import ApiError, per_scores
    from serving.scores import ScoreTable

    shop(tmp_path)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    settings = settings.model_copy(
        update={
            "data": DataSettings(transactions=str(tmp_path / "t.csv")),
            "economics": settings.economics.model_copy(update={"spend": str(tmp_path / "spend.csv")}),
        }
    )
    state = SimpleNamespace(
        current=SimpleNamespace(scores=ScoreTable.load(tmp_path / "scores.csv")),
        derived={},
        settings=settings,
    )
    with pytest.raises(ApiError) as raised:
        per_scores("economics", service_economics, state)
    error = raised.value
    assert error.status == 404 and error.message.startswith(f"{NO_CHANNELS}no customers table"), error
    cli = runner.invoke(app, ["economics", "--spend", "spend.csv", "--scores", "scores.csv", "-t", "t.csv"])
    assert plain(error.message) in plain(cli.output)


def test_customers_without_a_channel_are_counted_apart_and_said_so(tmp_path, monkeypatch):
    """Seen: customers missing from the customers table read as the channel 'unknown' with a note that
    'unknown' is not in the spend file. They are in no listed channel, so no listed channel's CAC counts
    them; the note now says how many and what that means."""
    shop(tmp_path)
    add_customers(tmp_path, [("D", "2025-01-15", 20.0, None)])
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ARGS)
    assert result.exit_code == 0, result.output
    text = plain(result.output)
    assert re.search(r" ads 2 50\.00 25\.00 ", text), text  # 50 / ads' own 2, not / 3
    assert re.search(r" unknown 1 unknown unknown ", text), text
    assert (
        "note: 1 of the 4 customers who bought by 2025-02-28 has no acquisition_channel (no row in the "
        "customers table, or an empty cell): counted under 'unknown' (its spend, CAC, CLV:CAC, payback and "
        "profit CLV unknown) and in no other channel, so no other channel's customers or CAC include them; if "
        "some came from a paid channel, its true CAC is lower than shown. Fix: give every customer its "
        "acquisition_channel in the customers table." in text
    ), text
    assert "'unknown' is not in the spend file" not in text
    (tmp_path / "spend.csv").write_text(
        "channel,month,spend\nads,2025-01,50\nseo,2025-02,20\nAds,2025-01,1\n"
    )
    text = plain(runner.invoke(app, ARGS).output)
    assert "(their channels: ads, seo);" in text, text  # 'unknown' is not a spelling to copy


def test_a_customer_without_a_purchase_is_in_no_channel_and_said_so(tmp_path, monkeypatch):
    """Seen on the apparel cohort: one customer whose only order was free (amount 0) is scored (segment
    no_purchase) but in no cohort, so the channels counted 599 of 600 scored customers without a word."""
    shop(tmp_path)
    add_customers(tmp_path, [("F", "2025-01-25", 0.0, "seo")])
    # A scored customer the log does not know is no customer without a purchase: not counted in the note.
    scores = pd.read_csv(tmp_path / "scores.csv")
    pd.concat([scores, scores.iloc[[0]].assign(customer_id="Z")]).to_csv(tmp_path / "scores.csv", index=False)
    text = economics_with_spend(
        tmp_path, monkeypatch, "channel,month,spend\nads,2025-01,50\nseo,2025-02,20\n"
    )
    assert re.search(r" seo 1 20\.00 20\.00 ", text), text  # C alone: F was not acquired
    assert (
        "note: 1 scored customer without a purchase by 2025-02-28 (only refunds or free orders: segment "
        "no_purchase) is in no cohort: not acquired yet, so in no channel's customers, CLV or CAC" in text
    ), text
