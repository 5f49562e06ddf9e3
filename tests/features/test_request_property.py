"""Property: for any small history, the request path gives the batch path's feature table.

`compute_features_for_request` (pandas in, pandas out) and `compute_features_for_columns` (the
service's validated columns in) must agree with `compute_features` run on
the same frames, with order_id and amount filled in as the contract fills them
(`features.contract`): without order_id a customer-day is one order, without amount every order
is worth 1, split over its lines. Only the public function is called, so the property holds for
whatever implementation serves requests.

The generator aims at the definitions' edges rather than at realistic shops: ties in time, refunds
inside and outside orders, cancellations and free orders, timestamps on every window boundary and
on the cut-off itself, rows after the cut-off, each optional column present or absent (with
nulls), events of every type around the session and abandoned-cart thresholds, and customers and
events of people who never ordered. Input rows are shuffled, so no path may rely on their order
(but for the customers table, where the contract keeps a repeated customer's first row).
"""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.pipeline import FEATURE_COLUMNS, compute_features
from features.request import compute_features_for_columns, compute_features_for_request
from features.schema import CUSTOMERS, EVENT_TYPES, EVENTS, TRANSACTIONS, TableSchema

# A leap day, a year end (Q4 boundaries right before the cut-off), a quarter start, a month end.
AS_OFS = (dt.date(2024, 2, 29), dt.date(2023, 12, 31), dt.date(2023, 10, 1), dt.date(2024, 3, 31))
TX_OPTIONAL = ("amount", "order_id", "quantity", "product_id", "category", "channel")
# Each attribute alone, all of them, none (no attribute table), and the columns no feature reads.
CUSTOMER_COLUMN_SETS = (
    tuple(CUSTOMERS.optional),
    ("signup_date",),
    ("acquisition_channel",),
    ("signup_date", "email"),
    ("country",),
    ("signup_date", "acquisition_channel", "country"),
    ("birth_date", "email"),
    (),
)
UNKNOWN_EVENT = "wishlist_add"
GHOST = "ghost"  # in the events and customers tables, never in the transactions

# Days relative to the cut-off D: D itself, the first and last day of each window, D + 1 and later.
BOUNDARY_DAYS = (0, -1, -29, -30, -89, -90, -179, -180, -364, -365, 1, 2)
LAST_SECOND = 86_399
SECOND = pd.Timedelta(seconds=1)
# add_to_cart relative to an order: exactly 24 h before (still not abandoned), just over, after it.
CART_BEFORE_ORDER = tuple(
    pd.Timedelta(x) for x in ("-24h", "-86401s", "-23h59min", "-1h", "-1s", "0s", "1s", "-30h")
)
# An event relative to the previous one: a visit ends after a gap over 30 minutes.
AFTER_PREVIOUS = tuple(pd.Timedelta(x) for x in ("1799s", "30min", "1801s", "0s", "5min", "2h", "24h"))


