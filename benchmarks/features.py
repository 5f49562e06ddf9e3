"""Benchmark: the feature pipeline against a hand-written DuckDB query and plain pandas.

    .venv/bin/python benchmarks/features.py [--sizes 1e6,1e7] [--repeats 3] [--data-dir DIR]

For each size a synthetic shop (about 20 transaction rows per customer, with refunds, cancelled
orders, quantities, products, categories, a customers table and ~1 event per transaction row) is
generated once, vectorised, and written to Parquet. Each variant then runs `--repeats` times, each
time in a fresh subprocess, and the table shows the median wall time (reading Parquet to writing
the Parquet result, imports excluded) and the median peak RSS of the process (its own high-water mark,
`benchmarks/peak_memory.py`; imports and the engine included):

- full: the whole feature table (`features.pipeline.write_features`) from transactions + customers;
- full+events: the same with the events table;
- rfm (ours): the RFM/BTYD subset (`features.rfm.build_rfm`) through Ibis;
- rfm (duckdb sql): the same subset as one hand-written DuckDB query, the floor;
- rfm (pandas): the same subset with pandas groupby.

Ratios are wall time relative to the floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.peak_memory import peak_rss_mb  # noqa: E402

START = np.datetime64("2021-01-01T00:00:00", "s")
SPAN_DAYS = 3 * 365
AS_OF = dt.date(2023, 12, 31)
THREADS = 2
MEMORY_LIMIT = "2GB"
VARIANTS = ("full", "full+events", "rfm (ours)", "rfm (duckdb sql)", "rfm (pandas)")
FLOOR = "rfm (duckdb sql)"


# --------------------------------------------------------------------------------------------- data
def generate_shop(n_rows: int, out_dir: Path, seed: int = 7) -> dict[str, Path]:
    """Write transactions/customers/events Parquet files for a shop of about `n_rows` transaction rows."""
    rng = np.random.default_rng(seed)
    n_customers = max(1, n_rows // 20)
    lines_per_order = 1.6
    n_orders = int(n_rows / lines_per_order / 1.05)

    # Customers: a first-seen time and a skewed purchase propensity.
    first_seen = rng.integers(0, SPAN_DAYS * 86400, n_customers)
    weight = rng.gamma(0.6, 1.0, n_customers)
    order_customer = rng.choice(n_customers, n_orders, p=weight / weight.sum())
    # Order times: uniform between the customer's first-seen time and the end of the log.
    remaining = SPAN_DAYS * 86400 - first_seen[order_customer]
    order_time = first_seen[order_customer] + (rng.random(n_orders) * remaining).astype(np.int64)
    order_time[::7] = first_seen[order_customer[::7]]  # a first purchase near the first-seen time

    lines = 1 + rng.poisson(lines_per_order - 1, n_orders)
    row_order = np.repeat(np.arange(n_orders), lines)
    n_sale = row_order.size
    amount = np.round(rng.lognormal(3.0, 0.8, n_sale), 2)
    line_time = order_time[row_order] + rng.integers(0, 120, n_sale)
    # Refunds: ~5% of lines get a negative row 1-30 days later; ~2% of orders are cancelled in full.
    refunded = rng.random(n_sale) < 0.05
    cancelled = np.isin(row_order, np.flatnonzero(rng.random(n_orders) < 0.02))
    back = refunded | cancelled
    refund_delay = rng.integers(3600, 30 * 86400, back.sum())

    order_of_row = np.concatenate([row_order, row_order[back]])
    time_of_row = np.concatenate([line_time, line_time[back] + refund_delay])
    amount_of_row = np.concatenate([amount, -amount[back]])
    product = rng.zipf(1.3, n_sale) % 5000
    product_of_row = np.concatenate([product, product[back]])
    quantity = 1 + rng.poisson(0.4, n_sale)
    quantity_of_row = np.concatenate([quantity, -quantity[back]]).astype(np.float64)
    keep = time_of_row < SPAN_DAYS * 86400
    channels = np.array(["web", "app", "store"])

    customer_ids = _ids("c", n_customers)
    transactions = pa.table(
        {
            "customer_id": customer_ids.take(order_customer[order_of_row[keep]]),
            "timestamp": pa.array(START + time_of_row[keep], pa.timestamp("us")),
            "amount": amount_of_row[keep],
            "order_id": _ids("o", n_orders).take(order_of_row[keep]),
            "quantity": quantity_of_row[keep],
            "product_id": _ids("p", 5000).take(product_of_row[keep]),
            "category": _ids("cat", 25).take(product_of_row[keep] % 25),
            "channel": pa.array(channels[order_of_row[keep] % 3]),
        }
    )
    customers = pa.table(
        {
            "customer_id": customer_ids,
            "signup_date": pa.array(
                START + first_seen - rng.integers(0, 30 * 86400, n_customers), pa.timestamp("s")
            ).cast(pa.date32()),
            "acquisition_channel": pa.array(
                np.array(["search", "social", "referral", "direct"])[rng.integers(0, 4, n_customers)]
            ),
            "country": pa.array(np.array(["DE", "FR", "US", "GB", "NL"])[rng.integers(0, 5, n_customers)]),
        }
    )
    # Events: ~1 per transaction row, near the customer's orders (browsing before buying) or random.
    n_events = transactions.num_rows
    event_order = rng.integers(0, n_orders, n_events)
    event_time = np.clip(
        order_time[event_order] - rng.integers(0, 3 * 86400, n_events), 0, SPAN_DAYS * 86400 - 1
    )
    types = np.array(
        [
            "session_start",
            "page_view",
            "product_view",
            "add_to_cart",
            "checkout_start",
            "email_open",
            "email_click",
            "support_ticket",
        ]
    )
    events = pa.table(
        {
            "customer_id": customer_ids.take(order_customer[event_order]),
            "timestamp": pa.array(START + event_time, pa.timestamp("us")),
            "event_type": pa.array(
                types[rng.choice(8, n_events, p=[0.12, 0.3, 0.25, 0.12, 0.05, 0.1, 0.04, 0.02])]
            ),
        }
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in (("transactions", transactions), ("customers", customers), ("events", events)):
        paths[name] = out_dir / f"{name}.parquet"
        pq.write_table(table, paths[name], row_group_size=1 << 20)
    return paths


def _ids(prefix: str, n: int) -> pa.Array:
    return pa.array(np.char.add(prefix, np.arange(n).astype(str)).astype(object), pa.string())


# ------------------------------------------------------------------------------------------ variants
RFM_SQL = """
COPY (
WITH orders AS (
    SELECT customer_id, order_id, min(timestamp) AS ts, sum(amount) AS net, sum(amount) > 1e-6 AS p
    FROM read_parquet($tx) WHERE timestamp < $as_of::DATE + INTERVAL 1 DAY
    GROUP BY ALL
), seq AS (
    SELECT customer_id, ts::DATE AS day, net, p,
           lag(ts::DATE) OVER w AS prev, first_value(ts::DATE) OVER w AS first_day
    FROM orders
    WINDOW w AS (PARTITION BY customer_id, p ORDER BY ts, net)
), customers AS (
    SELECT customer_id,
           count(*) FILTER (p) AS n_orders,
           count(*) FILTER (p AND (prev IS NULL OR prev <> day)) AS n_days,
           min(day) FILTER (p) AS first_day,
           max(day) FILTER (p) AS last_day,
           sum(net) FILTER (p) AS value,
           sum(net) FILTER (p AND day = first_day) AS first_day_value,
           sum(net) FILTER (p AND prev IS NULL) AS first_order_value,
           sum(net) AS monetary_total
    FROM seq GROUP BY ALL HAVING count(*) FILTER (p) > 0
)
SELECT customer_id, $as_of::DATE AS as_of,
       date_diff('day', last_day, $as_of::DATE) AS recency_days,
       n_orders - 1 AS frequency, n_orders, value / n_orders AS monetary_mean, monetary_total,
       date_diff('day', first_day, $as_of::DATE) AS tenure_days, first_order_value,
       n_days - 1 AS btyd_frequency, date_diff('day', first_day, last_day) AS btyd_recency,
       date_diff('day', first_day, $as_of::DATE) AS btyd_age,
       CASE WHEN n_days > 1 THEN (value - first_day_value) / (n_days - 1) ELSE 0 END AS btyd_monetary
FROM customers
) TO '{out}' (FORMAT PARQUET)
"""


def run_variant(variant: str, data_dir: Path, out: Path) -> dict:
    """Run one variant in this process; return wall seconds and peak RSS.

    Imports and the engine connection are made before the clock starts, for every variant; the
    clock covers reading Parquet, building and compiling the expression, executing and writing.
    """
    import duckdb

    from features import engine
    from features.pipeline import write_features
    from features.rfm import build_rfm

    tx = str(data_dir / "transactions.parquet")
    con = duckdb.connect()
    engine.configure(con, THREADS, MEMORY_LIMIT)
    backend = engine.from_duckdb(con, THREADS, MEMORY_LIMIT) if variant != FLOOR else None
    started = time.perf_counter()
    if variant.startswith("full"):
        events = backend.read_parquet(data_dir / "events.parquet") if variant == "full+events" else None
        customers = backend.read_parquet(data_dir / "customers.parquet")
        write_features(out, AS_OF, backend.read_parquet(tx), events, customers)
    elif variant == "rfm (ours)":
        engine.write_parquet(build_rfm(backend.read_parquet(tx), AS_OF), out)
    elif variant == FLOOR:
        con.execute(RFM_SQL.format(out=out), {"tx": tx, "as_of": AS_OF})
    elif variant == "rfm (pandas)":
        columns = ["customer_id", "timestamp", "amount", "order_id"]
        pandas_rfm(pd.read_parquet(tx, columns=columns), AS_OF).to_parquet(out)
    else:
        raise ValueError(variant)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rss_mb": peak_rss_mb()}


def pandas_rfm(tx: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The RFM subset in plain pandas (same definitions as features.rfm)."""
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    tx = tx[tx["timestamp"] < end]
    orders = (
        tx.groupby(["customer_id", "order_id"], sort=False, observed=True)
        .agg(order_ts=("timestamp", "min"), net=("amount", "sum"))
        .reset_index()
    )
    orders["day"] = orders["order_ts"].dt.normalize()
    orders["purchase"] = orders["net"] > 1e-6  # features.orders.AMOUNT_TOLERANCE
    monetary_total = orders.groupby("customer_id", sort=False)["net"].sum()
    purchases = orders[orders["purchase"]].sort_values(["order_ts", "net"])
    first_order_value = purchases.groupby("customer_id", sort=False)["net"].first()
    days = purchases.groupby(["customer_id", "day"], sort=False).agg(n=("net", "size"), value=("net", "sum"))
    days = days.reset_index().sort_values(["customer_id", "day"])
    c = days.groupby("customer_id", sort=False).agg(
        n_orders=("n", "sum"),
        n_days=("n", "size"),
        first_day=("day", "min"),
        last_day=("day", "max"),
        value=("value", "sum"),
        first_day_value=("value", "first"),
    )
    d = pd.Timestamp(as_of)
    out = pd.DataFrame(index=c.index)
    out["as_of"] = as_of
    out["recency_days"] = (d - c["last_day"]).dt.days
    out["frequency"] = c["n_orders"] - 1
    out["n_orders"] = c["n_orders"]
    out["monetary_mean"] = c["value"] / c["n_orders"]
    out["monetary_total"] = monetary_total.reindex(c.index)
    out["tenure_days"] = (d - c["first_day"]).dt.days
    out["first_order_value"] = first_order_value.reindex(c.index)
    out["btyd_frequency"] = c["n_days"] - 1
    out["btyd_recency"] = (c["last_day"] - c["first_day"]).dt.days
    out["btyd_age"] = out["tenure_days"]
    repeat = out["btyd_frequency"]
    out["btyd_monetary"] = ((c["value"] - c["first_day_value"]) / repeat.where(repeat > 0)).fillna(0.0)
    return out.reset_index()


