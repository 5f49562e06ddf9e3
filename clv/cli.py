"""`clv`: the command line. Thin: parse options, call library code, render results.

Exit codes: 0 success, 1 the data or model is not usable (a clear message says why),
2 wrong usage (including commands not built yet).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import sys
import time
import warnings
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from config import Settings, load_settings

app = typer.Typer(
    name="clv",
    help="Customer lifetime value: features, training, scoring, exports and the HTTP service.\n\n"
    "Configuration comes from clv.toml (or $CLV_CONFIG) and CLV_* environment variables; "
    "options given here win.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Docstrings are wrapped in the source; markdown joins their lines into the terminal's width.
    rich_markup_mode="markdown",
)
console = Console(stderr=True)
# Wide enough for the backtest table when output goes to a file or CI log (no terminal to measure).
out = Console(width=None if sys.stdout.isatty() else 120)

# Options shared by the commands that read the shop's data.
TransactionsOpt = Annotated[
    str | None,
    typer.Option(
        "--transactions",
        "-t",
        help="Transactions file (CSV or Parquet; on Spark also a directory, glob or object-store URI). "
        "Default: clv.toml.",
    ),
]
EventsOpt = Annotated[str | None, typer.Option("--events", help="Optional behavioural events file.")]
CustomersOpt = Annotated[str | None, typer.Option("--customers", help="Optional customer attributes file.")]


class Engine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


EngineOpt = Annotated[
    Engine | None,
    typer.Option(
        "--engine",
        help="Where features and labels are computed: duckdb (this machine) or spark (on \\[engine] master, "
        "local\\[*] by default; needs `make spark`). Default: \\[engine] backend, duckdb.",
    ),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="Column mapping CONTRACT=YOURS, repeatable, e.g. --map customer_id=CustomerID --map amount=Revenue.",
    ),
]
TsFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--timestamp-format",
        help="strptime format for non-ISO timestamps, e.g. '%d/%m/%Y %H:%M' (default engine only).",
    ),
]
ScoresOpt = Annotated[
    Path | None, typer.Option("--scores", help="Score table. Default: the served one (\\[serve] scores).")
]


def _check_as_of(value: dt.datetime | None) -> dt.datetime | None:
    """Refuse a cut-off after tomorrow or before 1900, as `/predict_history` refuses its `as_of`: features at a
    later cut-off count days not yet lived as silence (recency, p_alive), and `clv score --as-of` on a future
    date wrote every customer older than she is."""
    from features.contract import EARLIEST, latest_allowed

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if value is not None and not EARLIEST <= value <= latest_allowed(now):
        when = "before 1900" if value < EARLIEST else f"in the future (today is {now:%Y-%m-%d})"
        raise typer.BadParameter(
            f"{value:%Y-%m-%d} is {when}. Fix: give a date up to today, or leave --as-of out (the last "
            "transaction's date)."
        )
    return value


AsOfOpt = Annotated[
    dt.datetime | None,
    typer.Option(
        "--as-of",
        formats=["%Y-%m-%d"],
        callback=_check_as_of,
        help="Cut-off date (inclusive), up to today. Default: the last transaction date.",
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


@contextmanager
def progress(title: str):
    """A spinner whose text library code can update through the yielded callback.

    The callback is also where a stop is honoured a second time: Python swallows an exception raised while
    it runs a finalizer (`__del__`), so a signal that lands there would otherwise be lost (seen in CI: a
    SIGHUP during an Ibis finalizer, and the training ran to the end).
    """

    started = time.monotonic()
    # A spinner draws nothing when the output is a file or a pipe (`make train > log`, CI, `| tee`):
    # there each new message is a line of its own, with the minutes since the start.
    lines = not console.is_terminal
    last: list[str] = []

    def update(message: str) -> None:
        if _STOPPED:
            raise KeyboardInterrupt(signal.Signals(_STOPPED[0]).name)
        status.update(f"[bold]{title}[/]: {escape(message)}")
        if lines and last != [message]:
            last[:] = [message]
            elapsed = int(time.monotonic() - started)
            console.print(
                f"[{elapsed // 60}:{elapsed % 60:02d}] {title}: {escape(message)}",
                highlight=False,
                soft_wrap=True,
            )

    with console.status(f"[bold]{title}[/]") as status:
        yield update


def _settings(**overrides) -> Settings:
    from pydantic import ValidationError

    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: "
            + ("not a setting (remove it)" if e["type"] == "extra_forbidden" else e["msg"])
            for e in exc.errors()
        )
        raise fail(
            f"configuration (clv.toml, CLV_CONFIG or CLV_* variables): {problems}. The settings and their "
            "defaults are listed in the README, section Configuration."
        ) from None
    except (ValueError, FileNotFoundError) as exc:
        raise fail(f"configuration: {exc}") from None


def _settings_for_data(
    transactions, events, customers, mapping, timestamp_format, engine: Engine | None = None, **overrides
) -> Settings:
    """Settings where files named on the command line replace the configured data set as a whole."""
    from config import DataSettings
    from features.contract import parse_mapping

    try:
        parsed = parse_mapping(mapping)
    except ValueError as exc:
        raise fail(str(exc), code=2) from None
    if engine is not None:
        overrides["engine"] = {"backend": engine.value}
    settings = _settings(**overrides)
    if transactions is not None:
        data = DataSettings(
            transactions=transactions,
            events=events,
            customers=customers,
            mapping=parsed,
            timestamp_format=timestamp_format,
        )
        return settings.model_copy(update={"data": data})
    data = settings.data.model_copy(
        update={
            "mapping": parsed or settings.data.mapping,
            "timestamp_format": timestamp_format or settings.data.timestamp_format,
        }
    )
    return settings.model_copy(update={"data": data}).with_demo_fallback()


def _load(settings: Settings):
    """Load and validate the configured shop, or exit 1 with the contract's message."""
    from features.contract import ContractError, load_shop

    data = settings.data
    if not data.configured:
        raise fail(
            "no transactions given. Fix: pass --transactions PATH, set [data] transactions in clv.toml, "
            "or create the demo shop with `clv demo-data --out data/demo`."
        )
    if settings.engine.backend == "spark":
        return _load_on_spark(settings)
    try:
        with progress("Loading data") as update:
            update(str(data.transactions))
            return load_shop(
                data.transactions, data.events, data.customers, data.mapping, data.timestamp_format
            )
    except ContractError as exc:
        raise fail(str(exc)) from None