def subsets(names: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every subset, the full set first (Hypothesis draws the first element most often).

    Drawn with `sampled_from`: one boolean per name comes out strongly correlated across names.
    """
    masks = range(2 ** len(names) - 1, -1, -1)
    return [tuple(n for i, n in enumerate(names) if mask >> i & 1) for mask in masks]


def boundary_instants(as_of: dt.date) -> list[pd.Timestamp]:
    """The seconds on either side of each boundary: D + 1 starts (excluded), each window's first
    day starts (D - 29, D - 89, D - 179, D - 364), Q4 starts and ends (Oct 1, Jan 1) up to D + 1."""
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    starts = [end + pd.Timedelta(days=d) for d in (0, -30, -90, -180, -365)]
    for year in (as_of.year - 1, as_of.year):
        starts += [t for t in (pd.Timestamp(year, 10, 1), pd.Timestamp(year + 1, 1, 1)) if t <= end]
    return sorted({t + offset for t in starts for offset in (pd.Timedelta(0), -SECOND)})


def moments(as_of: dt.date) -> st.SearchStrategy[pd.Timestamp]:
    """Naive UTC times: a third on a boundary instant, a third on a boundary day, a third anywhere."""
    start = pd.Timestamp(as_of)
    boundary_day = st.builds(
        lambda d, s: start + pd.Timedelta(days=d, seconds=s),
        st.sampled_from(BOUNDARY_DAYS),
        st.integers(0, LAST_SECOND),
    )
    anywhere = st.builds(
        lambda d, s: start + pd.Timedelta(days=d, seconds=s),
        st.integers(-500, 2),
        st.integers(0, LAST_SECOND),
    )
    return st.one_of(st.sampled_from(boundary_instants(as_of)), boundary_day, anywhere)


# Cents, round and large-ish amounts (money is exact to the cent in every path).
MONEY = st.one_of(
    st.integers(1, 20_000).map(lambda cents: cents / 100),
    st.sampled_from([0.01, 0.1, 0.2, 0.3, 1.0, 19.99, 99.95, 1_000.0, 12_345.67, 99_999.99, 250_000.01]),
)
QUANTITY = st.sampled_from([1.0, 1.0, 2.0, 3.0, 0.5, None])
PRODUCT = st.sampled_from(["p1", "p2", "p3", "p4", None])
CATEGORY = st.sampled_from(["k1", "k1", "k2", "k3", None])
ORDER_KINDS = ("sale", "sale", "sale", "refunded", "cancelled", "free", "refund_only")
# Lines of an order after its first (which may cross midnight); refunds later, possibly after D
# (a refund after the cut-off must not change the order as seen at D).
LINE_DELAYS = (pd.Timedelta(0), pd.Timedelta(0), SECOND, pd.Timedelta("10min"))
REFUND_DELAYS = tuple(pd.Timedelta(x) for x in ("0s", "1h", "3D", "40D"))


@st.composite
def transactions(draw, as_of: dt.date) -> pd.DataFrame:
    """Every optional column filled; the caller drops the ones an example leaves out.

    Order ids repeat across customers (an order is keyed by customer and order id). Orders may tie
    in time with the customer's previous order or fall on its day.
    """
    rows = []

    def line(customer, order_id, ts, amount):
        rows.append(
            {
                "customer_id": customer,
                "timestamp": ts,
                "amount": amount,
                "order_id": order_id,
                "quantity": draw(QUANTITY),
                "product_id": draw(PRODUCT),
                "category": draw(CATEGORY),
                "channel": draw(st.sampled_from(["web", "app"])),
            }
        )

    for c in range(draw(st.integers(1, 4))):
        customer = f"c{c}"
        # Some customers never buy: only refunds and free orders.
        kinds = ORDER_KINDS if draw(st.integers(0, 4)) < 4 else ("refund_only", "refund_only", "free")
        times: list[pd.Timestamp] = []
        for k in range(draw(st.integers(1, 5))):
            kind = draw(st.sampled_from(kinds))
            if times and draw(st.integers(0, 3)) == 0:
                when = draw(st.sampled_from(times))
                if draw(st.booleans()):
                    when = when.normalize() + pd.Timedelta(seconds=draw(st.integers(0, 86_399)))
            else:
                when = draw(moments(as_of))
            times.append(when)
            order = (customer, f"r{k}" if kind == "refund_only" else f"o{k}")
            if kind == "refund_only":
                for _ in range(draw(st.integers(1, 2))):
                    line(*order, when, -draw(MONEY))
                continue
            amounts = [0.0 if kind == "free" else draw(MONEY) for _ in range(draw(st.integers(1, 3)))]
            if kind == "sale" and draw(st.integers(0, 4)) == 0:
                amounts.append(0.0)  # a free line in a paid order
            for amount in amounts:
                line(*order, when + draw(st.sampled_from(LINE_DELAYS)), amount)
            if kind == "cancelled":
                for amount in amounts:
                    line(*order, when + draw(st.sampled_from(REFUND_DELAYS)), -amount)
            elif kind == "refunded":
                amount = draw(st.sampled_from(amounts))
                share = draw(st.sampled_from([1.0, 0.5, 0.1, 0.33]))
                line(*order, when + draw(st.sampled_from(REFUND_DELAYS)), -round(amount * share, 2) or -0.01)
    frame = pd.DataFrame(rows)
    return frame.iloc[draw(st.permutations(range(len(frame))))].reset_index(drop=True)


@st.composite
def events_for(draw, as_of: dt.date, tx: pd.DataFrame) -> pd.DataFrame:
    """Events of the transactions' customers and of a ghost: every type and an unknown one,
    carts placed around their customer's orders, events chained around the 30-minute visit gap."""
    rows = []
    for customer in [*tx.customer_id.unique(), GHOST]:
        orders = tx.timestamp[tx.customer_id == customer].tolist()
        previous = None
        for _ in range(draw(st.integers(0, 7))):
            anchor = draw(st.sampled_from(["free", "order", "previous", "previous"]))
            if anchor == "order" and orders:
                event_type = "add_to_cart"
                when = draw(st.sampled_from(orders)) + draw(st.sampled_from(CART_BEFORE_ORDER))
            else:
                event_type = draw(st.sampled_from([*EVENT_TYPES, UNKNOWN_EVENT]))
                if anchor == "previous" and previous is not None:
                    when = previous + draw(st.sampled_from(AFTER_PREVIOUS))
                else:
                    when = draw(moments(as_of))
            rows.append({"customer_id": customer, "timestamp": when, "event_type": event_type})
            previous = when
    frame = pd.DataFrame(rows, columns=list(EVENTS.columns))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame.iloc[draw(st.permutations(range(len(frame))))].reset_index(drop=True)


@st.composite
def customers_for(draw, as_of: dt.date, tx: pd.DataFrame) -> pd.DataFrame:
    """Some of the transactions' customers and a ghost, some listed twice, signups before, on and
    after the cut-off, missing values; any subset of the optional columns."""
    columns = list(draw(st.sampled_from(CUSTOMER_COLUMN_SETS)))
    ids = [c for c in sorted(tx.customer_id.unique()) if draw(st.integers(0, 3)) < 3]
    signup = st.sampled_from([-400, -31, -1, 0, 1, 30, 400, None]).map(
        lambda days: None if days is None else as_of + dt.timedelta(days=days)
    )
    values = {
        "signup_date": signup,
        "acquisition_channel": st.sampled_from(["search", "social", "email", None]),
        "country": st.sampled_from(["DE", "FR", None]),
        "birth_date": st.sampled_from([dt.date(1980, 1, 1), None]),
        "email": st.sampled_from(["someone@example.com", None]),
    }
    rows = []
    for customer in [*ids, GHOST]:
        for _ in range(draw(st.integers(1, 2))):
            rows.append({"customer_id": customer, **{c: draw(values[c]) for c in columns}})
    frame = pd.DataFrame(rows, columns=["customer_id", *columns])
    return frame.iloc[draw(st.permutations(range(len(frame))))].reset_index(drop=True)


@st.composite
def histories(draw, with_extras: bool):
    """(as_of, transactions, events or None, customers or None) as a request would send them."""
    as_of = draw(st.sampled_from(AS_OFS))
    full = draw(transactions(as_of))
    tx = full[["customer_id", "timestamp", *draw(st.sampled_from(subsets(TX_OPTIONAL)))]]
    events = customers = None
    if with_extras:
        # Events only, customers only, or (twice as often) both.
        tables = draw(st.sampled_from(["both", "events", "customers", "both"]))
        if tables != "customers":
            events = draw(events_for(as_of, full))
        if tables != "events":
            customers = draw(customers_for(as_of, full))
    return as_of, tx, events, customers


def canonical_transactions(tx: pd.DataFrame) -> pd.DataFrame:
    """The transactions as the contract materialises them: order_id and amount always present."""
    tx = tx.copy()
    if "order_id" not in tx:
        tx["order_id"] = tx["customer_id"] + "|" + tx["timestamp"].dt.strftime("%Y-%m-%d")
    if "amount" not in tx:
        lines = tx.groupby(["customer_id", "order_id"])["order_id"].transform("size")
        tx["amount"] = 1.0 / lines.astype(float)
    return tx


def memtable(frame: pd.DataFrame, schema: TableSchema) -> ibis.Table:
    """A batch input table typed by the contract (columns that are all null keep their type)."""
    return ibis.memtable(frame, schema={c: schema.columns[c] for c in frame.columns if c in schema.columns})


def batch(tx, as_of, events=None, customers=None) -> pd.DataFrame:
    return compute_features(
        memtable(canonical_transactions(tx), TRANSACTIONS),
        as_of,
        None if events is None else memtable(events, EVENTS),
        # The contract keeps the first row of a customer listed twice (features.contract).
        None if customers is None else memtable(customers.drop_duplicates("customer_id"), CUSTOMERS),
    )


def assert_same_features(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal frames: non-float columns exactly, floats up to the last bits (batch sums exact decimals)."""
    floats = [c for c in expected.columns if pd.api.types.is_float_dtype(expected[c])]
    pd.testing.assert_frame_equal(got.drop(columns=floats), expected.drop(columns=floats), check_exact=True)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, atol=1e-9)


def columns(frame: pd.DataFrame | None) -> dict[str, list] | None:
    """A frame as the service's validated columns: Python values, None where missing."""
    if frame is None:
        return None
    return {c: [None if pd.isna(v) else v for v in frame[c].tolist()] for c in frame.columns}


def check(as_of, tx, events, customers) -> None:
    got = compute_features_for_request(tx, as_of, events, customers)
    expected = batch(tx, as_of, events, customers)
    assert_same_features(got, expected)
    # The service's own entry point, from the columns of validated request bodies.
    assert_same_features(
        compute_features_for_columns(columns(tx), as_of, columns(events), columns(customers)), expected
    )
    # A row for exactly the customers with a transaction by the cut-off, whatever else is sent.
    seen = tx.customer_id[tx.timestamp < pd.Timestamp(as_of) + pd.Timedelta(days=1)]
    assert got.customer_id.tolist() == sorted(seen.unique())


# Derandomized: CI runs the same examples every time. The batch path takes 0.1-0.3 s an example.
SETTINGS = {"deadline": None, "derandomize": True, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=90, **SETTINGS)
@given(histories(with_extras=False))
def test_request_equals_batch_on_transactions(history):
    check(*history)


@settings(max_examples=70, **SETTINGS)
@given(histories(with_extras=True))
def test_request_equals_batch_with_events_and_customers(history):
    check(*history)


@pytest.mark.parametrize("optional", [(), TX_OPTIONAL])
@pytest.mark.parametrize("with_extras", [False, True])
def test_request_equals_batch_on_empty_transactions(optional, with_extras):
    """No transactions: no rows, the same columns and types, even when events and customers exist."""
    as_of = AS_OFS[0]
    kinds = {"string": "string", "timestamp": "datetime64[ns]", "float64": "float64"}
    tx = pd.DataFrame(
        {
            c: pd.Series([], dtype=kinds[TRANSACTIONS.columns[c]])
            for c in ("customer_id", "timestamp", *optional)
        }
    )
    events = customers = None
    if with_extras:
        events = pd.DataFrame(
            {"customer_id": [GHOST], "timestamp": [pd.Timestamp(as_of)], "event_type": ["page_view"]}
        )
        customers = pd.DataFrame({"customer_id": [GHOST], "country": ["DE"], "signup_date": [as_of]})
    got = compute_features_for_request(tx, as_of, events, customers)
    assert tuple(got.columns) == FEATURE_COLUMNS and got.empty
    assert_same_features(got, batch(tx, as_of, events, customers))
