"""Benchmark: accuracy on real logs. The model, trained and scored as `clv train` / `clv score` would, against
four baselines fitted on the same data, on what customers really bought after the cut-off.

    .venv/bin/python benchmarks/accuracy.py [--logs grocery,apparel,demo] [--cases 'apparel/2006*']
                                            [--quick] [--out results.json|results.csv]

Logs: every folder of the shared data directory (`--data-dir`, default /work/shared/data: `grocery`,
transactions only; `apparel`, with and without its customers.csv) and the demo shop
(`demo.shop.write_demo_shop(dir, n_customers=20000, seed=42)`, with events and customers and with
transactions only). Each log is cut at several cut-offs and horizons, including a short history (history
about equal to the horizon) and a young shop (about 13 weeks of history, a 52-week horizon).

For each case:
- the log is cut to the rows at or before the cut-off (and, for short histories, at or after the start)
  and written to a temporary folder, as a shop at that date would have it; the model is trained with
  `training.pipeline.train(shop, settings, cutoff)` (the horizon in `settings`) and scored with
  `training.score.score` against a throwaway MLflow store (SQLite in a temporary folder);
- four baselines are fitted on the same cut log's features at the cut-off: naive run-rate (revenue so far x
  H / days since the first purchase), the textbook formula (models.textbook.BasicCLV), BG/NBD + Gamma-Gamma
  and Pareto/NBD + Gamma-Gamma (models.btyd_clv.BTYDCLV; their churn is P(no purchase in H));
- the truth, computed here from the full log with pandas: for each customer with a purchase by the
  cut-off, net revenue in (cut-off, cut-off + H] clipped at 0 (a log without amounts: every order is worth
  1), and churned = no purchase in that window. Customers missing from a score table count as predicted 0
  and churn 1, as the shared bench's score.py does; the table says how many.

Metrics are models.metrics (the definitions of the shared bench's score.py). The row "model - best
baseline" is the model's metric minus the best baseline's on that column (for the total error: the
difference of absolute errors), with a 95% bootstrap interval (customers resampled with a fixed seed) and
a verdict: win/loss beyond noise when the interval excludes 0, within noise otherwise.
A case that fails (a log the contract refuses, a history too short to train) is printed as such and
the run goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fnmatch
import functools
import io
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config import load_settings  # noqa: E402
from demo.shop import write_demo_shop  # noqa: E402
from features.contract import load_shop  # noqa: E402
from models import metrics  # noqa: E402
from models.btyd_clv import BTYDCLV  # noqa: E402
from models.textbook import BasicCLV, RunRateCLV  # noqa: E402
from training.pipeline import train  # noqa: E402
from training.score import score  # noqa: E402
from training.shop_data import ShopData  # noqa: E402

DATA_DIR = Path("/work/shared/data")
DEMO = "demo"
MODEL = "model"
BASELINES = ("naive run-rate", "textbook formula", "BG/NBD + GG", "Pareto/NBD + GG")
DIFF = "model - best baseline"
# metric -> (header, +1 if higher is better, -1 if lower is better). The total error is compared by its
# absolute value.
COLUMNS = {
    "spearman": ("Spearman", 1),
    "normalized_gini": ("Gini", 1),
    "top_decile_capture": ("top 10%", 1),
    "decile_mape": ("decile MAPE", -1),
    "aggregate_error": ("total err", -1),
    "churn_auc": ("churn AUC", 1),
    "brier": ("Brier", -1),
}
CHURN_COLUMNS = ("churn_auc", "brier")
VERDICT_STYLE = {
    "win beyond noise": "bold green",
    "win within noise": "green",
    "loss within noise": "yellow",
    "loss beyond noise": "bold red",
}
MLFLOW_ENVIRONMENT = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID")
AMOUNT_TOLERANCE = 1e-6  # as features.orders: a net amount at or below this is not a purchase


# ---------------------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Split:
    cutoff: dt.date
    horizon_days: int
    start: dt.date | None = None  # the history starts here; None: the log's first day
    note: str = ""


@dataclass(frozen=True)
class Log:
    name: str
    transactions: Path
    events: Path | None
    customers: Path | None
    splits: tuple[Split, ...]
    # variant label -> (use events, use customers)
    variants: dict[str, tuple[bool, bool]]


@dataclass(frozen=True)
class Case:
    log: Log
    split: Split
    variant: str

    @property
    def id(self) -> str:
        s = self.split
        start = f"{s.start}.." if s.start else ""
        variant = re.sub(r"[^a-z0-9]+", "-", self.variant.lower()).strip("-")
        return f"{self.log.name}/{start}{s.cutoff}+{s.horizon_days}d/{variant}"


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


KNOWN_SPLITS = {
    "grocery": (
        Split(d("2006-12-31"), 364),
        Split(d("2007-06-30"), 182),
        Split(d("2006-03-31"), 364, note="young shop"),
    ),
    "apparel": (
        Split(d("2006-12-31"), 364),
        Split(d("2007-12-31"), 364),
        Split(d("2008-12-31"), 364),
        Split(d("2005-12-31"), 364, note="short history"),
        Split(d("2005-04-02"), 364, note="young shop"),
    ),
}


def default_splits(first: dt.date, last: dt.date) -> tuple[Split, ...]:
    """A log without suggested splits: the last year, a half year on a half year, a young shop."""
    year, half, young = 365, 182, 91
    out = []
    if (last - first).days > 2 * year:
        out.append(Split(last - dt.timedelta(days=year), year))
    if (last - first).days > 2 * half:
        start = last - dt.timedelta(days=2 * half)
        out.append(Split(start + dt.timedelta(days=half), half, start, "short history"))
    if (last - first).days > year + young:
        cutoff = last - dt.timedelta(days=year)
        out.append(Split(cutoff, year, cutoff - dt.timedelta(days=young), "young shop"))
    return tuple(out)


def demo_splits(last: dt.date) -> tuple[Split, ...]:
    nine_months, young = 273, 91
    year_cutoff = last - dt.timedelta(days=365)
    start = last - dt.timedelta(days=2 * nine_months)
    return (
        Split(year_cutoff, 365),
        Split(start + dt.timedelta(days=nine_months), nine_months, start, "short history"),
        Split(year_cutoff, 365, year_cutoff - dt.timedelta(days=young), "young shop"),
    )


def find_table(folder: Path, name: str) -> Path | None:
    for suffix in (".parquet", ".csv"):
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    return None


def real_logs(data_dir: Path) -> list[Log]:
    logs = []
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        transactions = find_table(folder, "transactions")
        if transactions is None:
            continue
        events, customers = find_table(folder, "events"), find_table(folder, "customers")
        splits = KNOWN_SPLITS.get(folder.name)
        if splits is None:
            stamps = timestamps(read_table(transactions)["timestamp"])
            splits = default_splits(stamps.min().date(), stamps.max().date())
        variants = {"transactions only": (False, False)}
        if customers is not None:
            variants["with customers"] = (False, True)
        if events is not None:
            variants["with events" + (" + customers" if customers else "")] = (True, customers is not None)
        logs.append(Log(folder.name, transactions, events, customers, splits, variants))
    return logs


def demo_log(folder: Path, n_customers: int, seed: int) -> Log:
    paths = write_demo_shop(folder, n_customers=n_customers, seed=seed)
    last = timestamps(read_table(paths["transactions"])["timestamp"]).max().date()
    return Log(
        DEMO,
        paths["transactions"],
        paths["events"],
        paths["customers"],
        demo_splits(last),
        {"events + customers": (True, True), "transactions only": (False, False)},
    )


# ---------------------------------------------------------------------------------------------- data


@functools.lru_cache(maxsize=4)
def read_table(path: Path) -> pd.DataFrame:
    """A file as the shop has it: CSV cells as text (a cut file keeps the same text), Parquet typed.

    Cached: callers must not modify the frame."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def timestamps(column: pd.Series) -> pd.Series:
    """Naive UTC timestamps (the contract's reading: naive is UTC, offsets are converted)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        stamps = pd.to_datetime(column)
        return stamps.dt.tz_convert("UTC").dt.tz_localize(None) if stamps.dt.tz is not None else stamps
    parsed = pd.to_datetime(column, utc=True, format="ISO8601")
    return parsed.dt.tz_localize(None)


def day_start(date: dt.date, days: int = 0) -> pd.Timestamp:
    return pd.Timestamp(date) + pd.Timedelta(days=days)


def write_like(frame: pd.DataFrame, source: Path, out: Path) -> Path:
    path = out / source.name
    if source.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def cut_files(case: Case, out: Path) -> tuple[Path, Path | None, Path | None]:
    """The case's log as the shop had it at the cut-off: rows in [start, cut-off], written like the source."""
    split, (use_events, use_customers) = case.split, case.log.variants[case.variant]
    begin = day_start(split.start) if split.start else pd.Timestamp.min
    end = day_start(split.cutoff, 1)

    def cut_rows(source: Path) -> Path:
        frame = read_table(source)
        stamps = timestamps(frame["timestamp"])
        return write_like(frame[((stamps >= begin) & (stamps < end)).to_numpy()], source, out)

    transactions = cut_rows(case.log.transactions)
    events = cut_rows(case.log.events) if use_events and case.log.events else None
    customers = None
    if use_customers and case.log.customers:
        frame = read_table(case.log.customers)
        if "signup_date" in frame:
            signup = pd.to_datetime(frame["signup_date"].replace("", None), errors="coerce")
            frame = frame[(signup.isna() | (signup < end)).to_numpy()]
        customers = write_like(frame, case.log.customers, out)
    return transactions, events, customers