def _load_on_spark(settings: Settings):
    """Start Spark on [engine] master and load the configured shop there, or exit 1 saying why."""
    from features import spark
    from features.contract import ContractError

    data, engine = settings.data, settings.engine
    try:
        with progress("Starting Spark") as update:
            update(engine.master)
            backend = spark.connect(engine.master, engine.spark_conf)
        with progress("Loading data on Spark") as update:
            update(str(data.transactions))
            return spark.load_shop(
                backend, data.transactions, data.events, data.customers, data.mapping, data.timestamp_format
            )
    except (spark.EngineUnavailable, ContractError) as exc:
        raise fail(str(exc)) from None


@app.command("demo-data")
def demo_data(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the demo shop into.")],
    customers: Annotated[int, typer.Option("--customers", min=10, help="Number of customers.")] = 20_000,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; the same seed gives identical files.")
    ] = 0,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    if_unconfigured: Annotated[
        bool,
        typer.Option(
            "--if-unconfigured", help="Do nothing when clv.toml names data or the demo shop exists."
        ),
    ] = False,
) -> None:
    """Write a realistic synthetic shop (transactions, events, customers, and the latent truth)."""
    from demo.shop import write_demo_shop

    if fmt not in ("parquet", "csv"):
        raise fail("--format must be parquet or csv", code=2)
    if if_unconfigured:
        settings = _settings()
        if settings.data.configured or (out_dir / f"transactions.{fmt}").exists():
            console.print("Data is configured or the demo shop exists; not generating.")
            return
    with progress(f"Generating {customers:,} customers") as update:
        paths = write_demo_shop(out_dir, n_customers=customers, seed=seed, fmt=fmt, progress=update)
    for name, path in paths.items():
        out.print(f"{name:>13}: {path}", markup=False)


@app.command()
def validate(
    transactions: TransactionsOpt = None,
    events: EventsOpt = None,
    customers: CustomersOpt = None,
    mapping: MapOpt = None,
    timestamp_format: TsFormatOpt = None,
) -> None:
    """Check files against the data contract and print a report; exit 1 on errors."""
    from features.contract import load_shop

    settings = _settings_for_data(transactions, events, customers, mapping, timestamp_format)
    data = settings.data
    if not data.configured:
        raise fail(
            "no transactions given. Fix: pass --transactions PATH or set [data] transactions in clv.toml.", 2
        )
    with progress("Validating"):
        shop = load_shop(
            data.transactions,
            data.events,
            data.customers,
            data.mapping,
            data.timestamp_format,
            raise_on_error=False,
        )
    report = shop.report
    table = Table(title="Data report", show_header=False)
    for name, summary in report.tables.items():
        dropped = f" ({summary.dropped_rows:,} dropped)" if summary.dropped_rows else ""
        rows = "not read" if summary.rows is None else f"{summary.rows:,}{dropped}"
        table.add_row(f"{name} rows", f"{rows}  [dim]{escape(str(summary.path))}[/]")
    if "transactions" in report.tables and report.ok:
        table.add_row("customers", f"{report.customers:,}")
        table.add_row("orders", f"{report.orders:,}")
        table.add_row("date range", f"{report.first_timestamp:%Y-%m-%d} to {report.last_timestamp:%Y-%m-%d}")
        if report.has_amount:
            table.add_row("net revenue", f"{report.revenue:,.2f}")
            share = f"{report.refund_share:,.1%} of gross revenue"
            # Seen: "8354414.3%" from one refund of 2.5e9, read as the shop's refund rate.
            table.add_row(
                "refund share",
                share + (" (refunds exceed sales)" if report.refund_share > 1 else ""),
            )
        else:
            table.add_row("values", "in orders (no amount column: every order is worth 1)")
    out.print(table)
    for issue in report.warnings:
        out.print(f"[yellow]warning:[/] {escape(issue.message)}", highlight=False)
    for issue in report.errors:
        console.print(f"[bold red]error:[/] {escape(issue.message)}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)
    from training.pipeline import refusal
    from training.shop_data import ShopData

    # The file is fine as a file; "OK" after "`clv train` will refuse" read as if it could be trained on. The
    # same checks as `clv train`'s, so the two cannot disagree (seen: OK for a five-day log train refused).
    log = ShopData.from_shop(shop)
    if why := refusal(log, log.last_date, settings.train.horizon_days):
        out.print(
            f"[yellow]Not trainable[/]: the data follows the contract, but `clv train` (cut-off at the last "
            f"transaction date, {settings.train.horizon_days}-day horizon) will refuse it: {escape(why)}",
            highlight=False,
        )
        return
    out.print("[green]OK[/]: the data follows the contract.")


def _warn(message: str) -> None:
    console.print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False)