# -------------------------------------------------------------------------------------------- driver
def output_path(data_dir: Path, variant: str) -> Path:
    return data_dir / "out" / (variant.replace(" ", "_").replace("(", "").replace(")", "") + ".parquet")


def measure(variant: str, data_dir: Path, repeats: int) -> dict:
    runs = []
    out = output_path(data_dir, variant)
    out.parent.mkdir(exist_ok=True)
    for _ in range(repeats):
        out.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--run", variant, "--data-dir", str(data_dir), "--out", str(out)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{variant} failed:\n{result.stderr}")
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "rss_mb": statistics.median(r["rss_mb"] for r in runs),
        "runs": [round(r["seconds"], 3) for r in runs],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="1e6,1e7", help="transaction rows, comma separated (default 1e6,1e7)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help="comma separated subset of " + ", ".join(VARIANTS)
    )
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "clv-bench")
    parser.add_argument("--no-request", action="store_true", help="skip the request-path latency measurement")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run:  # one measured variant, in a fresh process
        print(json.dumps(run_variant(args.run, args.data_dir, args.out)))
        return

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    results = []
    for size in (int(float(s)) for s in args.sizes.split(",")):
        data_dir = args.data_dir / f"{size}"
        if not (data_dir / "events.parquet").exists():
            started = time.perf_counter()
            generate_shop(size, data_dir)
            print(
                f"generated {size:,} rows in {time.perf_counter() - started:.1f}s -> {data_dir}",
                file=sys.stderr,
            )
        rows = pq.read_metadata(data_dir / "transactions.parquet").num_rows
        measured = {}
        for variant in variants:
            measured[variant] = measure(variant, data_dir, args.repeats)
            print(f"{rows:,} rows  {variant:<18} {measured[variant]}", file=sys.stderr)
        check_rfm_outputs(data_dir, [v for v in variants if v.startswith("rfm")])
        floor = measured.get(FLOOR, {}).get("seconds")
        for variant, m in measured.items():
            results.append((rows, variant, m, m["seconds"] / floor if floor else None))
    render(results, args.repeats)
    if not args.no_request:
        render_request(measure_request())