def history_days(log: Log, split: Split) -> int | None:
    """Days from the first transaction of the case's history to the cut-off, both included."""
    stamps = timestamps(read_table(log.transactions)["timestamp"])
    begin = day_start(split.start) if split.start else pd.Timestamp.min
    seen = stamps[(stamps >= begin) & (stamps < day_start(split.cutoff, 1))]
    return None if seen.empty else (split.cutoff - seen.min().date()).days + 1


def truth_table(log: Log, split: Split) -> pd.DataFrame:
    """customer_id, holdout_revenue, holdout_orders, churned for every customer with a purchase by the cut-off.

    Independent of features/labels.py, but the same definitions: an order is an order_id (else a customer
    day); a purchase is an order whose net amount is > 0; revenue in the window is the sum of its rows,
    refunds included, clipped at 0; a purchase in the window is an order whose first row is in it and whose
    net amount up to the window's end is > 0. Without an amount column every order is worth 1.
    """
    frame = read_table(log.transactions)
    rows = pd.DataFrame(
        {"customer_id": frame["customer_id"].astype(str), "ts": timestamps(frame["timestamp"])}
    )
    window_start = day_start(split.cutoff, 1)
    window_end = day_start(split.cutoff, 1 + split.horizon_days)
    keep = (rows["ts"] < window_end) & (
        rows["ts"] >= (day_start(split.start) if split.start else pd.Timestamp.min)
    )
    rows, frame = rows[keep.to_numpy()], frame[keep.to_numpy()]
    if "order_id" in frame and (frame["order_id"].astype(str) != "").all():
        rows["order"] = frame["order_id"].astype(str).to_numpy()
    else:
        rows["order"] = rows["ts"].dt.strftime("%Y-%m-%d")
    if "amount" in frame:
        rows["amount"] = pd.to_numeric(frame["amount"]).to_numpy(float)
    else:
        rows["amount"] = (~rows.duplicated(["customer_id", "order"])).astype(float)  # 1 per order

    before = rows[rows["ts"] < window_start]
    net_before = before.groupby(["customer_id", "order"])["amount"].sum()
    population = np.unique(net_before[net_before > AMOUNT_TOLERANCE].index.get_level_values("customer_id"))

    orders = rows.groupby(["customer_id", "order"]).agg(first=("ts", "min"), net=("amount", "sum"))
    in_window = rows[rows["ts"] >= window_start]
    revenue = in_window.groupby("customer_id")["amount"].sum()
    new = orders[(orders["first"] >= window_start) & (orders["net"] > AMOUNT_TOLERANCE)]
    purchases = new.groupby(level="customer_id").size()
    truth = pd.DataFrame({"customer_id": population})
    truth["holdout_revenue"] = np.clip(revenue.reindex(population).fillna(0.0).to_numpy(), 0, None)
    truth["holdout_orders"] = purchases.reindex(population).fillna(0).astype(int).to_numpy()
    truth["churned"] = truth["holdout_orders"] == 0
    return truth