def _note(message: str, source: str = "") -> None:
    """What a reader of the numbers should know, on the output. `source`: where it comes from, when not from
    the command's own work (e.g. "model v3, from its training")."""
    origin = f" ({escape(source)})" if source else ""
    out.print(f"[yellow]note{origin}:[/] {escape(message)}", highlight=False)


def _check_out(path: Path, suffixes: tuple[str, ...] = (".parquet", ".csv"), why: str = "") -> Path | None:
    """Refuse an --out that cannot be written, before any work (exit code 2, as for a bad option); make
    nothing, so a command that refuses later leaves nothing behind. Returns the top-most directory the
    output will create (`features.files.check_output`), for `_say_created` once it is written."""
    from features.files import check_output

    try:
        return check_output(path, suffixes)
    except ValueError as exc:
        raise fail(f"--out: {exc}{why}", code=2) from None


def _say_created(created: Path | None, path: Path, given: Path | None = None) -> None:
    """Say which directories writing `path` made (`created`: the top-most, from `_check_out`): a typo in
    --out must not scatter files unnoticed. `given`: the --out as typed, when `path` is a file inside it
    (`clv campaigns`' directory)."""
    if created:
        # Name every level: a typo may have made several.
        parents = "" if created == path.parent else f" and its parents from {created}"
        console.print(
            f"created the directory {path.parent}{parents} for --out {given or path}",
            highlight=False,
            markup=False,
        )


def _not_an_input(out_path: Path, settings: Settings, **others: Path | str | None) -> None:
    """Refuse an --out that is one of the input files (it would be replaced by the result), exit code 2:
    the shop's files in `settings.data` and the command's `others` (name -> path, e.g. its score table)."""
    inputs = {name: getattr(settings.data, name) for name in ("transactions", "events", "customers")}
    for name, given in {**inputs, **others}.items():
        if given and ":" not in str(given) and Path(given).resolve() == out_path.resolve():
            raise fail(
                f"--out {out_path} is the {name} input, which it would replace. Fix: write elsewhere.", 2
            )


def _as_date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value else None


@app.command()
def features(
    out_path: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Parquet file to write the feature table to (on Spark: a Parquet dataset directory).",
        ),
    ],
    transactions: TransactionsOpt = None,
    events: EventsOpt = None,
    customers: CustomersOpt = None,
    mapping: MapOpt = None,
    timestamp_format: TsFormatOpt = None,
    as_of: AsOfOpt = None,
    engine: EngineOpt = None,
) -> None:
    """Compute point-in-time features (one row per customer with an order) at a cut-off date."""
    from features.orders import check_cutoff
    from features.pipeline import write_features

    settings = _settings_for_data(transactions, events, customers, mapping, timestamp_format, engine)
    _not_an_input(out_path, settings)
    created = _check_out(out_path, (".parquet",))
    shop = _load(settings)
    first, last = shop.report.first_timestamp.date(), shop.report.last_timestamp.date()
    cutoff = _as_date(as_of) or last
    try:
        # A feature table has no horizon of its own; the configured one is the line `clv train` would use.
        late = check_cutoff(cutoff, first, last, settings.train.horizon_days)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if late:
        _warn(late)
    tables = shop.tables()
    with progress("Features") as update:
        summary = write_features(
            out_path, cutoff, tables["transactions"], tables["events"], tables["customers"], update
        )
    _say_created(created, out_path)
    out.print(
        f"Wrote {summary['rows']:,} customers x {summary['columns']} columns at as_of {summary['as_of']} "
        f"to {summary['path']} in {summary['seconds']:.1f} s (feature definitions v{summary['features_version']}"
        f", engine {settings.engine.backend}).",
        markup=False,
    )
    if not shop.has_events:
        out.print("[dim]No events given: behavioural columns are empty (has_events = false).[/]")


@app.command()
def train(
    transactions: TransactionsOpt = None,
    events: EventsOpt = None,
    customers: CustomersOpt = None,
    mapping: MapOpt = None,
    timestamp_format: TsFormatOpt = None,
    as_of: AsOfOpt = None,
    horizon_days: Annotated[
        int | None, typer.Option("--horizon-days", min=1, max=3650, help="Prediction horizon. Default: 365.")
    ] = None,
    engine: EngineOpt = None,
) -> None:
    """Fit, backtest against baselines, log to MLflow, register, and promote if better.

    On --engine spark the feature and label snapshots are computed by Spark and the models are fitted
    here, on the driver (README, Scaling out)."""
    from training.pipeline import train as run_training
    from training.windows import NotEnoughHistory

    settings = _settings_for_data(
        transactions,
        events,
        customers,
        mapping,
        timestamp_format,
        engine,
        train={"horizon_days": horizon_days},
    )
    shop = _load(settings)
    try:
        with progress("Training") as update:
            result = run_training(shop, settings, _as_date(as_of), update, _warn)
    except (NotEnoughHistory, ValueError) as exc:
        raise fail(str(exc)) from None
    _print_training(result, settings)


