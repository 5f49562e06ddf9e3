"""The `clv` command line as a user meets it: help, exit codes, messages."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pandas as pd
import pytest
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


def test_python_dash_m_clv_is_the_same_command_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("customer_id,amount\nA,3\n")
    result = subprocess.run(
        [sys.executable, "-m", "clv", "validate", "--transactions", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 1 and "'timestamp'" in plain(result.stdout + result.stderr)
    assert "Traceback" not in result.stderr


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


@pytest.mark.parametrize(
    ("row", "literal"),
    [
        ("A,[/red],1", "row 1 (line 2) has '[/red]'"),
        ("A,2020-01-01,[bold]x", "row 1 (line 2) has '[bold]x'"),
    ],
)
def test_validate_prints_cells_and_paths_with_brackets_as_they_are(tmp_path, row, literal):
    """Audit: Rich read brackets in messages as markup: '[/red]' raised MarkupError, '[bold]x' lost its tag."""
    folder = tmp_path / "[dim]shop"
    folder.mkdir()
    path = folder / "t.csv"
    path.write_text(f"customer_id,timestamp,amount\n{row}\n")
    result = runner.invoke(app, ["validate", "--transactions", str(path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    text = plain(result.output)
    assert literal in text and "[dim]shop" in text


def test_validate_of_a_missing_file_names_the_config_section(tmp_path):
    result = runner.invoke(app, ["validate", "--transactions", str(tmp_path / "[b]none.csv")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    text = plain(result.output)
    assert "[b]none.csv: no such file" in text and "or the [data] section of clv.toml" in text


@pytest.mark.parametrize("problem", ["missing file", "missing mapped column"])
def test_validate_does_not_report_zero_rows_for_a_file_it_could_not_read(tmp_path, problem):
    path = tmp_path / "t.csv"
    if problem == "missing mapped column":
        path.write_text("customer_id,timestamp,amount\nA,2020-01-01,1\n")
    result = runner.invoke(app, ["validate", "--transactions", str(path), "--map", "amount=Revenue"])
    text = plain(result.output)
    assert result.exit_code == 1 and "error:" in text
    assert "transactions rows not read" in text and "rows 0" not in text


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
    assert "refund share 13.3%" in text and "1 row is a refund or return" in text


def test_a_refund_share_beyond_all_sales_says_so(tmp_path):
    """Seen: one refund of 2.5e9 made the headline read "refund share 8354414.3% of gross revenue"."""
    path = tmp_path / "t.csv"
    path.write_text(
        "customer_id,timestamp,amount\nA,2020-01-01,100\nB,2020-01-02,200\nA,2020-01-05,-25000000\n"
    )
    text = plain(runner.invoke(app, ["validate", "-t", str(path)]).output)
    assert "refund share 8,333,333.3% of gross revenue (refunds exceed sales)" in text, text


@pytest.mark.parametrize(
    "option, says",
    [
        ("customer_id", "CONTRACT_COLUMN=YOUR_COLUMN"),
        # Exited 1 as a data error, where the malformed option above exited 2.
        (
            "revenue=amount",
            "'revenue', which is not a contract column. Fix: map one of acquisition_channel, ",
        ),
    ],
)
def test_a_bad_map_option_is_a_usage_error(tmp_path, option, says):
    path = tmp_path / "t.csv"
    path.write_text("customer_id,timestamp,amount\nA,2020-01-01,1\n")
    result = runner.invoke(app, ["validate", "-t", str(path), "--map", option])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert says in plain(result.output)


@pytest.mark.parametrize("command", ["score", "export", "features"])
def test_an_out_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch, command):
    """A directory or an unwritable place: exit 2 with the problem and the fix, no traceback, nothing written,
    and no work done first (no data is given, so anything past the check would fail differently). A missing
    directory is not made when the command refuses later (seen: an empty new/deeper/ left by a refusal)."""
    monkeypatch.chdir(tmp_path)
    suffix = ".parquet"
    cases = {
        str(tmp_path): "is a directory",
        str(tmp_path / "out.txt"): "must end in",
        f"/proc/clv-out{suffix}": "cannot write",  # not writable even by root
        f"/proc/clv-dir/out{suffix}": "cannot create",
    }
    for out, problem in cases.items():
        result = runner.invoke(app, [command, "--out", out])
        text = plain(result.output)
        assert result.exit_code == 2 and problem in text and "Traceback" not in text, (out, text)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "a-file").write_text("")
    result = runner.invoke(app, [command, "--out", str(tmp_path / "a-file" / f"out{suffix}")])
    assert result.exit_code == 2 and "a-file is a file" in plain(result.output), plain(result.output)
    result = runner.invoke(app, [command, "--out", str(tmp_path / "new" / "deeper" / f"out{suffix}")])
    assert result.exit_code != 0 and "created the directory" not in plain(result.output), plain(result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_missing_out_directory_is_made_with_the_output_and_said_so(tmp_path, monkeypatch):
    """Both levels are new: the message names the directory the file goes in and the top-most one made."""
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"customer_id": ["A", "A"], "timestamp": ["2024-01-01", "2024-02-01"]}).to_csv(
        "t.csv", index=False
    )
    out = tmp_path / "new" / "deeper" / "f.parquet"
    result = runner.invoke(app, ["features", "-t", "t.csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    created = f"created the directory {tmp_path / 'new' / 'deeper'} and its parents from {tmp_path / 'new'}"
    assert created in plain(result.output), plain(result.output)
    assert [p.name for p in out.parent.iterdir()] == ["f.parquet"]


def test_an_output_that_is_an_input_is_refused(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame(
        {"customer_id": ["A"], "timestamp": pd.to_datetime(["2020-01-01"]), "amount": [1.0]}
    ).to_parquet(path)
    result = runner.invoke(app, ["features", "--transactions", str(path), "--out", str(path)])
    assert result.exit_code == 2
    assert "is the transactions input" in plain(result.output)
    assert len(pd.read_parquet(path)) == 1


@pytest.mark.parametrize(
    "toml, words",
    [
        (
            "[campaigns.response_rates]\nwellcome = 0.1\n",
            "campaigns.response_rates: unknown campaign wellcome",
        ),
        ("[campaigns.response_rates]\nwelcome = 2\n", "campaigns.response_rates: response rates are shares"),
        ('[serve]\napi_keys = "secret:boss"\n', "serve.api_keys: API key entry 1 has role 'boss'"),
        ("[train]\nhorizon_days = 0\n", "train.horizon_days: Input should be greater than 0"),
        # A clv.toml of a version with a welcome window of its own: the message names what replaced it.
        (
            "[campaigns]\nwelcome_days = 30\n",
            "campaigns: welcome_days no longer exists: the welcome list takes the segment new (action "
            "welcome_series), whose line is [targeting] new_customer_days (default 60)",
        ),
    ],
)
def test_a_bad_setting_reads_like_every_other_configuration_error(tmp_path, monkeypatch, toml, words):
    """Errors raised by the settings' own checks read as pydantic's do: the field, then the problem, without
    pydantic's "Value error, " prefix in the middle of the sentence."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clv.toml").write_text(toml)
    result = runner.invoke(app, ["rollback"])
    text = plain(result.output)
    assert result.exit_code == 1 and "Traceback" not in text, text
    assert f"configuration (clv.toml, CLV_CONFIG or CLV_* variables): {words}" in text, text
    assert "Value error" not in text