def check_rfm_outputs(data_dir: Path, variants: list[str]) -> None:
    """All RFM variants must compute the same table, or the comparison means nothing."""
    tables = {}
    for variant in variants:
        frame = pd.read_parquet(output_path(data_dir, variant))
        tables[variant] = frame.drop(columns=["as_of"]).sort_values("customer_id").reset_index(drop=True)
    reference = tables.get("rfm (ours)")
    for variant, frame in tables.items():
        pd.testing.assert_frame_equal(frame, reference, check_dtype=False, rtol=1e-9, obj=variant)


def measure_request(calls: int = 300) -> dict[str, dict]:
    """Latency of `compute_features_for_request` for one customer with 20 transactions (in-process)."""
    from features.request import compute_features_for_request

    rng = np.random.default_rng(1)
    n = 20
    tx = pd.DataFrame(
        {
            "customer_id": "c1",
            "timestamp": pd.Timestamp("2023-01-01")
            + pd.to_timedelta(np.sort(rng.integers(0, 360 * 86400, n)), unit="s"),
            "amount": np.round(rng.lognormal(3, 1, n), 2),
            "order_id": [f"o{i // 2}" for i in range(n)],
            "quantity": 1.0,
            "product_id": [f"p{i % 5}" for i in range(n)],
            "category": [f"k{i % 3}" for i in range(n)],
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": "c1",
            "timestamp": pd.Timestamp("2023-10-01")
            + pd.to_timedelta(np.sort(rng.integers(0, 90 * 86400, 50)), unit="s"),
            "event_type": rng.choice(["page_view", "product_view", "add_to_cart", "email_open"], 50),
        }
    )
    customers = pd.DataFrame({"customer_id": ["c1"], "country": ["DE"], "acquisition_channel": ["search"]})
    cases = {"1 customer, 20 transactions": (tx,), "... + 50 events + attributes": (tx, events, customers)}
    results = {}
    for name, frames in cases.items():
        started = time.perf_counter()
        compute_features_for_request(frames[0], AS_OF, *frames[1:])
        first = time.perf_counter() - started
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            compute_features_for_request(frames[0], AS_OF, *frames[1:])
            times.append(time.perf_counter() - started)
        results[name] = {
            "first_ms": first * 1000,
            "p50_ms": np.median(times) * 1000,
            "p95_ms": np.percentile(times, 95) * 1000,
        }
    return results


def render_request(results: dict[str, dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Request path (compute_features_for_request), in-process")
    for name in ("input", "first call", "p50", "p95"):
        table.add_column(name, justify="left" if name == "input" else "right")
    for name, r in results.items():
        table.add_row(name, f"{r['first_ms']:.0f} ms", f"{r['p50_ms']:.1f} ms", f"{r['p95_ms']:.1f} ms")
    Console(width=120).print(table)


def render(results: list, repeats: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Feature pipeline, median of {repeats} fresh-process runs ({THREADS} threads)")
    for name in ("rows", "variant", "seconds", "peak RSS", "vs floor (sql)", "runs (s)"):
        table.add_column(name, justify="left" if name == "variant" else "right")
    for rows, variant, m, ratio in results:
        table.add_row(
            f"{rows:,}",
            variant,
            f"{m['seconds']:.2f}",
            f"{m['rss_mb']:,.0f} MB",
            f"{ratio:.2f}x" if ratio else "-",
            " ".join(f"{r:.2f}" for r in m["runs"]),
        )
    Console(width=120).print(table)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
