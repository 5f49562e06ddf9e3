"""Benchmark: backtest accuracy of the hybrid model against the baselines on the demo shop.

    .venv/bin/python benchmarks/backtest.py [--customers 20000] [--seeds 42,3]

Two backtests per demo shop (one per seed), both through `training.backtest.backtest`, the code
`clv train` runs:
- full: three years of history, predict the last year from the cut-off a year before the end;
- nine months: the shop cut to nine months of history, predict the following nine months (most
  customers have one order; the label windows are shorter than the horizon and get stretched).

For each case the table shows the textbook formula, the buy-till-you-die baselines and the hybrid
with each of its value objectives (`[train] value_objective`): "orders" (boosted Poisson purchases
x Gamma-Gamma order value, the default), "tweedie" and "hurdle" (boosted revenue models).
Ranking metrics: higher is better; errors: lower is better; coverage should be near 0.80.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clv.config import load_settings  # noqa: E402
from features.contract import load_shop  # noqa: E402
from features.demo_shop import write_demo_shop  # noqa: E402
from training.backtest import METRIC_LABELS as COLUMNS  # noqa: E402
from training.backtest import MODEL, ShopData, backtest  # noqa: E402

NINE_MONTHS = 273
OBJECTIVES = ("orders", "tweedie", "hurdle")


def cases(data: ShopData) -> dict[str, tuple[ShopData, dt.date, int]]:
    start = data.last_date - dt.timedelta(days=2 * NINE_MONTHS)
    short = data.since(start)
    return {
        "full history, 365-day horizon": (data, data.last_date - dt.timedelta(days=365), 365),
        "nine months of history, 273-day horizon": (
            short,
            start + dt.timedelta(days=NINE_MONTHS),
            NINE_MONTHS,
        ),
    }


def run_case(data: ShopData, cutoff: dt.date, horizon: int) -> tuple[pd.DataFrame, dict[str, float]]:
    rows, seconds = [], {}
    for objective in OBJECTIVES:
        settings = load_settings(train={"value_objective": objective})
        started = time.perf_counter()
        result = backtest(data, data.last_date, horizon, settings, cutoff=cutoff)
        seconds[objective] = time.perf_counter() - started
        table = result.metrics.rename(index={MODEL: f"hybrid: {objective}"})
        rows.append(table if not rows else table.iloc[[0]])
    table = pd.concat(rows)
    baselines = [name for name in table.index if not name.startswith("hybrid")]
    return table.loc[baselines + [f"hybrid: {o}" for o in OBJECTIVES]], seconds


def render(title: str, table: pd.DataFrame, seconds: dict[str, float]) -> Table:
    out = Table(title=title)
    out.add_column("model")
    for header in COLUMNS.values():
        out.add_column(header, justify="right")
    out.add_column("fit+backtest s", justify="right")
    for name, row in table.iterrows():
        objective = str(name).removeprefix("hybrid: ")
        cells = ["" if pd.isna(row.get(c)) else f"{row[c]:.3f}" for c in COLUMNS]
        out.add_row(str(name), *cells, f"{seconds[objective]:.1f}" if objective in seconds else "")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seeds", default="42,3", help="comma-separated demo-shop seeds")
    args = parser.parse_args()
    console = Console(width=140)
    for seed in (int(s) for s in args.seeds.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            write_demo_shop(out, n_customers=args.customers, seed=seed)
            shop = load_shop(out / "transactions.parquet", out / "events.parquet", out / "customers.parquet")
            data = ShopData.from_shop(shop)
            for name, (case_data, cutoff, horizon) in cases(data).items():
                table, seconds = run_case(case_data, cutoff, horizon)
                title = f"demo shop seed {seed}, {args.customers:,} customers: {name} (cut-off {cutoff})"
                console.print(render(title, table, seconds))


if __name__ == "__main__":
    main()