def test_campaigns_that_refuse_leave_no_out_directory(tmp_path, monkeypatch):
    """Seen: `clv campaigns --out camp` with a missing score table said "created the directory camp" and
    left it empty; nothing is made when the command refuses."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["campaigns", "--out", "camp/lists", "--scores", "missing.parquet"])
    text = plain(result.output)
    assert result.exit_code == 1 and "no score table at missing.parquet" in text, text
    assert "created the directory" not in text and list(tmp_path.iterdir()) == [], text


def test_promote_of_a_missing_version_ends_its_sentence(tmp_path, monkeypatch):
    from training.registry import Registry, RegistryError

    # The registry opens its store before promoting: a store of the test's own, not an mlflow.db in the checkout.
    monkeypatch.setenv("CLV_MLFLOW__TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")

    def missing(self, version, check_loads=False):
        raise RegistryError(f"registered model 'clv' has no version {version}")

    monkeypatch.setattr(Registry, "promote", missing)
    result = runner.invoke(app, ["promote", "7"])
    assert result.exit_code == 1
    assert "has no version 7. The champion was not moved." in plain(result.output), result.output


@pytest.mark.parametrize(
    "options, words",
    [
        (["--churn-min", "0.9", "--churn-max", "0.2"], "--churn-min (0.9) is above --churn-max (0.2)"),
        (["--churn-min", "2"], "--churn-min: a churn probability is from 0 to 1 (0.3 for 30%), not 2"),
        (["--top", "0"], "--top: top must be a whole number of customers from 1 to"),
    ],
)
def test_export_filter_errors_name_the_options(tmp_path, options, words):
    """Seen: the API's wording on the command line, "body: churn_min (0.9) is above churn_max (0.2)". A bad
    value is a usage error (exit 2) like a value typer refuses (`--min-clv abc`), not exit 1."""
    result = runner.invoke(app, ["export", "--out", str(tmp_path / "x.csv"), *options])
    text = plain(result.output)
    assert result.exit_code == 2 and words in text and "body" not in text and "churn_m" not in text, text


def test_validate_counts_one_customer_in_the_singular(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("customer_id,timestamp,amount\nA,2020-01-01,1\nA,2020-02-01,2\n")
    result = runner.invoke(app, ["validate", "-t", str(path)])
    assert "only 1 customer;" in plain(result.output), result.output


def test_serve_without_a_trained_store_refuses_and_leaves_no_store_behind(tmp_path, monkeypatch):
    """Seen: `clv serve` in an empty directory refused ("run `make train` first") but created an empty
    mlflow.db there, which the next refusal then reported as a store without a model."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLV_MLFLOW__TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CLV_API_KEYS", "a-long-random-key-for-the-test:marketer")
    result = runner.invoke(app, ["serve", "--port", "3999"])
    text = plain(result.output)
    assert result.exit_code == 1 and "(the file does not exist)" in text and "run `make train` first" in text
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("store", ["server_down", "file_store"])
@pytest.mark.parametrize(
    "command", [["train", "--horizon-days", "30"], ["score", "--out", "scores.csv"], ["rollback"]]
)
def test_a_tracking_store_that_cannot_be_opened_is_named_with_the_fix(tmp_path, store, command):
    """Seen: MLFLOW_TRACKING_URI=http://host:port of a server that was down made `clv train` retry for minutes
    (MLflow's backoff) and die with "interrupted"; a file: store (MLflow 3 refuses new ones) ended in a
    traceback."""
    uri = f"http://127.0.0.1:{_closed_port()}" if store == "server_down" else (tmp_path / "mlruns").as_uri()
    log = tmp_path / "t.csv"
    log.write_text(
        "customer_id,timestamp,amount\n"
        + "".join(
            f"C{i},2024-0{1 + i % 3}-0{1 + i % 7},{10 + i}\nC{i},2024-06-1{i % 9},{12 + i}\n"
            for i in range(30)
        )
    )
    data = [] if command == ["rollback"] else ["--transactions", str(log)]
    result = subprocess.run(
        [sys.executable, "-m", "clv", *command, *data],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        timeout=120,
    )
    text = plain(result.stdout + result.stderr)
    assert result.returncode == 1, text
    assert "Traceback" not in result.stderr
    assert f"tracking {'server' if store == 'server_down' else 'store'} {uri} cannot be" in text
    fix = "Fix: start the server, or set" if store == "server_down" else "Fix: set"
    assert f"{fix} MLFLOW_TRACKING_URI" in text
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "scores.csv").exists()