def _print_training(result, settings: Settings) -> None:
    from training.backtest import METRIC_LABELS as columns

    table = Table(
        title=f"Backtest: cut-off {result.backtest.cutoff}, next {result.backtest.horizon_days} days, "
        f"{len(result.backtest.frame):,} customers"
    )
    table.add_column("model")
    for header in columns.values():
        table.add_column(header, justify="right")
    for model, row in result.comparison().iterrows():
        table.add_row(
            model,
            *[
                ("" if column not in row or row[column] != row[column] else f"{row[column]:.3f}")
                for column in columns
            ],
        )
    out.print(table)
    value = "orders" if result.value_unit == "orders" else "revenue"
    out.print(
        f"Ranking (higher is better): Spearman, Gini, top 10% = share of {value} in the predicted top decile. "
        "Errors (lower is better): decile MAPE, Brier; total err = predicted / actual total - 1 (closer to 0 is "
        "better). Coverage: share of actuals in \\[low, high]."
    )
    _print_suggestion_backtests(result.backtest)
    served = (
        "the full model (buy-till-you-die base, boosted models and stacks)"
        if result.served_model == "hybrid"
        else f"the buy-till-you-die base alone ({result.served_base})"
    )
    unchecked = result.served_model == "hybrid" and not result.backtest.checked()
    out.print(
        f"Serves {served}."
        + (
            " It has no row above: the backtest could only fit the base at its cut-off (see the notes)."
            if unchecked
            else ""
        )
    )
    for note in result.notes:
        _note(note)
    verdict = "[green]promoted to champion[/]" if result.promoted else "[yellow]not promoted[/]"
    out.print(
        f"Registered {escape(settings.mlflow.registered_model)} v{result.version}: {verdict} "
        f"({escape(result.reason)})."
    )
    uri = settings.mlflow.tracking_uri
    browse = (
        f"open [bold]{escape(uri)}[/]"  # a tracking server has its own UI
        if uri.startswith(("http://", "https://"))
        else f"[bold]make mlflow-ui[/] in the project, or [bold]mlflow ui --backend-store-uri {escape(uri)}[/]"
    )
    out.print(f"Trained in {result.seconds:.0f} s. MLflow run {result.run_id}. Browse it with: {browse}")


def _print_suggestion_backtests(backtest) -> None:
    """The next-order and cross-sell backtests, each beside its baseline (training.next_order_backtest,
    training.cross_sell)."""
    from training.cross_sell import CROSS_SELL_LABELS, CROSS_SELL_METRIC_LABELS
    from training.next_order_backtest import NEXT_ORDER_LABELS, NEXT_ORDER_METRIC_LABELS

    def show(title: str, frame, labels: dict, headers: dict) -> None:
        table = Table(title=title)
        table.add_column("method")
        for header in headers.values():
            table.add_column(header, justify="right")
        for method, row in frame.iterrows():
            cells = [
                "" if row[c] != row[c] else (f"{row[c]:,.0f}" if c == "n_customers" else f"{row[c]:.3f}")
                for c in headers
            ]
            table.add_row(labels[method], *cells)
        out.print(table)

    if backtest.next_order is not None and not backtest.next_order["n_customers"].any():
        out.print(
            "Next order date: not measured on this window. No customer had both a date from the model (given "
            "only when an order within the window is likely enough: models/next_order.py) and the two purchase "
            "days before the cut-off that last order + average gap needs."
        )
    elif backtest.next_order is not None:
        show(
            "Next order date (same window)", backtest.next_order, NEXT_ORDER_LABELS, NEXT_ORDER_METRIC_LABELS
        )
        out.print(
            "Median abs err: days between the predicted and the first actual order, customers who ordered. "
            "Ordered by then: share who ordered by the predicted day; predicted: the share each method implies "
            "(p_alive / 2 for the model's median given alive, 1/2 for its median where the log shows no drop-out "
            "and for a due date)."
        )
    cross = backtest.cross_sell
    if cross is None:
        out.print("Cross-sell: not backtested (the transactions have no category or product column).")
        return
    headers = {c: label.format(k=cross.k) for c, label in CROSS_SELL_METRIC_LABELS.items()}
    show(f"Cross-sell suggestions by {cross.column} (same window)", cross.metrics, CROSS_SELL_LABELS, headers)
    out.print(
        f"Over the customers who bought something they did not buy regularly before: hit rate = share with one "
        f"of it in their top {cross.k}, recall = mean share of it there."
    )
    if cross.note:
        out.print("Served: the most popular items, which did better here than the rules (see the notes).")
    elif "behaviour" in cross.metrics.index:
        served = "with" if cross.behaviour else "without"
        out.print(
            f"Served {served} what customers viewed or carted and did not buy ([cross_sell] behaviour = "
            f"{str(cross.behaviour).lower()}).",
            markup=False,  # "[cross_sell]" is a section name, not a style: rich printed "( behaviour = true)"
        )


