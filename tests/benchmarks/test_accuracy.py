"""benchmarks/accuracy.py: the truth it scores against, the cut log it trains on, and its verdicts.

The script is not a package; it is loaded from its path. Nothing here trains a model.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "accuracy.py"


@pytest.fixture(scope="module")
def accuracy():
    spec = importlib.util.spec_from_file_location("accuracy_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


CUTOFF = dt.date(2024, 6, 30)


def write(tmp_path: Path, rows: list[tuple], columns: list[str]) -> Path:
    path = tmp_path / "transactions.csv"
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def log_of(accuracy, path: Path, split):
    return accuracy.Log("t", path, None, None, (split,), {"transactions only": (False, False)})


def test_truth_follows_the_label_definitions(accuracy, tmp_path):
    rows = [
        # a: two lines of one order before, a refund of it and a new order in the window.
        ("a", "2024-01-05 10:00", 30.0, "o1"),
        ("a", "2024-01-05 10:00", 20.0, "o1"),
        ("a", "2024-07-03", -5.0, "o1"),
        ("a", "2024-07-04", 15.0, "o2"),
        # b: buys on the cut-off day, late; in the window only an order cancelled in full.
        ("b", "2024-06-30 23:30", 10.0, "o3"),
        ("b", "2024-07-10", 40.0, "o4"),
        ("b", "2024-07-11", -40.0, "o4"),
        # c: only a cancelled order by the cut-off: not a customer yet.
        ("c", "2024-03-01", 5.0, "o5"),
        ("c", "2024-03-02", -5.0, "o5"),
        ("c", "2024-07-10", 9.0, "o6"),
        # d: buys, then a refund at the window's first instant (revenue clipped at 0), and a purchase at
        # the first instant after the window.
        ("d", "2024-02-01", 50.0, "o7"),
        ("d", "2024-07-01 00:00", -60.0, "o7"),
        ("d", "2024-07-31 00:00", 99.0, "o8"),
    ]
    path = write(tmp_path, rows, ["customer_id", "timestamp", "amount", "order_id"])
    split = accuracy.Split(CUTOFF, 30)
    truth = accuracy.truth_table(log_of(accuracy, path, split), split).set_index("customer_id")
    assert truth.index.tolist() == ["a", "b", "d"]
    assert truth["holdout_revenue"].tolist() == [10.0, 0.0, 0.0]
    assert truth["holdout_orders"].tolist() == [1, 0, 0]
    assert truth["churned"].tolist() == [False, True, True]


def test_truth_revenue_nets_refunds_in_the_window(accuracy, tmp_path):
    rows = [
        ("a", "2024-01-05", 50.0),
        ("a", "2024-07-03", 80.0),
        ("a", "2024-07-05", -30.0),
        ("b", "2024-05-05", 10.0),
        ("b", "2024-08-05", 10.0),  # after the 30-day window
    ]
    path = write(tmp_path, rows, ["customer_id", "timestamp", "amount"])
    split = accuracy.Split(CUTOFF, 30)
    truth = accuracy.truth_table(log_of(accuracy, path, split), split).set_index("customer_id")
    assert truth.loc["a", "holdout_revenue"] == pytest.approx(50.0)
    assert truth.loc["a", "holdout_orders"] == 1  # the refund's day is an order, but not a purchase
    assert truth.loc["b", "holdout_revenue"] == 0.0 and truth.loc["b", "churned"]


def test_truth_without_amounts_counts_orders(accuracy, tmp_path):
    rows = [
        ("a", "2024-01-05"),
        ("a", "2024-07-02"),
        ("a", "2024-07-02"),
        ("a", "2024-07-09"),
        ("b", "2024-06-30"),
    ]
    path = write(tmp_path, rows, ["customer_id", "timestamp"])
    split = accuracy.Split(CUTOFF, 30)
    truth = accuracy.truth_table(log_of(accuracy, path, split), split).set_index("customer_id")
    # Without order ids a customer-day is one order, worth 1.
    assert truth["holdout_revenue"].tolist() == [2.0, 0.0]
    assert truth["holdout_orders"].tolist() == [2, 0]


def test_cut_keeps_the_rows_in_the_history_as_written(accuracy, tmp_path):
    rows = [("a", "2024-01-05", "1.50"), ("a", "2024-06-30 23:59:59", "2.00"), ("a", "2024-07-01", "3.00")]
    path = write(tmp_path, rows, ["customer_id", "timestamp", "amount"])
    split = accuracy.Split(CUTOFF, 30, start=dt.date(2024, 2, 1))
    case = accuracy.Case(log_of(accuracy, path, split), split, "transactions only")
    (tmp_path / "cut").mkdir()
    transactions, events, customers = accuracy.cut_files(case, tmp_path / "cut")
    assert events is None and customers is None
    assert transactions.read_text().splitlines() == [
        "customer_id,timestamp,amount",
        "a,2024-06-30 23:59:59,2.00",
    ]


def test_missing_customers_count_as_zero_and_churned(accuracy):
    truth = pd.DataFrame(
        {"customer_id": ["a", "b", "c"], "holdout_revenue": [1.0, 0.0, 2.0], "churned": [False, True, False]}
    )
    prediction = accuracy.Prediction(
        pd.Series([5.0, 7.0, 9.0], index=["c", "a", "x"]), pd.Series([0.1, 0.2, 0.3], index=["c", "a", "x"])
    )
    scored = accuracy.align(truth, prediction)
    assert scored.value.tolist() == [7.0, 0.0, 5.0]
    assert scored.churn.tolist() == [0.2, 1.0, 0.1]
    assert (scored.missing, scored.extra) == (1, 1)


def test_verdicts(accuracy):
    assert accuracy.verdict("spearman", 0.02, 0.01, 0.03) == "win beyond noise"
    assert accuracy.verdict("spearman", 0.02, -0.01, 0.03) == "win within noise"
    assert accuracy.verdict("spearman", -0.02, -0.03, 0.01) == "loss within noise"
    assert accuracy.verdict("brier", 0.02, 0.01, 0.03) == "loss beyond noise"
    # The total error compares absolute errors: a smaller one is a win.
    assert accuracy.verdict("aggregate_error", -0.05, -0.08, -0.01) == "win beyond noise"


def test_bootstrap_against_the_best_baseline(accuracy):
    rng = np.random.default_rng(1)
    y = rng.gamma(0.5, 10, 400)
    churned = y < 1
    good = accuracy.Scored(y, churned, y + rng.normal(0, 1, 400).clip(0), 1 / (1 + y), 0, 0)
    noisy = accuracy.Scored(y, churned, rng.gamma(0.5, 10, 400), np.full(400, 0.5), 0, 0)
    scored = {"model": good, "noise": noisy}
    table = {
        name: {c: accuracy.metric(c, s.y, s.churned, s.value, s.churn) for c in accuracy.COLUMNS}
        for name, s in scored.items()
    }
    out = accuracy.bootstrap(good, {"noise": noisy}, table, resamples=50, seed=0)
    assert out["spearman"].verdict == "win beyond noise"
    assert out["spearman"].baseline == "noise"
    assert out["spearman"].low <= out["spearman"].value <= out["spearman"].high