# ---------------------------------------------------------------------------------------------- models


@dataclass
class Prediction:
    value: pd.Series | None = None  # by customer_id
    churn: pd.Series | None = None
    error: str | None = None
    seconds: float = 0.0


def baselines(features: pd.DataFrame, horizon: int) -> dict[str, Prediction]:
    ids = features["customer_id"].astype(str).to_numpy()

    def series(values) -> pd.Series:
        return pd.Series(np.asarray(values, dtype=float), index=ids)

    def run_rate():
        return series(RunRateCLV().fit(features).predict_clv(features, horizon)), None

    def textbook():
        return series(BasicCLV().fit(features).predict_clv(features, horizon)), None

    def btyd(purchase_model: str):
        def fit():
            model = BTYDCLV(purchase_model=purchase_model).fit(features)
            churn = model.purchases_.p_no_purchase(features, horizon)
            return series(model.predict_clv(features, horizon)), series(churn)

        return fit

    fitters = {
        BASELINES[0]: run_rate,
        BASELINES[1]: textbook,
        BASELINES[2]: btyd("bgnbd"),
        BASELINES[3]: btyd("pareto_nbd"),
    }
    out = {}
    for name, fit in fitters.items():
        started = time.perf_counter()
        try:
            value, churn = fit()
            out[name] = Prediction(value, churn)
        except Exception as exc:  # one baseline failing must not hide the others
            out[name] = Prediction(error=describe(exc))
        out[name].seconds = time.perf_counter() - started
    return out