@app.command()
def score(
    out_path: Annotated[
        Path,
        typer.Option("--out", help="Score table (.parquet or .csv; on Spark: a Parquet dataset directory)."),
    ],
    transactions: TransactionsOpt = None,
    events: EventsOpt = None,
    customers: CustomersOpt = None,
    mapping: MapOpt = None,
    timestamp_format: TsFormatOpt = None,
    as_of: AsOfOpt = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model URI. Default: models:/clv@champion.")
    ] = None,
    engine: EngineOpt = None,
) -> None:
    """Score every customer with the champion (or the given) model.

    On --engine spark the features are computed and the model applied by Spark's executors
    (mlflow.pyfunc.spark_udf); the table has the same columns and values."""
    from training.loading import model_label
    from training.registry import ModelNotFound
    from training.score import ScoreSummary
    from training.score import score as run_scoring

    settings = _settings_for_data(transactions, events, customers, mapping, timestamp_format, engine)
    on_spark = settings.engine.backend == "spark"
    _not_an_input(out_path, settings)
    created = _check_out(
        out_path,
        (".parquet",) if on_spark else (".parquet", ".csv"),
        " (the Spark engine writes Parquet datasets; `clv export` makes CSV lists from them)"
        if on_spark
        else "",
    )
    shop = _load(settings)
    try:
        with progress("Scoring") as update:
            if on_spark:
                from training.spark_score import score_on_spark

                summary = score_on_spark(shop, settings, out_path, _as_date(as_of), model, update, _warn)
            else:
                table, loaded = run_scoring(shop, settings, out_path, _as_date(as_of), model, update, _warn)
                summary = ScoreSummary.of(table, loaded.card.notes)
    except (ModelNotFound, ValueError) as exc:
        raise fail(str(exc)) from None
    _say_created(created, out_path)
    out.print(
        f"Wrote {summary.rows:,} customers to {out_path} ({model_label(summary.model_version)}, "
        f"as_of {summary.as_of}, horizon {summary.horizon_days} days). "
        f"Total predicted value {summary.total_value:,.0f}"
        + (" orders." if summary.value_unit == "orders" else "."),
        markup=False,
    )
    out.print("Segments: " + ", ".join(f"{name} {count:,}" for name, count in summary.segments.items()))
    if empty := summary.empty_deciles_note():
        _note(empty)
    # What `clv train` said about this model, for whoever only runs `clv score`.
    for note in summary.notes:
        _note(note, f"{model_label(summary.model_version)}, from its training")


# POST /export's body fields -> `clv export`'s options, so a filter error names what the user typed.
EXPORT_OPTIONS = {
    "segment": "--segment",
    "action": "--action",
    "top": "--top",
    "min_clv": "--min-clv",
    "churn_min": "--churn-min",
    "churn_max": "--churn-max",
}


@app.command()
def export(
    out_path: Annotated[Path, typer.Option("--out", help="File to write the list to (.csv or .parquet).")],
    scores: ScoresOpt = None,
    segment: Annotated[
        list[str] | None, typer.Option("--segment", help="Only these segments (repeat or comma-separate).")
    ] = None,
    action: Annotated[
        list[str] | None,
        typer.Option("--action", help="Only these next best actions (repeat or comma-separate)."),
    ] = None,
    top: Annotated[
        str | None,
        typer.Option(
            "--top",
            help=(
                "Top N customers, or top P% of the filtered list (rounded up: 10% of 1,525 rows is 153, "
                "where value_decile 10, at most 10% with ties kept together, may hold fewer)."
            ),
        ),
    ] = None,
    min_clv: Annotated[float | None, typer.Option("--min-clv", help="Minimum predicted CLV.")] = None,
    churn_min: Annotated[
        float | None, typer.Option("--churn-min", help="Minimum churn probability (0-1).")
    ] = None,
    churn_max: Annotated[
        float | None, typer.Option("--churn-max", help="Maximum churn probability (0-1).")
    ] = None,
) -> None:
    """Export a ranked, filtered customer list for a campaign (the same filters as POST /export)."""
    from pydantic import ValidationError

    from features.files import write_frame
    from serving.export import ExportFilter, apply_filter, to_csv
    from serving.messages import describe_validation
    from serving.scores import ScoresUnavailable, ScoreTable

    created = _check_out(out_path)
    settings = _settings(serve={"scores": scores})
    _not_an_input(out_path, settings, **{"score table": settings.serve.scores})
    try:
        spec = ExportFilter(
            segment=",".join(segment) if segment else None,
            action=",".join(action) if action else None,
            top=top,
            min_clv=min_clv,
            churn_min=churn_min,
            churn_max=churn_max,
        )
        table = ScoreTable.load(settings.serve.scores)
    except ValidationError as exc:
        raise fail(describe_validation(exc.errors(), "/export", EXPORT_OPTIONS), code=2) from None
    except ScoresUnavailable as exc:
        raise fail(str(exc)) from None
    selected = apply_filter(table.frame, spec)
    if out_path.suffix.lower() == ".csv":
        from features.files import atomic_path

        with atomic_path(out_path) as tmp:
            tmp.write_text(to_csv(selected))
    else:
        write_frame(selected, out_path)
    _say_created(created, out_path)
    if selected.empty:
        frame = table.frame
        _warn(
            f"no customer matches {spec.describe()}: the score table's predicted_clv runs from "
            f"{frame['predicted_clv'].min():,.2f} to {frame['predicted_clv'].max():,.2f} and churn_prob from "
            f"{_probability(frame['churn_prob'].min())} to {_probability(frame['churn_prob'].max())}; the file holds "
            "the header only"
        )
    out.print(
        f"Wrote {len(selected):,} of {len(table):,} customers to {out_path} ({spec.describe()}); "
        f"predicted value {selected['predicted_clv'].sum():,.0f}{_unit(table.frame)}.",
        markup=False,
    )


