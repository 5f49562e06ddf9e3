"""Features for the few customers of one HTTP request: the batch definitions, computed with numpy.

`compute_features_for_request` takes pandas frames (customers' histories sent to
`POST /predict_history`, a micro-batch of requests at a time) and returns the feature table with
the same columns, dtypes and values as the batch path (`features.pipeline.build_features`).

Why not run those Ibis definitions on an in-memory DuckDB, as this path did: DuckDB binds, plans
and optimises a prepared statement again on every EXECUTE (duckdb/duckdb#17237, open), which took
24 ms of the 33 ms a batch of 32 requests cost, whatever the number of rows. Here the same
definitions (the docstrings of `features.orders`, `rfm`, `rhythm`, `basket`, `behaviour` and
`attributes` define every column) are computed directly on the request's rows in a few
milliseconds. Two implementations of one definition can drift apart, so
`tests/features/test_request_property.py` checks that they agree on arbitrary histories
(Hypothesis: refunds, ties, window edges, optional columns, events, attributes) and
`tests/features/test_request_path.py` on fixed ones; a definition changed on one side only fails them.

Money is summed as whole numbers of 1e-9 currency units, as the batch path sums DECIMAL(38, 9)
(`features.orders.exact_amount`): exact in float64 while a customer's sums stay below 9 million
currency units, and within an ulp above.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features import engine
from features.behaviour import CART_WINDOW_HOURS, EVENT_COUNTS, ON_SITE_EVENTS, SESSION_GAP_MINUTES
from features.orders import AMOUNT_TOLERANCE, as_of_date
from features.pipeline import FEATURE_SCHEMA
from features.rhythm import LOG_UNITS, TRENDS, WINDOWS
from features.schema import CUSTOMERS, EVENTS, TRANSACTIONS, TableSchema

_DAY = 86_400_000_000  # microseconds: timestamps are read as integer microseconds since 1970
_EPOCH = dt.date(1970, 1, 1)
_UNITS = 1e9  # money in 1e-9 currency units (DECIMAL(38, 9))
_ARROW_TYPES = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us"),
    "float64": pa.float64(),
    "date": pa.date32(),
    "int64": pa.int64(),
    "boolean": pa.bool_(),
}
_SCHEMA = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in FEATURE_SCHEMA.items()])


def compute_features_for_request(
    transactions_df: pd.DataFrame,
    as_of: dt.date,
    events_df: pd.DataFrame | None = None,
    customers_df: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The feature table (`features.pipeline.FEATURE_SCHEMA`) for the customers in the frames.

    Frames use the contract's column names (`features.schema`); extra columns are ignored.
    Timestamps may be naive (taken as UTC) or time-zone aware (converted to UTC). Without an
    order_id column a customer-day is one order, and without an amount column every order is
    worth 1, as in the contract. Every customer with an order by `as_of` gets a row. Rows are
    sorted by customer_id. Raises ValueError on missing required columns or values that cannot
    be converted.
    """

    def table(frame: pd.DataFrame | None, schema: TableSchema) -> pa.Table | None:
        return None if frame is None else _to_arrow(frame, schema)

    return _features(
        table(transactions_df, TRANSACTIONS),
        as_of,
        table(events_df, EVENTS),
        table(customers_df, CUSTOMERS),
    )


def compute_features_for_columns(
    transactions: dict[str, list],
    as_of: dt.date,
    events: dict[str, list] | None = None,
    customers: dict[str, list] | None = None,
) -> pd.DataFrame:
    """`compute_features_for_request` for tables given as {column: values} of already typed values
    (text as str, times as naive UTC datetimes, dates as dates, numbers as floats, None for missing),
    as `serving.bodies` validates a request: no pandas parsing, which cost a third of the features'
    time for a batch of requests."""

    def table(columns: dict[str, list] | None, schema: TableSchema) -> pa.Table | None:
        if columns is None:
            return None
        _require(columns, schema)
        arrays = {
            name: _typed(values, schema.columns[name], f"{schema.name}.{name}")
            for name, values in columns.items()
            if name in schema.columns
        }
        return _completed(pa.table(arrays), schema)

    return _features(
        table(transactions, TRANSACTIONS), as_of, table(events, EVENTS), table(customers, CUSTOMERS)
    )