def model_prediction(shop, case: Case, store: Path, say: Callable[[str], None]) -> tuple[Prediction, dict]:
    """Train and score through `clv train` / `clv score`'s code path with a throwaway MLflow store."""
    split = case.split
    settings = load_settings(
        mlflow={"tracking_uri": f"sqlite:///{store / 'mlflow.db'}"},
        train={"horizon_days": split.horizon_days},
    )
    started = time.perf_counter()
    info: dict = {}
    saved = {k: os.environ.get(k) for k in MLFLOW_ENVIRONMENT}
    captured = io.StringIO()
    try:
        # MLflow prints registry chatter to stderr; anything else it says is kept in the results.
        with contextlib.redirect_stderr(captured):
            result = train(shop, settings, split.cutoff, progress=lambda m: say(f"train: {m}"))
            info = {
                "version": result.version,
                "promoted": result.promoted,
                "train_seconds": round(result.seconds, 1),
                "backtest_cutoff": str(result.backtest.cutoff),
                "backtest_horizon_days": result.backtest.horizon_days,
                "served_model": result.served_model,
                "notes": result.notes,
            }
            uri = f"models:/{settings.mlflow.registered_model}/{result.version}"
            table, _ = score(
                shop,
                settings,
                store / "scores.parquet",
                split.cutoff,
                model_uri=uri,
                progress=lambda m: say(f"score: {m}"),
            )
        ids = table["customer_id"].astype(str).to_numpy()
        prediction = Prediction(
            pd.Series(table["predicted_clv"].to_numpy(float), index=ids),
            pd.Series(table["churn_prob"].to_numpy(float), index=ids),
        )
    except Exception as exc:
        prediction = Prediction(error=describe(exc))
    finally:
        # MLflow keeps the store in the environment too; the next case gets its own.
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    chatter = ("Successfully registered model", "Created version")
    stderr = [
        line for line in captured.getvalue().splitlines() if line.strip() and not line.startswith(chatter)
    ]
    if stderr:
        info["stderr"] = stderr[-20:]
    prediction.seconds = time.perf_counter() - started
    return prediction, info


def describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


# ---------------------------------------------------------------------------------------------- scoring


@dataclass
class Scored:
    y: np.ndarray
    churned: np.ndarray
    value: np.ndarray
    churn: np.ndarray | None
    missing: int
    extra: int