def test_validate_of_a_log_train_will_refuse_does_not_end_with_ok(tmp_path, monkeypatch):
    """Seen: on a log where every customer bought once, validate warned that `clv train` will refuse, then closed
    with "OK: the data follows the contract"; on a five-day log and on one whose customers came back only in the
    backtest's window it said OK and train refused. Validate closes with train's own refusal, at the log's last
    date and the configured horizon (90 days)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLV_MLFLOW__TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CLV_TRAIN__HORIZON_DAYS", "90")
    one_time = "".join(
        f"S{i:03d},2023-{1 + i % 12:02d}-{1 + i % 28:02d},{10 + i}.5,s{i}\n" for i in range(80)
    )
    one_day = "".join(f"D{i:03d},2024-03-05,{10 + i}.0,d{i}\n" for i in range(60))
    five_days = "".join(
        f"F{i:03d},2024-03-0{1 + i % 5},{10 + i}.0,f{i}a\nF{i:03d},2024-03-05,9,f{i}b\n" for i in range(4)
    )
    # Everyone bought once in 2023; the 30 who came back did so in December 2024, inside the 90-day window.
    late = one_time + "".join(f"S{i:03d},2024-12-{1 + i % 28:02d},12,s{i}b\n" for i in range(30))
    # Informative warnings only (a refund, a zero amount, few customers): still OK.
    informative = "".join(
        f"R{i:03d},2023-{1 + i % 12:02d}-10,20,r{i}a\nR{i:03d},2024-{1 + i % 12:02d}-20,25,r{i}b\n"
        for i in range(30)
    )
    informative += "R000,2024-02-01,-5,r0c\nR001,2024-03-01,0,r1c\n"
    for name, rows, closing in (
        (
            "one_time",
            one_time,
            "none of the 80 customers who bought up to 2023-12-24 has bought on two different",
        ),
        ("one_day", one_day, "every transaction is on one day (2024-03-05)"),
        ("five_days", five_days, "Fix: train on a log whose transactions span at least 8 days."),
        ("late", late, "30 of 80 customers have bought on two different days, but none by 2024-09-29"),
        ("informative", informative, None),
    ):
        path = tmp_path / f"{name}.csv"
        path.write_text("customer_id,timestamp,amount,order_id\n" + rows)
        result = runner.invoke(app, ["validate", "--transactions", str(path)])
        text = plain(result.output)
        assert result.exit_code == 0 and "Traceback" not in text, text
        if closing is None:
            assert "OK: the data follows the contract." in text and "will refuse" not in text, text
            continue
        assert "OK" not in text, text
        last = text.split(
            "Not trainable: the data follows the contract, but `clv train` (cut-off at the last "
        )[1]
        assert "transaction date, 90-day horizon) will refuse it: " in last and closing in last, text
        trained = runner.invoke(app, ["train", "--transactions", str(path)])
        refused = plain(trained.output)
        assert trained.exit_code == 1 and closing in refused, refused