def _features(
    transactions: pa.Table, as_of: dt.date, events: pa.Table | None, customers: pa.Table | None
) -> pd.DataFrame:
    as_of = as_of_date(as_of)
    day = (as_of - _EPOCH).days
    rows = _visible(_arrays(transactions), day)
    ids, codes = np.unique(rows["customer_id"], return_inverse=True)
    orders = _Orders(rows, codes, len(ids), day)
    columns: dict[str, object] = {
        "customer_id": ids,
        "as_of": np.full(len(ids), np.datetime64(as_of, "D")),
        **orders.features(),
        **_mix(rows, codes, len(ids)),
        "has_events": np.full(len(ids), events is not None),
    }
    if events is not None:
        columns.update(_behaviour(_visible(_arrays(events), day), ids, orders, day))
    if customers is not None:
        columns.update(_attributes(_first_rows(_arrays(customers)), ids, day))
    arrays = [
        pa.array(columns[f.name], type=f.type, from_pandas=True)
        if f.name in columns
        else pa.nulls(len(ids), f.type)
        for f in _SCHEMA
    ]
    return engine.arrow_to_pandas(pa.Table.from_arrays(arrays, schema=_SCHEMA))


class _Groups:
    """Aggregates of row values by group code (0..n-1), with SQL's nulls: an empty group's sum is NaN."""

    def __init__(self, codes: np.ndarray, n: int):
        self.codes = codes
        self.n = n

    def count(self, where: np.ndarray) -> np.ndarray:
        return np.bincount(self.codes[where], minlength=self.n)

    def total(self, values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        """Sum per group, 0 for a group without rows (use `sum` for SQL's null)."""
        codes = self.codes if where is None else self.codes[where]
        values = values if where is None else values[where]
        return np.bincount(codes, weights=values, minlength=self.n)

    def sum(self, values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        """SUM(values) FILTER (where): NaN for a group without (non-null) rows."""
        where = ~np.isnan(values) if where is None else where & ~np.isnan(values)
        return np.where(self.count(where) > 0, self.total(values, where), np.nan)

    def min(self, values: np.ndarray, where: np.ndarray) -> np.ndarray:
        """MIN of integer values per group; meaningless for a group without rows (mask with `count`)."""
        out = np.full(self.n, np.iinfo(np.int64).max)
        np.minimum.at(out, self.codes[where], values[where])
        return out

    def max(self, values: np.ndarray, where: np.ndarray) -> np.ndarray:
        """MAX of integer or float values per group; meaningless for a group without rows (mask with `count`)."""
        out = np.full(
            self.n, np.iinfo(np.int64).min if values.dtype.kind in "iu" else -np.inf, dtype=values.dtype
        )
        np.maximum.at(out, self.codes[where], values[where])
        return out


class _Orders:
    """`features.orders.order_table` and `purchase_sequence`, one entry per order, and the
    per-customer features of `features.rfm`, `features.rhythm` and `features.basket` from them."""

    def __init__(self, rows: dict[str, np.ndarray], codes: np.ndarray, n: int, day: int):
        self.day = day
        order_ids, order_codes = np.unique(rows["order_id"], return_inverse=True)
        keys, index = np.unique(codes * len(order_ids) + order_codes, return_inverse=True)
        self.customer = keys // max(len(order_ids), 1)
        lines = _Groups(index, len(keys))
        amount = rows["amount"]
        units = _units(amount)
        positive = amount > 0
        first_row = np.full(len(keys), np.iinfo(np.int64).max)
        np.minimum.at(first_row, index, rows["timestamp"])
        self.ts = first_row
        self.date = np.floor_divide(self.ts, _DAY)
        self.net = lines.total(units)
        self.gross = lines.total(units, positive)
        self.refund = -lines.total(units, amount < 0)
        self.lines = lines.count(positive)
        self.items = lines.sum(rows["quantity"], positive) if "quantity" in rows else None
        self.is_purchase = self.gross / _UNITS > AMOUNT_TOLERANCE
        self.by_customer = _Groups(self.customer, n)
        self._sequence()

    def _sequence(self) -> None:
        """prev_purchase_date, new_purchase_day and gap_days of `purchase_sequence` (purchases only)."""
        purchases = np.flatnonzero(self.is_purchase)
        purchases = purchases[np.lexsort((self.net[purchases], self.ts[purchases], self.customer[purchases]))]
        first = np.ones(len(purchases), dtype=bool)
        first[1:] = self.customer[purchases[1:]] != self.customer[purchases[:-1]]
        dates = self.date[purchases]
        prev = np.r_[0, dates[:-1]]
        new_day = first | (prev != dates)
        self.first_purchase = np.zeros(len(self.ts), dtype=bool)
        self.first_purchase[purchases[first]] = True
        self.new_day = np.zeros(len(self.ts), dtype=bool)
        self.new_day[purchases[new_day]] = True
        self.gap = np.full(len(self.ts), np.nan)
        gapped = new_day & ~first
        self.gap[purchases[gapped]] = (dates - prev)[gapped]

    def features(self) -> dict[str, np.ndarray]:
        g, p, day = self.by_customer, self.is_purchase, self.day
        n_orders = g.count(p)
        has_purchase = n_orders > 0
        first_order = g.min(self.date, np.ones_like(p))
        first = np.where(has_purchase, g.min(self.date, p), first_order)
        last = np.where(has_purchase, g.max(self.date, p), first_order)
        purchase_value = g.total(self.net, p)
        monetary_total = g.total(self.net)
        first_day_value = g.total(self.net, p & (self.date == first[self.customer]))
        btyd_frequency = np.maximum(g.count(self.new_day) - 1, 0)
        repeat = p & (self.date != first[self.customer])
        with np.errstate(divide="ignore", invalid="ignore"):
            columns = {
                "recency_days": day - last,
                "frequency": np.maximum(n_orders - 1, 0),
                "n_orders": n_orders,
                "monetary_mean": np.where(has_purchase, monetary_total / _UNITS / n_orders, 0.0),
                "monetary_total": monetary_total / _UNITS,
                "tenure_days": day - first,
                "first_order_value": g.total(self.net, self.first_purchase) / _UNITS,
                "btyd_frequency": btyd_frequency,
                "btyd_recency": last - first,
                "btyd_age": day - first,
                "btyd_monetary": np.where(
                    btyd_frequency > 0,
                    (purchase_value - first_day_value)
                    / _UNITS
                    / btyd_frequency
                    * np.where(
                        purchase_value / _UNITS > AMOUNT_TOLERANCE,
                        np.maximum(monetary_total / purchase_value, 0.0),
                        np.where((monetary_total - purchase_value) / _UNITS < -AMOUNT_TOLERANCE, 0.0, 1.0),
                    ),
                    0.0,
                ),
                "largest_order_value": np.where(has_purchase, g.max(self.net, p), 0) / _UNITS,
                "largest_repeat_order_value": np.where(btyd_frequency > 0, g.max(self.net, repeat), 0)
                / _UNITS,
                **self._rhythm(purchase_value, last),
                **self._basket(n_orders),
            }
        return columns

    def _rhythm(self, purchase_value: np.ndarray, last: np.ndarray) -> dict[str, np.ndarray]:
        g, p = self.by_customer, self.is_purchase
        gapped = ~np.isnan(self.gap)
        count = g.count(gapped)
        total = g.total(self.gap, gapped)
        squares = g.total(self.gap * self.gap, gapped)
        columns = {
            "gap_mean_days": np.where(count > 0, total / count, np.nan),
            # As in features.rhythm._sample_std: n S2 - S1^2 is exact for integer gaps.
            "gap_std_days": np.where(
                count >= 2, np.sqrt((count * squares - total * total) / (count * (count - 1))), np.nan
            ),
            "gap_last_days": g.sum(self.gap, self.new_day & (self.date == last[self.customer])),
            "gap_log_mean": np.where(
                count > 0, g.total(np.round(np.log(self.gap) * LOG_UNITS), gapped) / LOG_UNITS / count, np.nan
            ),
        }
        for n in WINDOWS:
            in_window = self.date > self.day - n
            columns[f"orders_{n}d"] = g.count(p & in_window)
            columns[f"revenue_{n}d"] = g.total(self.net, in_window) / _UNITS
        for short, long in TRENDS:
            scale = short / long
            orders_s, orders_l = columns[f"orders_{short}d"], columns[f"orders_{long}d"]
            revenue_s, revenue_l = columns[f"revenue_{short}d"], columns[f"revenue_{long}d"]
            columns[f"orders_trend_{short}_{long}"] = np.where(
                orders_l > 0, orders_s / (orders_l * scale), np.nan
            )
            columns[f"revenue_trend_{short}_{long}"] = np.where(
                revenue_l > AMOUNT_TOLERANCE, revenue_s / (revenue_l * scale), np.nan
            )
        month = self.date.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1
        q4_value = g.total(self.net, p & (month >= 10))
        columns["q4_spend_share"] = np.where(
            purchase_value / _UNITS > AMOUNT_TOLERANCE, q4_value / purchase_value, 0.0
        )
        return columns

    def _basket(self, n_orders: np.ndarray) -> dict[str, np.ndarray]:
        g, p = self.by_customer, self.is_purchase
        gross = g.total(self.gross)
        items = g.sum(self.items, p) if self.items is not None else g.total(self.lines.astype(float), p)
        return {
            "refund_share": np.where(gross / _UNITS > AMOUNT_TOLERANCE, g.total(self.refund) / gross, np.nan),
            "items_per_order": np.where(n_orders > 0, items / n_orders, 0.0),
        }


def _mix(rows: dict[str, np.ndarray], codes: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """n_products, n_categories and top_category_share (`features.basket.mix_tables`)."""
    positive = rows["amount"] > 0
    columns = {}
    if "product_id" in rows:
        named = positive & _present(rows["product_id"])
        pairs = np.unique(np.c_[codes[named], _codes(rows["product_id"][named])], axis=0)
        count = np.bincount(pairs[:, 0], minlength=n) if len(pairs) else np.zeros(n, int)
        columns["n_products"] = np.where(count > 0, count, np.nan)
    if "category" in rows:
        named = positive & _present(rows["category"])
        pairs, index = np.unique(
            np.c_[codes[named], _codes(rows["category"][named])], axis=0, return_inverse=True
        )
        pairs = pairs.reshape(-1, 2)
        spend = np.bincount(index.ravel(), weights=_units(rows["amount"][named]), minlength=len(pairs))
        customer = pairs[:, 0]
        count = np.bincount(customer, minlength=n)
        top = np.zeros(n)
        np.maximum.at(top, customer, spend)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = top / np.bincount(customer, weights=spend, minlength=n)
        columns["n_categories"] = np.where(count > 0, count, np.nan)
        columns["top_category_share"] = np.where(count > 0, share, np.nan)
    return columns


def _behaviour(
    events: dict[str, np.ndarray], ids: np.ndarray, orders: _Orders, day: int
) -> dict[str, np.ndarray]:
    """The columns of `features.behaviour` (counts 0, never null, as with an events table)."""
    n = len(ids)
    codes = pd.Index(ids).get_indexer(events["customer_id"])
    known = codes >= 0
    events = {name: values[known] for name, values in events.items()}
    codes = codes[known]
    g = _Groups(codes, n)
    ts, kind = events["timestamp"], events["event_type"]

    def since(times: np.ndarray, days: int) -> np.ndarray:
        return times >= (day + 1 - days) * _DAY

    columns = {
        f"{name}_{n_days}d": g.count((kind == event_type) & since(ts, n_days))
        for name, (event_type, windows) in EVENT_COUNTS.items()
        for n_days in windows
    }
    on_site = pd.Index(ON_SITE_EVENTS).get_indexer(kind) >= 0
    last_visit = g.max(ts, on_site)
    columns["days_since_last_visit"] = np.where(
        g.count(on_site) > 0, day - np.floor_divide(last_visit, _DAY), np.nan
    )
    # Visits: runs of on-site events with no gap over SESSION_GAP_MINUTES, in the last 90 days.
    visits = np.flatnonzero(on_site & since(ts, 90))
    visits = visits[np.lexsort((ts[visits], codes[visits]))]
    gap = SESSION_GAP_MINUTES * 60_000_000
    starts = np.ones(len(visits), dtype=bool)
    starts[1:] = (codes[visits[1:]] != codes[visits[:-1]]) | (ts[visits[:-1]] + gap < ts[visits[1:]])
    started = visits[starts]
    columns["sessions_90d"] = np.bincount(codes[started], minlength=n)
    columns["sessions_30d"] = np.bincount(codes[started][since(ts[started], 30)], minlength=n)
    # Abandoned carts: added before day D, no purchase within CART_WINDOW_HOURS after.
    carts = np.flatnonzero((kind == "add_to_cart") & since(ts, 90) & (ts < day * _DAY))
    purchases = np.flatnonzero(orders.is_purchase)
    purchases = purchases[np.lexsort((orders.ts[purchases], orders.customer[purchases]))]
    bought = orders.customer[purchases]
    bought_ts = orders.ts[purchases]
    window = CART_WINDOW_HOURS * 3_600_000_000
    abandoned = np.ones(len(carts), dtype=bool)
    for customer in np.unique(codes[carts]):
        mine = codes[carts] == customer
        times = bought_ts[np.searchsorted(bought, customer) : np.searchsorted(bought, customer, "right")]
        after = np.searchsorted(times, ts[carts][mine])
        found = after < len(times)
        found[found] = times[after[found]] <= ts[carts][mine][found] + window
        abandoned[mine] = ~found
    left = carts[abandoned]
    columns["abandoned_carts_90d"] = np.bincount(codes[left], minlength=n)
    columns["abandoned_carts_30d"] = np.bincount(codes[left][since(ts[left], 30)], minlength=n)
    return columns


def _attributes(customers: dict[str, np.ndarray], ids: np.ndarray, day: int) -> dict[str, np.ndarray]:
    """acquisition_channel, country, days_since_signup (`features.attributes`): the smallest of each."""
    codes = pd.Index(ids).get_indexer(customers["customer_id"])
    known = codes >= 0
    codes = codes[known]
    columns = {}
    for name in ("acquisition_channel", "country"):
        if name in customers:
            smallest = np.full(len(ids), None, dtype=object)
            for code, value in zip(codes, customers[name][known], strict=True):
                if value is not None and (smallest[code] is None or value < smallest[code]):
                    smallest[code] = value
            columns[name] = smallest
    if "signup_date" in customers:
        signup = customers["signup_date"][known]
        valid = ~np.isnat(signup)
        days = np.where(valid, signup.astype("datetime64[D]").astype(np.int64), day + 1)
        known_by_then = valid & (days <= day)
        g = _Groups(codes, len(ids))
        # A signup after the cut-off is unknown at the cut-off (features.attributes).
        columns["days_since_signup"] = np.where(
            g.count(known_by_then) > 0, day - g.max(days, known_by_then), np.nan
        )
    return columns


def _first_rows(customers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The first row of each customer id, as the contract keeps it (`features.contract`), so a
    request with a customer listed twice gets what `clv score` gives for the same file."""
    first = np.sort(np.unique(customers["customer_id"], return_index=True)[1])
    return {name: values[first] for name, values in customers.items()}


def _units(amount: np.ndarray) -> np.ndarray:
    """Amounts as whole 1e-9 units, rounded half away from zero like a cast to DECIMAL(38, 9)."""
    return np.trunc(amount * _UNITS + np.copysign(0.5, amount))


def _present(values: np.ndarray) -> np.ndarray:
    return np.array([v is not None for v in values], dtype=bool)


def _codes(values: np.ndarray) -> np.ndarray:
    return np.unique(values, return_inverse=True)[1].ravel() if len(values) else np.zeros(0, np.int64)


def _arrays(table: pa.Table) -> dict[str, np.ndarray]:
    """An Arrow table as numpy columns: strings as object arrays (None for null), timestamps as int64
    microseconds, dates as datetime64[D], numbers as float64 (NaN for null)."""
    return {name: _numpy(table[name]) for name in table.column_names}


def _visible(rows: dict[str, np.ndarray], day: int) -> dict[str, np.ndarray]:
    """The rows at or before the cut-off day: timestamp < midnight starting day + 1."""
    keep = rows["timestamp"] < (day + 1) * _DAY
    return {name: values[keep] for name, values in rows.items()}


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_timestamp(column.type):
        return column.to_numpy().astype("datetime64[us]").view(np.int64)
    if pa.types.is_date(column.type):
        return column.to_numpy().astype("datetime64[D]")
    if pa.types.is_string(column.type):
        return np.asarray(column.to_pylist(), dtype=object)
    return column.to_numpy()


def _to_arrow(frame: pd.DataFrame, schema: TableSchema) -> pa.Table:
    """The frame's contract columns as an Arrow table of contract types (`_completed`)."""
    _require(frame, schema)
    columns = {}
    for name, kind in schema.columns.items():
        if name not in frame.columns:
            continue
        try:
            columns[name] = _column(frame[name], kind)
        except (ValueError, TypeError, pa.ArrowException) as exc:
            raise ValueError(_unreadable(frame[name], kind, f"{schema.name}.{name}", exc)) from None
    return _completed(pa.table(columns), schema)


def _typed(values: list, kind: str, where: str) -> pa.Array:
    """Typed values as Arrow; values of other types (text for a time) are read as a frame's column is."""
    try:
        return pa.array(values, type=_ARROW_TYPES[kind])
    except (pa.ArrowException, TypeError, ValueError):
        series = pd.Series(values, dtype=object)
        try:
            return _column(series, kind)
        except (ValueError, TypeError, pa.ArrowException) as exc:
            raise ValueError(_unreadable(series, kind, where, exc)) from None


def _require(table: pd.DataFrame | dict, schema: TableSchema) -> None:
    missing = [c for c in schema.required if c not in table]
    if missing:
        raise ValueError(
            f"{schema.name}: missing required column(s) {', '.join(missing)}; "
            f"expected {', '.join(schema.required)} (optional: {', '.join(schema.optional) or 'none'})"
        )


def _completed(table: pa.Table, schema: TableSchema) -> pa.Table:
    """Order ids and amounts filled in as the contract fills them; required values and finite
    amounts checked."""
    given = set(table.column_names)
    if schema is TRANSACTIONS:
        # Without an order id, no column or a null, a customer-day is one order (README, Data contract), as
        # in features.contract.
        day = pc.strftime(table["timestamp"], format="%Y-%m-%d")
        day_order = pc.binary_join_element_wise(table["customer_id"], day, "|")
        if "order_id" in given:
            table = table.set_column(
                table.column_names.index("order_id"), "order_id", pc.coalesce(table["order_id"], day_order)
            )
        else:
            table = table.append_column("order_id", day_order)
    if schema is TRANSACTIONS and "amount" not in given:
        table = table.append_column("amount", _unit_amounts(table))
    if table.num_rows and any(table[c].null_count for c in schema.required):
        raise ValueError(f"{schema.name}: required columns {', '.join(schema.required)} must not be empty")
    if schema is TRANSACTIONS and "amount" in given:
        # As in the contract: once there are amounts, every row needs a finite one.
        finite = pc.fill_null(pc.is_finite(table["amount"]), False)
        if table.num_rows and not pc.all(finite).as_py():
            row = int(pc.index(finite, False).as_py())
            value = table["amount"][row].as_py()
            raise ValueError(
                f"transactions.amount, row {row + 1}: {'null' if value is None else value} is not a finite number; "
                "every transaction needs its amount (or leave the amount out of every row: each order then "
                "counts as 1)"
            )
    return table


def _unit_amounts(table: pa.Table) -> pa.Array:
    """Each row's share of its order when the log has no amounts: every order is worth 1."""
    keys = table.select(["customer_id", "order_id"]).to_pandas()
    lines = keys.groupby(["customer_id", "order_id"], dropna=False)["order_id"].transform("size")
    return pa.array(1.0 / lines.to_numpy(float), type=pa.float64())


_HOW = {
    "timestamp": "an ISO 8601 date or time, e.g. 2025-03-01 or 2025-03-01T10:00:00+02:00",
    "date": "an ISO 8601 date, e.g. 2025-03-01",
    "float64": "a number, e.g. 19.90",
    "string": "text",
}


def _column(values: pd.Series, kind: str, errors: str = "raise") -> pa.Array:
    if kind in ("timestamp", "date"):
        # Naive times are UTC and offsets are converted, as in the batch contract.
        values = pd.to_datetime(values, utc=True, format="mixed", errors=errors).dt.tz_localize(None)
        if kind == "date":
            values = values.dt.date
    elif kind == "string":
        values = values.astype("string")
    elif kind == "float64":
        values = pd.to_numeric(values, errors=errors).astype("float64")
    return pa.array(values, type=_ARROW_TYPES[kind], from_pandas=True)


def _unreadable(values: pd.Series, kind: str, where: str, exc: Exception) -> str:
    """Name the first row whose value cannot be read, and what would be readable."""
    try:
        parsed = _column(values, kind, errors="coerce").to_pandas()
        bad = values.notna().to_numpy() & pd.isna(parsed).to_numpy()
    except (ValueError, TypeError, pa.ArrowException):
        bad = None
    if bad is not None and bad.any():
        row = int(bad.argmax())
        return f"{where}, row {row + 1}: cannot read {values.iloc[row]!r}; expected {_HOW[kind]}"
    return f"{where}: cannot read the values as {kind} ({str(exc).splitlines()[0]}); expected {_HOW[kind]}"