def align(truth: pd.DataFrame, prediction: Prediction) -> Scored:
    """Predictions in the truth's customer order; a missing customer is predicted 0 and churn 1."""
    ids = truth["customer_id"].to_numpy()
    value = prediction.value[~prediction.value.index.duplicated()]
    known = pd.Index(ids).isin(value.index)
    churn = None
    if prediction.churn is not None:
        churn_by_id = prediction.churn[~prediction.churn.index.duplicated()]
        churn = churn_by_id.reindex(ids).fillna(1.0).to_numpy(float)
    return Scored(
        truth["holdout_revenue"].to_numpy(float),
        truth["churned"].to_numpy(bool),
        value.reindex(ids).fillna(0.0).to_numpy(float),
        churn,
        int((~known).sum()),
        int((~value.index.isin(ids)).sum()),
    )


def metric(
    name: str, y: np.ndarray, churned: np.ndarray, value: np.ndarray, churn: np.ndarray | None
) -> float:
    if name in CHURN_COLUMNS:
        if churn is None:
            return float("nan")
        return metrics.churn_auc(churned, churn) if name == "churn_auc" else metrics.brier(churned, churn)
    return {
        "spearman": metrics.spearman,
        "normalized_gini": metrics.normalized_gini,
        "top_decile_capture": metrics.top_decile_capture,
        "decile_mape": metrics.decile_mape,
        "aggregate_error": metrics.aggregate_error,
    }[name](y, value)


def goodness(name: str, value: float) -> float:
    """Larger is better, for choosing the best baseline and signing the difference."""
    sign = COLUMNS[name][1]
    return sign * (abs(value) if name == "aggregate_error" else value)


def compare(name: str, model_value: float, base_value: float) -> float:
    """Model minus baseline in the metric's own terms (absolute errors for the total error)."""
    if name == "aggregate_error":
        return abs(model_value) - abs(base_value)
    return model_value - base_value


@dataclass
class Difference:
    baseline: str
    value: float
    low: float
    high: float
    verdict: str


def bootstrap(
    model: Scored, scored: dict[str, Scored], table: dict[str, dict[str, float]], resamples: int, seed: int
) -> dict[str, Difference]:
    """Model minus the best baseline per column, with a 95% interval from resampling customers."""
    rng = np.random.default_rng(seed)
    n = len(model.y)
    draws = [rng.integers(0, n, n) for _ in range(resamples)]
    out = {}
    for name in COLUMNS:
        candidates = {b: table[b][name] for b in scored if not math.isnan(table[b].get(name, float("nan")))}
        if not candidates or math.isnan(table[MODEL][name]):
            continue
        best = max(candidates, key=lambda b: goodness(name, candidates[b]))
        base = scored[best]
        diffs = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for idx in draws:
                y, churned = model.y[idx], model.churned[idx]
                m = metric(
                    name, y, churned, model.value[idx], None if model.churn is None else model.churn[idx]
                )
                b = metric(name, y, churned, base.value[idx], None if base.churn is None else base.churn[idx])
                diffs.append(compare(name, m, b))
        diffs = np.asarray(diffs, dtype=float)
        diffs = diffs[np.isfinite(diffs)]
        point = compare(name, table[MODEL][name], candidates[best])
        low, high = np.percentile(diffs, [2.5, 97.5]) if len(diffs) else (float("nan"), float("nan"))
        out[name] = Difference(best, point, float(low), float(high), verdict(name, point, low, high))
    return out


def verdict(name: str, point: float, low: float, high: float) -> str:
    sign = COLUMNS[name][1]  # the total error's difference is of absolute errors: lower is better
    better = sign * point > 0
    beyond = (sign * low > 0 and sign * high > 0) or (sign * low < 0 and sign * high < 0)
    if better:
        return "win beyond noise" if beyond else "win within noise"
    return "loss beyond noise" if beyond else "loss within noise"


# ---------------------------------------------------------------------------------------------- a case


@dataclass
class CaseResult:
    case: Case
    customers: int = 0
    history_days: int | None = None
    error: str | None = None
    predictions: dict[str, Prediction] = field(default_factory=dict)
    table: dict[str, dict[str, float]] = field(default_factory=dict)  # row -> metric -> value
    missing: dict[str, int] = field(default_factory=dict)
    extra: dict[str, int] = field(default_factory=dict)
    differences: dict[str, Difference] = field(default_factory=dict)
    model_info: dict = field(default_factory=dict)
    seconds: float = 0.0