def _probability(value: float) -> str:
    """`value` with two decimals, or as many as keep a probability strictly between 0 and 1 from reading as
    a certainty (seen: churn_prob "from 0.03 to 1.00" where no row was 1; its largest was 0.99998)."""
    text = f"{value:.2f}"
    return f"{value:.6g}" if 0 < value < 1 and text in ("0.00", "1.00") else text


def _unit(frame) -> str:
    """The unit after a list's total: " orders" when the score table's value_unit says so, else "" (currency).
    Read from the whole table: an empty list has no rows to say it."""
    return " orders" if "value_unit" in frame and (frame["value_unit"] == "orders").any() else ""


def _scores_and_shop(scores: Path | None, settings: Settings):
    """The score table (`--scores` or `[serve] scores`) and the shop on DuckDB (None when no
    transactions are given or configured), or exit 1 saying why."""
    from serving.scores import ScoresUnavailable, ScoreTable

    try:
        table = ScoreTable.load(scores or settings.serve.scores)
    except ScoresUnavailable as exc:
        raise fail(str(exc)) from None
    # The lists and tables read a few columns once: the default engine, whatever [engine] says.
    duckdb = settings.model_copy(update={"engine": settings.engine.model_copy(update={"backend": "duckdb"})})
    return table, (_load(duckdb) if settings.data.configured else None)


@app.command()
def campaigns(
    out_dir: Annotated[
        Path,
        typer.Option("--out", help="Directory for the lists (one CAMPAIGN.csv each, e.g. win_back.csv)."),
    ],
    scores: ScoresOpt = None,
    transactions: TransactionsOpt = None,
    events: EventsOpt = None,
    customers: CustomersOpt = None,
    mapping: MapOpt = None,
    timestamp_format: TsFormatOpt = None,
) -> None:
    """Write one ranked list per lifecycle campaign (welcome, birthday, anniversary, abandoned_cart,
    win_back, upsell, cross_sell, promo); rules and windows in \\[campaigns].

    The transactions (and events, customers) give first orders, birthdays and carts at the scores'
    as_of; without them only the lists the score table alone can make are written."""
    from serving.campaigns import campaign_lists, write_campaigns

    if out_dir.exists() and not out_dir.is_dir():
        raise fail(
            f"--out {out_dir} is a file; campaigns are written as one CSV per list. Fix: name a directory.", 2
        )
    settings = _settings_for_data(transactions, events, customers, mapping, timestamp_format)
    # The lists are <campaign>.csv files in the directory: it must be creatable and writable first.
    created = _check_out(out_dir / "campaign.csv", (".csv",))
    table, shop = _scores_and_shop(scores, settings)
    try:
        with progress("Campaign lists") as update:
            update("lifecycle dates")
            result = campaign_lists(table.frame, shop, settings)
            written, stale = write_campaigns(result, out_dir)
    except ValueError as exc:
        raise fail(str(exc)) from None
    _say_created(created, out_dir / "campaign.csv", given=out_dir)
    for name, path in written.items():
        frame = result.lists[name]
        out.print(
            f"{name}: {len(frame):,} customers, expected value {frame['expected_value'].sum():,.0f}"
            f"{_unit(table.frame)} -> {path}",
            highlight=False,
            markup=False,
        )
    for path in stale:
        out.print(
            f"[yellow]removed[/] {escape(str(path))}: an earlier run's list, which this run did not make",
            highlight=False,
        )
    for note in result.notes:
        _note(note)


