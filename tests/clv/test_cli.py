"""The `clv` command line as a user meets it: help, exit codes, messages."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from clv.cli import app

runner = CliRunner()
DESIGN_COMMANDS = ["demo-data", "validate", "features", "train", "score", "export", "serve"]


def plain(text: str) -> str:
    """Rich wraps long lines and draws boxes; compare on words only."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)


def test_help_lists_every_design_subcommand():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in DESIGN_COMMANDS:
        assert re.search(rf"\b{command}\b", result.output), command


def test_validate_names_missing_timestamp_and_exits_1(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("customer_id,amount\nA,3\n")
    result = runner.invoke(app, ["validate", "--transactions", str(path)])
    assert result.exit_code == 1
    assert "'timestamp'" in plain(result.output)


def test_validate_says_values_are_orders_without_amounts(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("customer_id,timestamp\nA,2023-01-01\nA,2023-02-01\n")
    result = runner.invoke(app, ["validate", "--transactions", str(path)])
    assert result.exit_code == 0
    text = plain(result.output)
    assert "in orders" in text and "every order counts as 1" in text


def test_validate_names_bad_timestamp_row_and_value(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("customer_id,timestamp,amount\nA,2020-01-01,1\nB,31/31/2020,2\n")
    result = runner.invoke(app, ["validate", "--transactions", str(path)])
    text = plain(result.output)
    assert result.exit_code == 1
    assert "'timestamp'" in text and "row 2" in text and "'31/31/2020'" in text


def test_validate_report_on_good_data(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("cid,ts,amt\nA,2020-01-01,10\nA,2020-02-01,-2\nB,2020-01-05,5\n")
    result = runner.invoke(
        app,
        [
            "validate",
            "-t",
            str(path),
            "--map",
            "customer_id=cid",
            "--map",
            "timestamp=ts",
            "--map",
            "amount=amt",
        ],
    )
    text = plain(result.output)
    assert result.exit_code == 0, text
    assert "customers 2" in text and "orders 3" in text and "2020-01-01 to 2020-02-01" in text
    assert "refund share 13.3%" in text and "refunds" in text


def test_malformed_map_option_is_a_usage_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("customer_id,timestamp,amount\nA,2020-01-01,1\n")
    result = runner.invoke(app, ["validate", "-t", str(path), "--map", "customer_id"])
    assert result.exit_code == 2
    assert "CONTRACT_COLUMN=YOUR_COLUMN" in plain(result.output)