def run_case(case: Case, resamples: int, seed: int, say: Callable[[str], None]) -> CaseResult:
    result = CaseResult(case)
    started = time.perf_counter()
    cut_dir = Path("/nonexistent")
    try:
        with tempfile.TemporaryDirectory(prefix="clv-accuracy-") as tmp:
            folder = Path(tmp)
            say("cutting the log")
            cut_dir = folder / "log"
            cut_dir.mkdir()
            transactions, events, customers = cut_files(case, cut_dir)
            truth = truth_table(case.log, case.split)
            if truth.empty:
                raise ValueError(f"no customer has purchased by {case.split.cutoff}")
            result.customers = len(truth)
            result.history_days = history_days(case.log, case.split)
            say("loading the cut log")
            shop = load_shop(transactions, events, customers)
            data = ShopData.from_shop(shop)
            say("baselines")
            result.predictions = baselines(data.features(case.split.cutoff), case.split.horizon_days)
            (folder / "mlflow").mkdir()
            model, result.model_info = model_prediction(shop, case, folder / "mlflow", say)
            result.predictions = {MODEL: model, **result.predictions}
            say("metrics and bootstrap")
            score_case(result, truth, resamples, seed)
    except Exception as exc:
        # Name the shop's own folder, not the temporary copy of its cut log.
        result.error = describe(exc).replace(str(cut_dir), str(case.log.transactions.parent))
        if os.environ.get("CLV_BENCH_TRACEBACK"):
            traceback.print_exc()
    result.seconds = time.perf_counter() - started
    return result


def score_case(result: CaseResult, truth: pd.DataFrame, resamples: int, seed: int) -> None:
    scored = {}
    for name, prediction in result.predictions.items():
        if prediction.error is not None:
            continue
        s = align(truth, prediction)
        scored[name] = s
        result.missing[name], result.extra[name] = s.missing, s.extra
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result.table[name] = {c: metric(c, s.y, s.churned, s.value, s.churn) for c in COLUMNS}
    if MODEL in scored:
        base = {k: v for k, v in scored.items() if k != MODEL}
        result.differences = bootstrap(scored[MODEL], base, result.table, resamples, seed)


# ---------------------------------------------------------------------------------------------- output


def fmt(name: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:+.1%}" if name == "aggregate_error" else f"{value:.3f}"


def fmt_diff(name: str, value: float) -> str:
    if math.isnan(value):
        return "nan"
    return f"{value * 100:+.1f}pp" if name == "aggregate_error" else f"{value:+.3f}"


def case_label(r: CaseResult) -> list[str]:
    s = r.case.split
    lines = [f"{s.cutoff} + {s.horizon_days} d"]
    if r.history_days:
        lines.append(f"{r.history_days} d history (~{r.history_days / 7:.0f} w)")
    lines.append(r.case.variant)
    if s.note:
        lines.append(s.note)
    if r.customers:
        lines.append(f"{r.customers:,} customers")
    if MODEL in r.missing:
        lines.append(f"model: {r.missing[MODEL]:,} missing, {r.extra[MODEL]:,} extra")
    lines.append(f"{r.seconds:.0f} s")
    return lines


def render(log: str, results: list[CaseResult]) -> Table:
    table = Table(title=f"{log}: model vs baselines", title_justify="left")
    table.add_column("case", no_wrap=True)
    table.add_column("row", no_wrap=True)
    for header, sign in COLUMNS.values():
        table.add_column(f"{header} {'↑' if sign > 0 else '↓'}", justify="right")
    blank = [""] * len(COLUMNS)
    for r in results:
        label = case_label(r)
        if r.error:
            reason = r.error.split(":", 1)[0]
            table.add_row("\n".join(label), f"[red]case failed[/] ({escape(reason)})", *blank)
            table.add_section()
            continue
        rows = []
        best = {name: diff.baseline for name, diff in r.differences.items()}
        for name, prediction in r.predictions.items():
            if prediction.error:
                rows.append([f"{name}: [red]failed[/]", *blank])
                continue
            cells = []
            for c in COLUMNS:
                text = fmt(c, r.table[name][c])
                cells.append(f"[bold]{text}*[/]" if best.get(c) == name else text)
            rows.append([f"[bold]{name}[/]" if name == MODEL else name, *cells])
        if r.differences:
            diffs = [(c, r.differences.get(c)) for c in COLUMNS]
            rows.append([DIFF + "\n  95% interval", *[interval_cell(c, x) for c, x in diffs]])
            rows.append(["  verdict", *[verdict_cell(x) for _, x in diffs]])
        # The case's description runs down its rows, one line each (the last row takes what is left).
        for i, row in enumerate(rows):
            text = label[i : i + 1] if i < len(rows) - 1 else label[i:]
            table.add_row("\n".join(text), *row)
        table.add_section()
    return table