@app.command()
def economics(
    spend: Annotated[
        Path | None,
        typer.Option(
            "--spend", help="Acquisition spend per channel and month (channel, month YYYY-MM, spend)."
        ),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the table by channel and monthly cohort (.csv/.parquet)."),
    ] = None,
    retention_lift: Annotated[
        float | None,
        typer.Option(
            "--retention-lift",
            min=-100,
            max=100,
            help="Also the retention what-if: every customer's probability of being alive up this many "
            "percentage points; total predicted value and profit before and after.",
        ),
    ] = None,
    scores: ScoresOpt = None,
    transactions: TransactionsOpt = None,
    events: EventsOpt = None,
    customers: CustomersOpt = None,
    mapping: MapOpt = None,
    timestamp_format: TsFormatOpt = None,
) -> None:
    """CLV:CAC, payback months and profit CLV per acquisition channel (and monthly cohort with --out).

    Channels come from the customers table's acquisition_channel; margin from \\[train] margin. With no
    data configured, the demo shop and its spend file."""
    from features.files import write_frame
    from serving.economics import NoChannels, ValuesInOrders, what_if
    from serving.economics import economics as run_economics

    created = None if out_path is None else _check_out(out_path)
    settings = _settings_for_data(transactions, events, customers, mapping, timestamp_format)
    spend = spend or (Path(settings.economics.spend) if settings.economics.spend else None)
    if spend is None:
        from config import DEMO_DIR

        # A demo shop made before demo shops had a spend file: remaking it is the one-step fix.
        older_demo = (
            " The demo shop in data/demo has no spend.csv (made by an older version): `make demo` remakes it "
            "with one (the same tables for the same seed)."
            if settings.data.transactions == str(DEMO_DIR / "transactions.parquet")
            else ""
        )
        raise fail(
            f"no spend file. Fix: pass --spend PATH or set [economics] spend in clv.toml.{older_demo}", 2
        )
    if out_path is not None:
        _not_an_input(out_path, settings, spend=spend, **{"score table": scores or settings.serve.scores})
    table, shop = _scores_and_shop(scores, settings)
    if shop is None:
        raise fail(
            "no transactions given. Fix: pass --transactions PATH (and --customers PATH for channels)."
        )
    try:
        result = run_economics(table.frame, shop, spend, settings)
        lifted = None if retention_lift is None else what_if(table.frame, retention_lift, settings)
    except (ValuesInOrders, NoChannels, ValueError) as exc:
        raise fail(str(exc)) from None
    horizon = table.frame["horizon_days"].iloc[0] if "horizon_days" in table.frame else None
    out.print(_economics_view(result.by_channel, result.as_of, horizon))
    for warning in result.warnings:
        _warn(warning)
    for note in result.notes:
        _note(note)
    if result.margin is None:
        out.print("No \\[train] margin: clv_to_cac, payback_months and profit_clv count revenue, not margin.")
    if lifted is not None:
        _print_what_if(lifted, result.margin)
    if out_path is not None:
        write_frame(result.by_cohort, out_path)
        _say_created(created, out_path)
        out.print(f"Wrote {len(result.by_cohort):,} channel and cohort rows to {out_path}.", markup=False)


# The printed columns (all of them would not fit 100 columns): header -> column of the table by channel.
# revenue_to_date and predicted_clv, the two parts of clv, are in --out's table per channel and cohort.
ECONOMICS_VIEW = {
    "customers": "customers",
    "spend": "spend",
    "cac": "cac",
    "clv": "clv",
    "clv:cac": "clv_to_cac",
    "payback\nmonths": "payback_months",
    "profit\nclv": "profit_clv",
}
SPEND_BASED = {"spend", "cac", "clv_to_cac", "payback_months", "profit_clv"}


def _economics_cell(column: str, value: float, unpriced: bool) -> str:
    """A channel without spend rows reads "unknown" where its numbers need the spend: empty means "not
    yet" (payback) or "no customers"."""
    if unpriced and column in SPEND_BASED:
        return "unknown"
    if value != value:
        return ""
    # Payback is a whole number of months, as on the page.
    return f"{value:,.0f}" if column in ("customers", "payback_months") else f"{value:,.2f}"


def _economics_view(by_channel, as_of: dt.date, horizon_days: int | None) -> Table:
    """The table by channel as printed: channel names and numbers in full (folded, never cut with …). The
    caption names the score table's horizon: clv holds the value predicted over it, not a lifetime."""
    over = "" if horizon_days is None else f" over the next {int(horizon_days):,} days"
    view = Table(
        title=f"Acquisition economics at {as_of} (by channel)",
        caption=f"clv = (revenue to date + predicted_clv{over}) / customers; both, per cohort, with --out",
    )
    view.add_column("channel", no_wrap=True, overflow="fold")
    for header in ECONOMICS_VIEW:
        view.add_column(header, justify="right", no_wrap=True, overflow="fold")
    for row in by_channel.itertuples(index=False):
        cells = {c: getattr(row, c) for c in ECONOMICS_VIEW.values()}
        unpriced = row.spend != row.spend
        shown = [_economics_cell(c, v, unpriced) for c, v in cells.items()]
        view.add_row(escape(str(row.acquisition_channel)), *shown)
    return view


def _print_what_if(w: dict, margin: float | None) -> None:
    """The model's retention what-if (serving.economics.what_if) in two lines."""
    share = "" if w["value_change_share"] is None else f" ({w['value_change_share']:+.1%})"
    profit = "profit" if margin is not None else "profit (revenue: no \\[train] margin)"
    out.print(
        f"Retention up {w['lift_points']:g} points (each customer's probability alive, capped at 1; "
        f"{w['contacted']:,} of {w['customers']:,} customers reached): predicted value "
        f"{w['value_before']:,.0f} -> {w['value_after']:,.0f}{share}; {profit} {w['profit_before']:,.0f} -> "
        f"{w['profit_after']:,.0f} ({w['profit_change']:+,.0f}, after {w['retention_spend']:,.0f} retention "
        "spend: \\[economics] retention_cost per customer reached).",
        highlight=False,
    )
    if unknown := w.get("p_alive_unknown"):
        out.print(
            f"{unknown:,} customers with an empty p_alive were not reached: the log shows no drop-out (see the "
            "model's notes), so whether they are still customers, and what keeping them adds, is not known.",
            highlight=False,
        )


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(
            "--host", help="Address to listen on. Default: 127.0.0.1 (this machine only); 0.0.0.0 for all."
        ),
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to listen on. Default: 3000.")] = None,
) -> None:
    """Serve predictions over HTTP (BentoML) and the marketer page at /ui."""
    from serving.run import NotReadyToServe, run

    # Like the commands that read data: with nothing configured the demo shop (and its spend file) is
    # the service's [data], so POST /campaigns and GET /economics answer for it after `make train`.
    settings = _settings(serve={"host": host, "port": port}).with_demo_fallback()
    try:
        code = run(settings)
    except NotReadyToServe as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="Registered model version to make champion.")],
) -> None:
    """Move the champion alias to a model version by hand (no gate; the version must load with this code)."""
    from training.registry import ModelNotFound, Registry, RegistryError

    registry = Registry(_settings().mlflow)
    try:
        previous = registry.promote(version, check_loads=True)
    except (ModelNotFound, RegistryError) as exc:
        raise fail(f"{str(exc).rstrip('.')}. The champion was not moved.") from None
    # The version's gate tag said why the gate did not promote it; say what happened since.
    registry.tag(version, {"gate": f"promoted by hand with `clv promote {version}`"})
    out.print(
        f"{registry.name}@{registry.alias} -> v{version}" + (f" (was v{previous})" if previous else ""),
        markup=False,
    )