def interval_cell(name: str, diff: Difference | None) -> str:
    if diff is None:
        return ""
    low, high = fmt_diff(name, diff.low), fmt_diff(name, diff.high)
    return f"{fmt_diff(name, diff.value)}\n{low.removesuffix('pp')}..{high}"


def verdict_cell(diff: Difference | None) -> str:
    return "" if diff is None else f"[{VERDICT_STYLE[diff.verdict]}]{diff.verdict}[/]"


def short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_records(results: list[CaseResult], resamples: int, seed: int) -> dict:
    cases = []
    for r in results:
        s = r.case.split

        def clean(value):
            return None if isinstance(value, float) and not math.isfinite(value) else value

        cases.append(
            {
                "id": r.case.id,
                "log": r.case.log.name,
                "variant": r.case.variant,
                "cutoff": str(s.cutoff),
                "horizon_days": s.horizon_days,
                "history_start": str(s.start) if s.start else None,
                "history_days": r.history_days,
                "note": s.note,
                "customers": r.customers,
                "status": "failed" if r.error else "ok",
                "error": r.error,
                "seconds": round(r.seconds, 1),
                "model": r.model_info,
                "rows": {
                    name: {
                        "error": p.error,
                        "missing": r.missing.get(name),
                        "extra": r.extra.get(name),
                        "seconds": round(p.seconds, 1),
                        "metrics": {k: clean(v) for k, v in r.table.get(name, {}).items()},
                    }
                    for name, p in r.predictions.items()
                },
                "model_minus_best_baseline": {
                    name: {
                        "baseline": diff.baseline,
                        "difference": clean(diff.value),
                        "ci_low": clean(diff.low),
                        "ci_high": clean(diff.high),
                        "verdict": diff.verdict,
                    }
                    for name, diff in r.differences.items()
                },
            }
        )
    return {
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "resamples": resamples,
        "seed": seed,
        "note": "aggregate_error difference is |model| - |baseline|; other differences are model - baseline",
        "cases": cases,
    }


def to_long(records: dict) -> pd.DataFrame:
    """One row per case x row x metric (the CSV form of --out)."""
    rows = []
    for case in records["cases"]:
        keys = {
            k: case[k] for k in ("id", "log", "variant", "cutoff", "horizon_days", "history_days", "note")
        }
        keys["customers"] = case["customers"]
        if case["error"]:
            rows.append({**keys, "row": "case", "error": case["error"]})
            continue
        for name, row in case["rows"].items():
            if row["error"]:
                rows.append({**keys, "row": name, "error": row["error"]})
                continue
            for metric_name, value in row["metrics"].items():
                rows.append(
                    {**keys, "row": name, "metric": metric_name, "value": value, "missing": row["missing"]}
                )
        for metric_name, diff in case["model_minus_best_baseline"].items():
            rows.append(
                {
                    **keys,
                    "row": DIFF,
                    "metric": metric_name,
                    "value": diff["difference"],
                    "ci_low": diff["ci_low"],
                    "ci_high": diff["ci_high"],
                    "baseline": diff["baseline"],
                    "verdict": diff["verdict"],
                }
            )
    return pd.DataFrame(rows)