@app.command()
def rollback() -> None:
    """Move the champion alias back to the previous champion."""
    from training.registry import Registry, RegistryError

    registry = Registry(_settings().mlflow)
    try:
        was, now = registry.rollback()
    except RegistryError as exc:
        raise fail(str(exc)) from None
    out.print(f"{registry.name}@{registry.alias} -> v{now} (was v{was})", markup=False)


def quiet_mlflow() -> None:
    """Keep MLflow's routine chatter out of the product's output (also used by the benchmarks)."""
    # MLflow and its database migrations log at INFO on every call; the CLI reports what matters itself.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for noisy in ("mlflow", "alembic", "bentoml"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Counts in the signature are integers on purpose; MLflow's hint about missing values does not apply.
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")


def main() -> None:
    quiet_mlflow()
    # A stop (Ctrl-C, kill, a scheduler, a closed terminal) unwinds the command, so that an MLflow run is
    # marked FAILED instead of RUNNING forever and temporary files are removed (`atomic_path`). `clv serve`
    # installs its own handlers, which pass the signal on to the server.
    for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _interrupt)
    signal.signal(signal.SIGALRM, _stop_when_written)
    sys.unraisablehook = _quiet_when_stopping
    try:
        app()
    except BaseException as exc:
        # Any command that opens the MLflow store can meet this; its module is loaded only by those commands.
        tracking = sys.modules.get("training.tracking")
        if tracking is not None and isinstance(exc, tracking.StoreUnavailable):
            sys.exit(fail(str(exc)).exit_code)
        # DuckDB turns the interrupt of a running query into its own RuntimeError, hence the record.
        if not (_STOPPED or isinstance(exc, KeyboardInterrupt)):
            raise
        # A stop waiting for a database write may have been raised by `progress` instead: no check is due.
        signal.setitimer(signal.ITIMER_REAL, 0)
        console.print("interrupted")
        sys.exit(128 + (_STOPPED[0] if _STOPPED else signal.SIGINT))


# The signals received, in order (`main`).
_STOPPED: list[int] = []


# Modules that write to MLflow's database. A stop raised inside them is logged by SQLAlchemy with a traceback
# before it unwinds (the pool's "Exception during reset or similar" when it lands in the rollback of a
# connection going back to the pool), so the stop waits until the write is over, checking every
# `_RECHECK_SECONDS`; a write that hangs (a locked database) holds it for `_MAX_WAIT_SECONDS` at the most.
_DATABASE_CODE = ("sqlalchemy", "alembic", "mlflow.store")
_RECHECK_SECONDS = 0.05
_MAX_WAIT_SECONDS = 10.0
# When the first stop arrived (time.monotonic), for `_MAX_WAIT_SECONDS`.
_STOPPED_AT: list[float] = []


def _interrupt(signum: int, frame) -> None:
    _STOPPED.append(signum)
    _STOPPED_AT.append(time.monotonic())
    if "features.spark" in sys.modules:
        sys.modules["features.spark"].abort()
    _stop_when_written(signum, frame)


def _stop_when_written(_signum: int, frame) -> None:
    """Raise the stop (KeyboardInterrupt), or, while `frame` is inside a database write, check again soon
    (SIGALRM, whose handler this is too)."""
    if _in_database_code(frame) and time.monotonic() - _STOPPED_AT[0] < _MAX_WAIT_SECONDS:
        signal.setitimer(signal.ITIMER_REAL, _RECHECK_SECONDS)
        return
    raise KeyboardInterrupt(signal.Signals(_STOPPED[0]).name)


def _in_database_code(frame) -> bool:
    """Whether the main thread, at `frame`, is running (or called from) one of `_DATABASE_CODE`."""
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if any(module == name or module.startswith(name + ".") for name in _DATABASE_CODE):
            return True
        frame = frame.f_back
    return False


def _quiet_when_stopping(unraisable, default=sys.unraisablehook) -> None:
    """No traceback from a finalizer once the command is stopping: a stop that landed in one is raised
    again by `progress` at the next step, and a finalizer that fails after a stop tore through a
    library's bookkeeping fails because of it (seen in CI: SIGTERM inside Ibis's equality cache, then
    `KeyError` in `Comparable.__del__` at exit, printed after "interrupted")."""
    if not _STOPPED:
        default(unraisable)


if __name__ == "__main__":
    main()