def write_out(path: Path, records: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix.lower() == ".csv":
        to_long(records).to_csv(tmp, index=False)
    else:
        tmp.write_text(json.dumps(records, indent=2))
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------- main


def select(cases: list[Case], patterns: list[str]) -> list[Case]:
    if not patterns:
        return cases
    return [c for c in cases if any(fnmatch.fnmatch(c.id, p) or p in c.id for p in patterns)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir", type=Path, default=DATA_DIR, help="folder of real logs, one per subfolder"
    )
    parser.add_argument("--logs", default="", help="comma-separated log names (default: all, and demo)")
    parser.add_argument("--cases", default="", help="comma-separated case ids, glob patterns or substrings")
    parser.add_argument("--quick", action="store_true", help="50 bootstrap resamples instead of 200")
    parser.add_argument("--resamples", type=int, default=None, help="bootstrap resamples (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--demo-customers", type=int, default=20_000)
    parser.add_argument("--demo-seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="write per-case results (.json or .csv)")
    parser.add_argument("--list", action="store_true", help="list the case ids and exit")
    args = parser.parse_args()
    resamples = args.resamples or (50 if args.quick else 200)
    wanted = {name.strip() for name in args.logs.split(",") if name.strip()}
    patterns = [p.strip() for p in args.cases.split(",") if p.strip()]

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Hint. Inferred schema contains integer")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    console = Console(width=max(Console().width, 200))  # the tables are about 195 characters wide

    with tempfile.TemporaryDirectory(prefix="clv-accuracy-demo-") as demo_dir:
        logs = real_logs(args.data_dir) if args.data_dir.is_dir() else []
        if not args.data_dir.is_dir():
            console.print(f"[yellow]{args.data_dir} does not exist: only the demo shop is measured[/]")
        if not wanted or DEMO in wanted:
            with console.status(f"generating the demo shop ({args.demo_customers:,} customers)"):
                logs.append(demo_log(Path(demo_dir), args.demo_customers, args.demo_seed))
        logs = [log for log in logs if not wanted or log.name in wanted]
        unknown = wanted - {log.name for log in logs}
        if unknown:
            console.print(f"[yellow]no such log: {', '.join(sorted(unknown))}[/]")
        cases = select(
            [Case(log, split, variant) for log in logs for split in log.splits for variant in log.variants],
            patterns,
        )
        if args.list:
            for case in cases:
                console.print(case.id, highlight=False)
            return
        results: list[CaseResult] = []
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        with progress:
            task = progress.add_task("cases", total=len(cases))
            for log in logs:
                log_results = []
                for case in (c for c in cases if c.log is log):
                    progress.update(task, description=case.id)

                    def say(message: str, case: Case = case) -> None:
                        progress.update(task, description=f"{case.id}: {short(message, 80)}")

                    result = run_case(case, resamples, args.seed, say)
                    log_results.append(result)
                    progress.advance(task)
                    progress.console.print(f"[dim]{escape(status_line(result))}[/]", highlight=False)
                if log_results:
                    progress.console.print(render(log.name, log_results))
                    print_failures(progress.console, log_results)
                results.extend(log_results)
    console.print(
        f"Customers missing from a score table count as predicted 0 and churn 1 (missing / extra per case). "
        f"*: the best baseline on the column. Intervals: {resamples} bootstrap resamples of customers "
        f"(seed {args.seed}); the total error compares absolute errors (pp = percentage points)."
    )
    if args.out:
        write_out(args.out, to_records(results, resamples, args.seed))
        console.print(f"Wrote {args.out}")


def status_line(r: CaseResult) -> str:
    """One line per finished case, so a log of the run (no live progress bar) shows where it is."""
    if r.error:
        state = "case failed"
    elif r.predictions.get(MODEL) and r.predictions[MODEL].error:
        state = "baselines only (the model failed)"
    else:
        state = "done"
    return f"{r.case.id}: {state} in {r.seconds:.0f} s"


def print_failures(console: Console, results: list[CaseResult]) -> None:
    for r in results:
        errors = [(r.case.id, r.error)] if r.error else []
        errors += [(f"{r.case.id} [{name}]", p.error) for name, p in r.predictions.items() if p.error]
        for where, error in errors:
            console.print(f"[red]failed[/] {escape(where)}: {escape(error)}", highlight=False)
        for line in r.model_info.get("stderr", []):
            console.print(
                f"[dim]{escape(r.case.id)} (stderr while training): {escape(line)}[/]", highlight=False
            )


if __name__ == "__main__":
    main()
