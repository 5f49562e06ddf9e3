"""A realistic, deterministic synthetic shop: transactions, events, customers and the latent truth.

The purchase process follows the buy-till-you-die story of BG/NBD (Fader, Hardie and Lee 2005,
"Counting your customers the easy way"): while alive, a customer buys as a Poisson process with
a gamma-distributed rate `lambda`; after each purchase they drop out with a beta-distributed
probability `p`. Spend per order follows Gamma-Gamma (Fader, Hardie and Lee 2005, "RFM and CLV"):
order values are gamma around a customer mean that is itself inverse-gamma across customers.

On top of that, and on purpose, effects the BTYD models do not capture, so a model with behavioural
and customer features has something real to learn:

- a Q4 peak: purchase (and browsing) intensity is about 1.6x in November and December, with weekly
  and daily cycles, so timestamps have a realistic time of day;
- dropout can happen after the first purchase too (as in MBG/NBD), and acquisition channels differ
  in rate, loyalty and extra dropout after the first order (paid social buys once and leaves);
- about 30% of customers have a spend trend (their order values grow or shrink over the years);
- countries differ in spend level, and November/December baskets are about 10% bigger;
- behavioural events follow the customer's latent propensity and fade over the 60 days before the
  customer drops out (email opens, browsing sessions, support tickets), then nearly stop;
- product views, carts and checkouts name a category and product, leaning towards what the customer
  buys next (`NEXT_ORDER_SHARE` of them come from her next order's lines), so "viewed or carted, not
  bought" is a real but noisy cross-sell signal.

Orders have 1-5 lines over a catalogue of a few hundred products in ten categories; each customer
mostly buys from 1-3 preferred, often complementary, categories. Line amounts split the order value
in proportion to list price x quantity, so a product's unit price varies from order to order.

Everything is drawn from one `numpy.random.default_rng(seed)` in a fixed order, so a seed gives the
same tables and, through `write_demo_shop`, byte-identical files. Nothing depends on today's date.
The events' items alone come from a second generator, `default_rng([seed, 16])`, drawn last: they
were added later (issue 16), and every other column stays what it was for the same seed.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from features.schema import CUSTOMERS, EVENT_TYPES, EVENTS, TRANSACTIONS

Progress = Callable[[str], None]

SECONDS_PER_DAY = 86_400
FADE_DAYS = 60.0  # engagement declines over this many days before a customer drops out
FADE_FLOOR = 0.15  # engagement right before dropout, relative to normal
DEAD_LEVEL = 0.04  # engagement after dropout: rare visits and email opens by lapsed customers

# Purchase rate lambda ~ Gamma(shape R, rate ALPHA) per day (mean R / ALPHA = one order per ~45 days),
# dropout p ~ Beta(A, B) (mean 0.20). Spend: customer mean = P_GG / nu with nu ~ Gamma(Q_GG, rate GAMMA_GG),
# order value ~ Gamma(P_GG, rate nu); average customer mean about P_GG * GAMMA_GG / (Q_GG - 1) = 70.
BGNBD_R, BGNBD_ALPHA = 0.85, 38.0
BGNBD_A, BGNBD_B = 1.0, 4.0
GG_P, GG_Q, GG_GAMMA = 5.0, 3.0, 28.0
MAX_LAMBDA = 0.35  # purchases per day; a cap so the simulation loop stays short

MONTH_FACTOR = np.array([0.95, 0.85, 0.95, 1.0, 1.0, 0.95, 0.9, 0.9, 1.0, 1.05, 1.6, 1.6])
WEEKDAY_FACTOR = np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.95, 1.1])  # Monday first; Sunday evening shopping
HOUR_FACTOR = np.array(
    [0.25, 0.15, 0.1, 0.08, 0.08, 0.12, 0.3, 0.6, 0.9, 1.1, 1.2, 1.3,
     1.35, 1.3, 1.2, 1.15, 1.2, 1.3, 1.5, 1.8, 1.9, 1.7, 1.2, 0.6]
)  # fmt: skip
HOUR_FACTOR = HOUR_FACTOR / HOUR_FACTOR.mean()


@dataclass(frozen=True)
class _Channel:
    name: str
    share_start: float  # acquisition share at the start of the period
    share_end: float  # ... and at the end (paid social grows)
    rate: float  # multiplies lambda
    dropout: float  # multiplies p
    first_dropout: float  # extra probability of leaving right after the first order
    browse: float  # multiplies the browsing propensity
    email_open: float  # multiplies the email open rate
    cac: float  # acquisition spend per acquired customer (currency), for the spend file


# Costs per acquired customer follow what shops of this size report: organic traffic is bought with
# nothing the shop books as acquisition spend, a referral costs its reward, paid social the most (and it
# brings the customers who leave soonest, so its CLV:CAC is the weakest).
CHANNELS = (
    _Channel("organic", 0.30, 0.24, 1.00, 0.85, 0.05, 1.1, 1.0, 0.0),
    _Channel("paid_search", 0.22, 0.20, 1.00, 1.00, 0.15, 1.0, 0.9, 38.0),
    _Channel("paid_social", 0.12, 0.28, 0.70, 1.30, 0.40, 0.8, 0.7, 55.0),
    _Channel("email", 0.12, 0.10, 1.15, 0.85, 0.05, 1.0, 1.6, 6.0),
    _Channel("referral", 0.10, 0.08, 1.20, 0.65, 0.00, 1.2, 1.1, 10.0),
    _Channel("affiliate", 0.14, 0.10, 0.90, 1.10, 0.25, 0.9, 0.8, 24.0),
)
# Monthly spend is not exactly customers x cost: budgets and auction prices vary (log-normal spread).
SPEND_SPREAD = 0.25
COUNTRIES = ("DE", "FR", "GB", "US", "NL", "ES")
COUNTRY_SHARE = np.array([0.30, 0.14, 0.17, 0.22, 0.08, 0.09])
COUNTRY_SPEND = np.array([1.00, 0.95, 1.05, 1.20, 1.00, 0.85])
COUNTRY_RATE = np.array([1.00, 0.95, 1.00, 1.05, 1.05, 0.90])

ORDER_CHANNELS = ("web", "app", "store")
ORDER_CHANNEL_SHARE = np.array([0.55, 0.30, 0.15])

CATEGORIES = (
    "electronics", "accessories", "home", "kitchen", "fashion", "shoes", "beauty", "sports", "books", "toys",
)  # fmt: skip
CATEGORY_POPULARITY = np.array([0.10, 0.12, 0.11, 0.09, 0.15, 0.08, 0.10, 0.09, 0.08, 0.08])
# Second preferred category: complements (electronics -> accessories, fashion -> shoes, ...).
CATEGORY_AFFINITY = np.array([1, 0, 3, 2, 5, 4, 4, 5, 9, 8])
CATEGORY_PRICE = np.array([180.0, 25.0, 60.0, 40.0, 45.0, 70.0, 20.0, 50.0, 15.0, 25.0])
CATEGORY_RETURNS = np.array([0.8, 0.5, 0.6, 0.5, 2.0, 1.8, 0.4, 0.8, 0.3, 0.5])  # fashion and shoes come back
N_PRODUCTS = 320

EMAIL_EVERY_DAYS = 7
# Share of product views, carts and checkouts about a line of the customer's next order (when she has
# one); the rest are about a preferred category (PREFERRED_SHARE of them) or any category.
NEXT_ORDER_SHARE = 0.4
PREFERRED_SHARE = 0.7
ITEM_EVENTS = ("product_view", "add_to_cart", "checkout_start")
MAX_CUSTOMERS = 100_000_000  # events pack (second, customer, type) into one int64


@dataclass(frozen=True)
class DemoShop:
    """The four tables of a demo shop; `truth` holds the latent parameters and is for tests only.

    `spend` is the acquisition spend file (`channel, month, spend`, read by `clv economics --spend`);
    it is not a table of the data contract, so `tables()` leaves it out.
    """

    transactions: pd.DataFrame
    events: pd.DataFrame
    customers: pd.DataFrame
    truth: pd.DataFrame
    spend: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "transactions": self.transactions,
            "events": self.events,
            "customers": self.customers,
            "truth": self.truth,
        }


def generate_demo_shop(
    n_customers: int = 20_000,
    seed: int = 0,
    end: dt.date = dt.date(2025, 12, 31),
    years: float = 3.0,
    progress: Progress | None = None,
) -> DemoShop:
    """Simulate a shop whose customers are acquired over `years` up to and including the day `end`.

    Returns canonical tables (`features.schema`): transactions (one row per order line, refunds and
    cancellations as negative rows), events, customers, and `truth` (one row per customer with the
    latent parameters: `lambda` = baseline purchases per day outside the Q4 peak, `p_dropout` =
    probability of leaving after each repeat purchase, `p_dropout_first` = after the first purchase,
    `dropout_date` = moment of dropout or NaT if alive at the end, `mean_spend` = mean order value at
    acquisition, `spend_trend` = yearly log-change of order values), and `spend`: acquisition spend
    per channel and month (`_spend_frame`). All timestamps are naive UTC with whole seconds, between
    `end - years` 00:00:00 and `end` 23:59:59. Deterministic in all arguments.
    """
    if not 1 <= n_customers <= MAX_CUSTOMERS:
        raise ValueError(f"n_customers must be between 1 and {MAX_CUSTOMERS:,}, got {n_customers:,}")
    if not 0.25 <= years <= 50:
        raise ValueError(f"years must be between 0.25 and 50, got {years}")
    say = progress or (lambda _message: None)
    rng = np.random.default_rng(seed)
    cal = _Calendar(end, years)

    say("customers")
    cust = _draw_customers(rng, n_customers, cal)
    say("purchases")
    orders = _simulate_purchases(rng, cust, cal)
    say("order lines, refunds and cancellations")
    lines = _order_lines(rng, orders, cust, cal)
    say("events")
    events = _events(rng, cust, orders, lines, cal)
    say("acquisition spend")
    spend = _spend_frame(rng, cust, cal)
    say("what events were about")
    # A separate generator, drawn last: the items move no draw above, so every other column stays what
    # it was for the seed (tests/demo/test_shop.py checks it against the shop before items).
    items = _event_items(np.random.default_rng([seed, 16]), cust, lines, events)
    say("tables")
    ids = _customer_ids(n_customers)
    return DemoShop(
        transactions=_transactions_frame(lines, ids, cal),
        events=_events_frame(events, items, ids, cal),
        customers=_customers_frame(cust, ids, cal),
        truth=_truth_frame(cust, ids, cal),
        spend=spend,
    )


def write_demo_shop(
    out_dir: Path | str,
    n_customers: int = 20_000,
    seed: int = 0,
    fmt: Literal["parquet", "csv"] = "parquet",
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Generate a demo shop and write `transactions`, `events`, `customers`, `truth` as `<name>.<fmt>`,
    and the acquisition spend as `spend.csv` (`channel,month,spend`, whatever `fmt`: the format
    `clv economics --spend` reads; `[economics] spend` points at it while the demo shop is the data).

    Files are byte-identical for the same arguments. Each is written to a temporary file in `out_dir`
    and moved into place only once all five are written, so a failure leaves no half-written table.
    CSV has a header, no index, ISO timestamps (`2025-12-31 23:59:59`) and amounts with two decimals.
    Returns the paths by name (the tables' names, and `spend`).
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    out = Path(out_dir)
    shop = generate_demo_shop(n_customers=n_customers, seed=seed, progress=progress)
    # Made only now: a generation stopped or failed leaves no empty directory behind.
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _message: None)
    written: dict[str, Path] = {}
    temps: list[str] = []
    try:
        for name, frame, kind in [
            *((n, f, fmt) for n, f in shop.tables().items()),
            ("spend", shop.spend, "csv"),
        ]:
            say(f"writing {name}.{kind}")
            fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=f".{kind}.tmp")
            os.close(fd)
            os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; these are ordinary data files
            temps.append(tmp)
            _write_table(frame, Path(tmp), kind)
            written[name] = out / f"{name}.{kind}"
        for tmp, path in zip(temps, written.values(), strict=True):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            if os.path.exists(tmp):
                os.remove(tmp)
    return written


# --------------------------------------------------------------------------------------------
# Calendar: an hourly intensity grid and its integral, so non-homogeneous Poisson processes can
# be drawn by a change of time (uniform or exponential draws in "operational time", mapped back).


class _Calendar:
    """The simulated period in days from its start (t = 0 is `start` 00:00:00, `days` is the end)."""

    def __init__(self, end: dt.date, years: float):
        self.days = max(1, round(years * 365.25))
        self.start = end - dt.timedelta(days=self.days - 1)
        self.start_s = int((self.start - dt.date(1970, 1, 1)).days) * SECONDS_PER_DAY
        self.last_second = self.days * SECONDS_PER_DAY - 1  # end 23:59:59, in seconds from the start
        dates = np.datetime64(self.start, "D") + np.arange(self.days)
        months = dates.astype("datetime64[M]").astype(np.int64) % 12
        weekdays = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
        daily = MONTH_FACTOR[months] * WEEKDAY_FACTOR[weekdays]
        self.month = np.repeat(months, 24)
        self.intensity = (daily[:, None] * HOUR_FACTOR[None, :]).ravel()  # per hour, mean about 1.07
        self.grid = np.arange(self.days * 24 + 1) / 24.0
        self.cum = np.concatenate([[0.0], np.cumsum(self.intensity) / 24.0])  # operational days
        self.total = self.cum[-1]

    def operational(self, t: np.ndarray) -> np.ndarray:
        """Integrated intensity up to real time t (days); linear beyond the period."""
        inside = np.interp(t, self.grid, self.cum)
        return np.where(t > self.days, self.total + (t - self.days), inside)

    def real(self, tau: np.ndarray) -> np.ndarray:
        """Inverse of `operational`: the real time (days) at which operational time tau is reached."""
        inside = np.interp(tau, self.cum, self.grid)
        return np.where(tau > self.total, self.days + (tau - self.total), inside)

    def month_of(self, t: np.ndarray) -> np.ndarray:
        hour = np.clip((t * 24).astype(np.int64), 0, self.month.size - 1)
        return self.month[hour]

    def seconds(self, t: np.ndarray) -> np.ndarray:
        """Real time in days -> whole seconds from the start."""
        return np.floor(t * SECONDS_PER_DAY).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Customers and their latent parameters.


@dataclass
class _Customers:
    n: int
    acquired: np.ndarray  # first purchase, days from start
    signup: np.ndarray  # days from start, on or before `acquired`
    channel: np.ndarray  # index into CHANNELS
    country: np.ndarray  # index into COUNTRIES
    lam: np.ndarray  # purchases per day at baseline intensity
    p: np.ndarray  # dropout probability after a repeat purchase
    p_first: np.ndarray  # dropout probability after the first purchase
    mean_spend: np.ndarray  # mean order value at acquisition
    trend: np.ndarray  # yearly log-change of order values
    categories: np.ndarray  # (n, 3) preferred category indices, -1 where unused
    order_channel: np.ndarray  # preferred order channel
    browse: np.ndarray  # browsing sessions per day at full engagement and baseline intensity
    open_rate: np.ndarray  # probability of opening a campaign email at full engagement
    click_rate: np.ndarray  # probability of clicking, given an open
    return_rate: np.ndarray  # probability of refunding an order line
    birth_offset: np.ndarray  # age at signup in days
    dropout: np.ndarray | None = None  # days from start; inf when still alive after the period


def _draw_customers(rng: np.random.Generator, n: int, cal: _Calendar) -> _Customers:
    # A growing shop: acquisition density rises threefold over the period and follows the same
    # seasonal and daily cycle as purchases (Black Friday brings new customers too).
    hours = cal.intensity * (1.0 + 2.0 * np.arange(cal.intensity.size) / cal.intensity.size)
    cdf = np.concatenate([[0.0], np.cumsum(hours)])
    acquired = np.interp(rng.random(n) * cdf[-1], cdf, cal.grid)

    # Half sign up right before the first order, the others browsed for a while before buying.
    lead = np.where(rng.random(n) < 0.5, rng.random(n) * 0.02, rng.exponential(25.0, n))
    signup = np.maximum(acquired - lead, 0.0)

    frac = acquired / cal.days
    start_share = np.array([c.share_start for c in CHANNELS])
    end_share = np.array([c.share_end for c in CHANNELS])
    shares = start_share[None, :] * (1 - frac[:, None]) + end_share[None, :] * frac[:, None]
    channel = _choose_rows(rng, shares)
    country = rng.choice(len(COUNTRIES), size=n, p=COUNTRY_SHARE)

    rate_mult = np.array([c.rate for c in CHANNELS])[channel] * COUNTRY_RATE[country]
    lam = np.minimum(rng.gamma(BGNBD_R, 1.0 / BGNBD_ALPHA, n) * rate_mult, MAX_LAMBDA)
    base_p = rng.beta(BGNBD_A, BGNBD_B, n)
    p = np.minimum(base_p * np.array([c.dropout for c in CHANNELS])[channel], 0.95)
    extra = np.array([c.first_dropout for c in CHANNELS])[channel]
    p_first = p + (1.0 - p) * extra

    nu = rng.gamma(GG_Q, 1.0 / GG_GAMMA, n)
    mean_spend = np.clip(GG_P / nu, 8.0, 3000.0) * COUNTRY_SPEND[country]
    trending = rng.random(n) < 0.3
    trend = np.where(trending, rng.normal(0.0, 0.35, n), 0.0)

    n_pref = rng.choice(3, size=n, p=[0.4, 0.4, 0.2]) + 1
    first = rng.choice(len(CATEGORIES), size=n, p=CATEGORY_POPULARITY / CATEGORY_POPULARITY.sum())
    second = np.where(rng.random(n) < 0.6, CATEGORY_AFFINITY[first], rng.integers(0, len(CATEGORIES), n))
    third = rng.integers(0, len(CATEGORIES), n)
    categories = np.stack(
        [first, np.where(n_pref >= 2, second, -1), np.where(n_pref >= 3, third, -1)], axis=1
    )

    order_channel = rng.choice(len(ORDER_CHANNELS), size=n, p=ORDER_CHANNEL_SHARE)

    # Behaviour follows the latent propensity: frequent, loyal buyers browse and open more.
    loyalty = (1.0 - p) ** 2
    browse = (
        0.028
        * np.sqrt(lam / (BGNBD_R / BGNBD_ALPHA))
        * rng.lognormal(0.0, 0.5, n)
        * np.array([c.browse for c in CHANNELS])[channel]
    )
    open_rate = np.clip(
        0.28 * loyalty * rng.lognormal(0.0, 0.5, n) * np.array([c.email_open for c in CHANNELS])[channel],
        0.01,
        0.9,
    )
    click_rate = np.clip(0.2 * rng.lognormal(0.0, 0.4, n), 0.02, 0.8)
    return_rate = rng.beta(0.6, 17.0, n)
    age_years = np.clip(rng.normal(40.0, 13.0, n), 18.0, 85.0)
    birth_offset = age_years * 365.25 + rng.random(n) * 365.0
    return _Customers(
        n=n, acquired=acquired, signup=signup, channel=channel, country=country, lam=lam, p=p,
        p_first=p_first, mean_spend=mean_spend, trend=trend, categories=categories,
        order_channel=order_channel, browse=browse, open_rate=open_rate, click_rate=click_rate,
        return_rate=return_rate, birth_offset=birth_offset,
    )  # fmt: skip


def _choose_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category per row of `probs` (rows sum to 1), vectorised inverse-CDF sampling."""
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    return np.minimum((rng.random((probs.shape[0], 1)) > cdf).sum(axis=1), probs.shape[1] - 1)


# --------------------------------------------------------------------------------------------
# Purchases: BG/NBD in operational time, one vectorised round per purchase number.


@dataclass
class _Orders:
    owner: np.ndarray  # customer index
    t: np.ndarray  # days from start
    number: np.ndarray  # 0 for the first order of the customer
    value: np.ndarray  # order value before splitting into lines
    cancelled: np.ndarray


def _simulate_purchases(rng: np.random.Generator, cust: _Customers, cal: _Calendar) -> _Orders:
    """Draw each customer's orders; sets `cust.dropout` (inf for customers alive after the period)."""
    owners, times, numbers = [cust_idx := np.arange(cust.n)], [cust.acquired], [np.zeros(cust.n, np.int64)]
    dropout = np.full(cust.n, np.inf)
    active, t, tau, k = cust_idx, cust.acquired, cal.operational(cust.acquired), 0
    while active.size:
        p = cust.p_first[active] if k == 0 else cust.p[active]
        leaves = rng.random(active.size) < p
        tau_next = tau + rng.exponential(1.0, active.size) / cust.lam[active]
        t_next = cal.real(tau_next)
        # A customer who leaves does so some time before the purchase they would have made next.
        moment = t + rng.random(active.size) * (t_next - t)
        left = leaves & (moment <= cal.days)
        dropout[active[left]] = moment[left]
        buys = ~leaves & (t_next < cal.days)
        active, t, tau, k = active[buys], t_next[buys], tau_next[buys], k + 1
        owners.append(active)
        times.append(t)
        numbers.append(np.full(active.size, k))
    cust.dropout = dropout
    owner, t, number = np.concatenate(owners), np.concatenate(times), np.concatenate(numbers)

    # Gamma-Gamma order values, moved by the customer's spend trend and a bigger Q4 basket.
    years_in = (t - cust.acquired[owner]) / 365.25
    q4 = np.where(cal.month_of(t) >= 10, 1.1, 1.0)
    trend = np.exp(cust.trend[owner] * years_in)
    value = np.maximum(cust.mean_spend[owner] * trend * q4 * rng.gamma(GG_P, 1 / GG_P, t.size), 3.0)
    # A few orders are cancelled on the same day; never the first, which defines acquisition.
    cancelled = (number > 0) & (rng.random(t.size) < 0.008)
    return _Orders(owner=owner, t=t, number=number, value=value, cancelled=cancelled)


# --------------------------------------------------------------------------------------------
# Order lines, refunds and cancellations.


@dataclass
class _Lines:
    """Transaction rows before formatting; `order` indexes `_Orders`, `kind` 0 sale, 1 refund, 2 cancel."""

    order: np.ndarray
    owner: np.ndarray
    second: np.ndarray
    amount: np.ndarray
    quantity: np.ndarray
    product: np.ndarray
    category: np.ndarray
    channel: np.ndarray
    kind: np.ndarray
    n_lines: np.ndarray  # per order


def _catalog(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Products sorted by category: (category per product, list price, popularity CDF key per product)."""
    category = np.sort(rng.choice(len(CATEGORIES), size=N_PRODUCTS, p=CATEGORY_POPULARITY))
    price = CATEGORY_PRICE[category] * rng.lognormal(0.0, 0.5, N_PRODUCTS)
    # Zipf-like popularity within each category; key = category + cumulative share, so one
    # searchsorted on `category + u` picks a product of that category by popularity.
    weight = rng.random(N_PRODUCTS) ** 3 + 0.02
    key = np.empty(N_PRODUCTS)
    for c in range(len(CATEGORIES)):  # ten categories: a tiny loop
        members = np.flatnonzero(category == c)
        key[members] = c + np.cumsum(weight[members]) / weight[members].sum()
    return category, price, key


def _order_lines(rng: np.random.Generator, orders: _Orders, cust: _Customers, cal: _Calendar) -> _Lines:
    n_orders = orders.t.size
    category, price, key = _catalog(rng)
    n_lines = rng.choice(5, size=n_orders, p=[0.45, 0.26, 0.15, 0.09, 0.05]) + 1
    order = np.repeat(np.arange(n_orders), n_lines)
    owner = orders.owner[order]
    n = order.size

    # Customers mostly buy from their preferred categories (co-purchase structure).
    prefs = cust.categories[owner]
    n_pref = (prefs >= 0).sum(axis=1)
    pick = prefs[np.arange(n), (rng.random(n) * n_pref).astype(np.int64)]
    anywhere = rng.choice(len(CATEGORIES), size=n, p=CATEGORY_POPULARITY / CATEGORY_POPULARITY.sum())
    line_category = np.where(rng.random(n) < 0.8, pick, anywhere)
    product = np.minimum(np.searchsorted(key, line_category + rng.random(n) * (1 - 1e-9)), N_PRODUCTS - 1)
    quantity = rng.choice(5, size=n, p=[0.76, 0.16, 0.05, 0.02, 0.01]) + 1

    # Split the Gamma-Gamma order value over its lines in proportion to price x quantity (noisy).
    share = price[product] * quantity * rng.gamma(4.0, 0.25, n)
    # A product picked twice for one order is one line with the summed quantity.
    unique, line = np.unique(order * np.int64(N_PRODUCTS) + product, return_inverse=True)
    order, product = unique // N_PRODUCTS, unique % N_PRODUCTS
    quantity = np.bincount(line, weights=quantity).astype(np.int64)
    share = np.bincount(line, weights=share)
    n_lines = np.bincount(order, minlength=n_orders)
    owner, n = orders.owner[order], order.size
    total = np.bincount(order, weights=share, minlength=n_orders)
    amount = np.maximum(np.round(orders.value[order] * share / total[order], 2), 0.5)

    channel = np.where(
        rng.random(n_orders) < 0.8,
        cust.order_channel[orders.owner],
        rng.choice(len(ORDER_CHANNELS), size=n_orders, p=ORDER_CHANNEL_SHARE),
    )
    second = cal.seconds(orders.t)

    # Refunds: lines come back with the customer's return propensity (more for fashion and shoes),
    # a few days later, as a separate refund order; refunds after the period are not yet known.
    refunded = (~orders.cancelled[order]) & (
        rng.random(n) < np.minimum(cust.return_rate[owner] * CATEGORY_RETURNS[category[product]], 0.9)
    )
    delay = (2.0 + rng.gamma(2.0, 3.0, n_orders)) * SECONDS_PER_DAY
    refund_second = second[order] + delay[order].astype(np.int64)
    refunded &= refund_second <= cal.last_second
    # Cancellations: every line reversed under the same order id within hours, on the same day.
    cancel = orders.cancelled[order]
    day_end = (second[order] // SECONDS_PER_DAY + 1) * SECONDS_PER_DAY - 1
    cancel_second = np.minimum(second[order] + rng.integers(300, 4 * 3600, n), day_end)

    parts = [
        (np.arange(n), second[order], amount, quantity, 0),
        (np.flatnonzero(refunded), refund_second[refunded], -amount[refunded], -quantity[refunded], 1),
        (np.flatnonzero(cancel), cancel_second[cancel], -amount[cancel], -quantity[cancel], 2),
    ]
    idx = np.concatenate([p[0] for p in parts])
    return _Lines(
        order=order[idx],
        owner=owner[idx],
        second=np.concatenate([p[1] for p in parts]),
        amount=np.concatenate([p[2] for p in parts]),
        quantity=np.concatenate([p[3] for p in parts]).astype(np.float64),
        product=product[idx],
        category=category[product[idx]],
        channel=channel[order[idx]],
        kind=np.concatenate([np.full(p[0].size, p[4], np.int8) for p in parts]),
        n_lines=n_lines,
    )


# --------------------------------------------------------------------------------------------
# Behavioural events.


@dataclass
class _Events:
    """Events packed into one sorted int64 per event: (second, customer, type) from high to low bits.

    One `np.sort` of packed keys is several times faster than a lexsort of three arrays; it orders
    events by time, then customer, then type (so a session starts before its page views).
    """

    key: np.ndarray
    owner_bits: int

    @staticmethod
    def pack(owner: np.ndarray, second: np.ndarray, code: np.ndarray, n_customers: int) -> _Events:
        bits = max(1, int(n_customers).bit_length())
        key = (second.astype(np.int64) << (bits + _CODE_BITS)) | (owner.astype(np.int64) << _CODE_BITS) | code
        key.sort()
        # Two events of one type for one customer within the same second are one event in a log.
        key = key[np.r_[True, key[1:] != key[:-1]]]
        return _Events(key=key, owner_bits=bits)

    @property
    def second(self) -> np.ndarray:
        return self.key >> (self.owner_bits + _CODE_BITS)

    @property
    def owner(self) -> np.ndarray:
        return (self.key >> _CODE_BITS) & ((1 << self.owner_bits) - 1)

    @property
    def code(self) -> np.ndarray:
        return self.key & ((1 << _CODE_BITS) - 1)


def _engagement(t: np.ndarray, dropout: np.ndarray) -> np.ndarray:
    """1 while alive, falling to FADE_FLOOR over the FADE_DAYS before dropout, DEAD_LEVEL after.

    The decline is quadratic (fast at first), so the window before dropout averages about 0.43.
    """
    x = np.clip((t - (dropout - FADE_DAYS)) / FADE_DAYS, 0.0, 1.0)
    return np.where(t >= dropout, DEAD_LEVEL, FADE_FLOOR + (1.0 - FADE_FLOOR) * (1.0 - x) ** 2)


def _poisson_times(
    rng: np.random.Generator, rate: np.ndarray, t0: np.ndarray, t1: np.ndarray, cal: _Calendar
) -> tuple[np.ndarray, np.ndarray]:
    """Times of a Poisson process with intensity rate[i] x calendar intensity on [t0[i], t1[i]).

    Returns (owner, t). Drawn uniformly in operational time and mapped back, which gives the
    seasonal, weekly and daily cycles exactly.
    """
    s0 = cal.operational(t0)
    span = np.maximum(cal.operational(np.maximum(t1, t0)) - s0, 0.0)
    counts = rng.poisson(rate * span)
    owner = np.repeat(np.arange(rate.size), counts)
    t = cal.real(s0[owner] + rng.random(owner.size) * span[owner])
    return owner, t


_CODE = {name: i for i, name in enumerate(EVENT_TYPES)}
_CODE_BITS = 4


def _session_events(
    rng: np.random.Generator,
    owner: np.ndarray,
    start: np.ndarray,
    length: np.ndarray,
    page_views: np.ndarray,
    product_views: np.ndarray,
    carts: np.ndarray,
    checkouts: np.ndarray,
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Events of sessions in a plausible order: views first, then carts, then checkout (seconds)."""
    out = [(owner, start, _CODE["session_start"])]
    for count, lo, hi, name in (
        (page_views, 0.0, 0.6, "page_view"),
        (product_views, 0.1, 0.8, "product_view"),
        (carts, 0.6, 0.9, "add_to_cart"),
        (checkouts, 0.9, 1.0, "checkout_start"),
    ):
        s = np.repeat(np.arange(owner.size), count)
        frac = lo + (hi - lo) * rng.random(s.size)
        out.append((owner[s], start[s] + np.floor(frac * length[s]).astype(np.int64), _CODE[name]))
    return out


def _events(
    rng: np.random.Generator, cust: _Customers, orders: _Orders, lines: _Lines, cal: _Calendar
) -> _Events:
    """All behavioural events, each between the customer's signup day and the end of the period."""
    parts: list[tuple[np.ndarray, np.ndarray, int]] = []
    dropout = cust.dropout
    end_t = np.full(cust.n, float(cal.days))

    # Checkout sessions before every online order; store orders leave no online trace.
    order_channel = np.zeros(orders.t.size, np.int64)
    sales = lines.kind == 0
    order_channel[lines.order[sales]] = lines.channel[sales]
    online = order_channel != ORDER_CHANNELS.index("store")
    o_owner = orders.owner[online]
    o_second = cal.seconds(orders.t[online])
    length = (120 + rng.gamma(2.0, 500.0, o_owner.size)).astype(np.int64)
    signup_day = np.floor(cust.signup[o_owner]).astype(np.int64) * SECONDS_PER_DAY
    start = np.maximum(o_second - length, signup_day)  # the shop knows the customer from signup on
    m = o_owner.size
    parts += _session_events(
        rng, o_owner, start, o_second - start,
        page_views=1 + rng.poisson(1.5, m), product_views=lines.n_lines[online] + rng.poisson(1.5, m),
        carts=lines.n_lines[online], checkouts=np.ones(m, np.int64),
    )  # fmt: skip

    # Browsing sessions without a purchase (some abandon a cart), at the customer's propensity,
    # fading before dropout and rare afterwards.
    owner, t = _poisson_times(rng, cust.browse, cust.signup, np.minimum(dropout, end_t), cal)
    keep = rng.random(t.size) < _engagement(t, dropout[owner])
    owner_dead, t_dead = _poisson_times(rng, cust.browse * DEAD_LEVEL, np.minimum(dropout, end_t), end_t, cal)
    owner, t = np.concatenate([owner[keep], owner_dead]), np.concatenate([t[keep], t_dead])
    m = owner.size
    carts = (rng.random(m) < 0.22).astype(np.int64)
    parts += _session_events(
        rng, owner, cal.seconds(t), (30 + rng.gamma(1.5, 300.0, m)).astype(np.int64),
        page_views=1 + rng.poisson(1.4, m), product_views=rng.poisson(1.3, m),
        carts=carts, checkouts=carts * (rng.random(m) < 0.3),
    )  # fmt: skip

    parts += _email_events(rng, cust, cal)

    # Support tickets: a background rate that fades with engagement, plus after refunds and cancellations.
    owner, t = _poisson_times(rng, np.full(cust.n, 0.5 / 365.25), cust.signup, end_t, cal)
    keep = rng.random(t.size) < _engagement(t, dropout[owner])
    parts.append((owner[keep], cal.seconds(t[keep]), _CODE["support_ticket"]))
    reversal = np.flatnonzero(lines.kind > 0)
    _, first = np.unique(lines.order[reversal], return_index=True)  # one chance per refund or cancellation
    trigger = reversal[first[rng.random(first.size) < 0.35]]
    ticket = lines.second[trigger] + rng.integers(600, 3 * SECONDS_PER_DAY, trigger.size)
    parts.append((lines.owner[trigger], ticket, _CODE["support_ticket"]))

    # Reviews of delivered orders, more likely from engaged customers.
    kept = ~orders.cancelled
    review = kept & (rng.random(orders.t.size) < 0.12 * _engagement(orders.t, dropout[orders.owner]))
    when = orders.t[review] + 5.0 + rng.gamma(2.0, 4.0, int(review.sum()))
    parts.append((orders.owner[review], cal.seconds(when), _CODE["review"]))

    owner = np.concatenate([p[0] for p in parts])
    second = np.concatenate([p[1] for p in parts])
    code = np.concatenate([np.full(p[0].size, p[2], np.int8) for p in parts])
    inside = (second >= (np.floor(cust.signup) * SECONDS_PER_DAY)[owner]) & (second <= cal.last_second)
    return _Events.pack(owner[inside], second[inside], code[inside], cust.n)


def _event_items(
    rng: np.random.Generator, cust: _Customers, lines: _Lines, events: _Events
) -> tuple[np.ndarray, np.ndarray]:
    """(category, product) index per event, -1 for events about no item (all but product views, carts
    and checkouts). NEXT_ORDER_SHARE of the item events of a customer who orders again take a random
    line of her next order (placed after the event); the rest a preferred category (PREFERRED_SHARE)
    or one by popularity, with a product drawn as often as it sells."""
    n = events.key.size
    category, product = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    about = np.flatnonzero(np.isin(events.code, [_CODE[c] for c in ITEM_EVENTS]))
    owner, second = events.owner[about], events.second[about]
    m = about.size
    sales = np.flatnonzero(lines.kind == 0)
    # Sale lines by (customer, second): the first one after an event is a line of her next order.
    span = np.int64(1) << 34  # > any second of a 50-year period
    by_time = sales[np.argsort(lines.owner[sales] * span + lines.second[sales], kind="stable")]
    keys = lines.owner[by_time] * span + lines.second[by_time]
    first = np.searchsorted(keys, owner * span + second, side="right")
    has_next = first < keys.size
    has_next[has_next] = lines.owner[by_time[first[has_next]]] == owner[has_next]
    last = np.searchsorted(keys, keys[np.minimum(first, keys.size - 1)], side="right")
    pick_next = by_time[np.minimum(first + (rng.random(m) * (last - first)).astype(np.int64), keys.size - 1)]
    use_next = has_next & (rng.random(m) < NEXT_ORDER_SHARE)
    prefs = cust.categories[owner]
    n_pref = (prefs >= 0).sum(axis=1)
    preferred = prefs[np.arange(m), (rng.random(m) * n_pref).astype(np.int64)]
    anywhere = rng.choice(len(CATEGORIES), size=m, p=CATEGORY_POPULARITY / CATEGORY_POPULARITY.sum())
    other = np.where(rng.random(m) < PREFERRED_SHARE, preferred, anywhere)
    # A product of the category as often as it sells: a random sale line of that category (none in a
    # tiny shop where nobody bought the category). Every customer has a first order, so sales exist.
    by_category = sales[np.argsort(lines.category[sales], kind="stable")]
    lo = np.searchsorted(lines.category[by_category], other, side="left")
    hi = np.searchsorted(lines.category[by_category], other, side="right")
    line = by_category[np.minimum(lo + (rng.random(m) * (hi - lo)).astype(np.int64), sales.size - 1)]
    other_product = np.where(hi > lo, lines.product[line], -1)
    category[about] = np.where(use_next, lines.category[pick_next], other)
    product[about] = np.where(use_next, lines.product[pick_next], other_product)
    return category, product


def _email_events(rng: np.random.Generator, cust: _Customers, cal: _Calendar) -> list:
    """Weekly campaigns to every customer since signup; opens and clicks follow engagement."""
    first_campaign = 1.0 + 9.0 / 24  # the second day at 09:00, then every week
    n_campaigns = int((cal.days - first_campaign) // EMAIL_EVERY_DAYS) + 1
    first = np.ceil((cust.signup - first_campaign) / EMAIL_EVERY_DAYS).clip(0).astype(np.int64)
    received = np.maximum(n_campaigns - first, 0)
    # Opening a campaign is a Bernoulli draw; drawn as a Poisson number of hits per campaign at
    # the highest rate, thinned to the time-varying rate and de-duplicated: P(open) = open_rate x e(t).
    mu_max = -np.log1p(-cust.open_rate)
    counts = rng.poisson(mu_max * received)
    owner = np.repeat(np.arange(cust.n), counts)
    campaign = first[owner] + (rng.random(owner.size) * received[owner]).astype(np.int64)
    t = first_campaign + campaign * EMAIL_EVERY_DAYS
    q = cust.open_rate[owner] * _engagement(t, cust.dropout[owner])
    keep = rng.random(owner.size) * mu_max[owner] < -np.log1p(-q)
    unique_key = np.unique(owner[keep] * np.int64(n_campaigns + 1) + campaign[keep])
    owner, campaign = unique_key // (n_campaigns + 1), unique_key % (n_campaigns + 1)
    t = first_campaign + campaign * EMAIL_EVERY_DAYS
    delay = np.minimum(rng.lognormal(np.log(3 * 3600), 1.2, owner.size), 4 * SECONDS_PER_DAY)
    opened = cal.seconds(t) + delay.astype(np.int64)
    clicks = rng.random(owner.size) < cust.click_rate[owner] * _engagement(t, cust.dropout[owner])
    clicked = opened[clicks] + rng.integers(5, 600, int(clicks.sum()))
    return [(owner, opened, _CODE["email_open"]), (owner[clicks], clicked, _CODE["email_click"])]


# --------------------------------------------------------------------------------------------
# Tables.


def _customer_ids(n: int) -> pa.Array:
    width = max(6, len(str(n)))
    numbers = pc.cast(pa.array(np.arange(1, n + 1)), pa.string())
    return pc.binary_join_element_wise("C", pc.utf8_lpad(numbers, width, "0"), "")


def _timestamps(cal: _Calendar, second: np.ndarray) -> np.ndarray:
    return ((cal.start_s + second) * 1_000_000).view("datetime64[us]")


def _dates(cal: _Calendar, days_from_start: np.ndarray) -> pd.Series:
    epoch_days = (cal.start_s // SECONDS_PER_DAY + np.floor(days_from_start)).astype(np.int32)
    return pa.array(epoch_days, type=pa.date32()).to_pandas()


def _strings(values: pa.Array | pa.ChunkedArray) -> pd.Series:
    return pd.Series(pa.chunked_array([values]) if isinstance(values, pa.Array) else values, dtype="str")


def _labels(names: tuple[str, ...] | list[str], index: np.ndarray) -> pd.Series:
    """names[index], null where index is -1."""
    return _strings(pa.array(names).take(pa.array(index, mask=index < 0)))


def _products() -> pa.Array:
    return pa.array([f"P{i:04d}" for i in range(N_PRODUCTS)])


def _transactions_frame(lines: _Lines, ids: pa.Array, cal: _Calendar) -> pd.DataFrame:
    # Chronological order; ties by customer, then sales before reversals, then product.
    order = np.lexsort((lines.product, lines.kind, lines.order, lines.owner, lines.second))
    sale_second = np.zeros(lines.n_lines.size, np.int64)
    sales = lines.kind == 0
    sale_second[lines.order[sales]] = lines.second[sales]
    # Order ids are numbered chronologically by the time the order was placed.
    rank = np.empty(lines.n_lines.size, np.int64)
    rank[np.lexsort((np.arange(lines.n_lines.size), sale_second))] = np.arange(lines.n_lines.size) + 1
    width = max(7, len(str(lines.n_lines.size)))
    numbers = pc.utf8_lpad(pc.cast(pa.array(rank[lines.order[order]]), pa.string()), width, "0")
    suffix = pa.array(np.where(lines.kind[order] == 1, "-R", ""))
    order_id = pc.binary_join_element_wise("O", numbers, suffix, "")
    products = _products()
    frame = pd.DataFrame(
        {
            "customer_id": _strings(ids.take(pa.array(lines.owner[order]))),
            "timestamp": _timestamps(cal, lines.second[order]),
            "amount": np.round(lines.amount[order], 2),
            "order_id": _strings(order_id),
            "quantity": lines.quantity[order],
            "product_id": _strings(products.take(pa.array(lines.product[order]))),
            "category": _labels(CATEGORIES, lines.category[order]),
            "channel": _labels(ORDER_CHANNELS, lines.channel[order]),
        }
    )
    return frame[list(TRANSACTIONS.columns)]


def _events_frame(
    events: _Events, items: tuple[np.ndarray, np.ndarray], ids: pa.Array, cal: _Calendar
) -> pd.DataFrame:
    category, product = items
    return pd.DataFrame(
        {
            "customer_id": _strings(ids.take(pa.array(events.owner))),
            "timestamp": _timestamps(cal, events.second),
            "event_type": _labels(EVENT_TYPES, events.code),
            "product_id": _strings(_products().take(pa.array(product, mask=product < 0))),
            "category": _labels(CATEGORIES, category),
        }
    )[list(EVENTS.columns)]


def _customers_frame(cust: _Customers, ids: pa.Array, cal: _Calendar) -> pd.DataFrame:
    emails = pc.binary_join_element_wise(pc.utf8_lower(ids), "@example.com", "")
    frame = pd.DataFrame(
        {
            "customer_id": _strings(ids),
            "signup_date": _dates(cal, cust.signup),
            "acquisition_channel": _labels([c.name for c in CHANNELS], cust.channel),
            "country": _labels(COUNTRIES, cust.country),
            "birth_date": _dates(cal, cust.signup - cust.birth_offset),
            "email": _strings(emails),
        }
    )
    return frame[list(CUSTOMERS.columns)]


def _truth_frame(cust: _Customers, ids: pa.Array, cal: _Calendar) -> pd.DataFrame:
    dropout = cust.dropout
    alive = ~np.isfinite(dropout)
    dropout_ts = _timestamps(cal, cal.seconds(np.where(alive, 0.0, dropout)))
    dropout_ts[alive] = np.datetime64("NaT")
    return pd.DataFrame(
        {
            "customer_id": _strings(ids),
            "lambda": cust.lam,
            "p_dropout": cust.p,
            "p_dropout_first": cust.p_first,
            "dropout_date": dropout_ts,
            "alive_at_end": alive,
            "mean_spend": cust.mean_spend,
            "spend_trend": cust.trend,
            "acquisition_channel": _labels([c.name for c in CHANNELS], cust.channel),
            "first_purchase_date": _timestamps(cal, cal.seconds(cust.acquired)),
        }
    )


def _spend_frame(rng: np.random.Generator, cust: _Customers, cal: _Calendar) -> pd.DataFrame:
    """channel, month (YYYY-MM), spend: per channel and month of the period, the customers it acquired
    that month x the channel's `cac` x a log-normal spread (SPEND_SPREAD), rounded to cents; every
    channel has a row for every month (0 when it cost nothing or bought no one)."""
    day = cal.start_s // SECONDS_PER_DAY + np.floor(cust.acquired).astype(np.int64)
    month = day.astype("datetime64[D]").astype("datetime64[M]")
    last_day = np.datetime64(cal.start, "D") + cal.days - 1
    months = np.arange(np.datetime64(cal.start, "M"), last_day.astype("datetime64[M]") + 1)
    counts = np.zeros((len(CHANNELS), months.size))
    np.add.at(counts, (cust.channel, (month - months[0]).astype(np.int64)), 1)
    cost = np.array([c.cac for c in CHANNELS])[:, None]
    spend = np.round(counts * cost * rng.lognormal(0.0, SPEND_SPREAD, counts.shape), 2)
    return pd.DataFrame(
        {
            "channel": pd.Series(np.repeat([c.name for c in CHANNELS], months.size), dtype="str"),
            "month": pd.Series(np.tile(months.astype(str), len(CHANNELS)), dtype="str"),
            "spend": spend.ravel(),
        }
    )


def _write_table(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """Write without index; CSV gets whole-second timestamps and amounts with two decimals."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if fmt == "parquet":
        pq.write_table(table, path)
        return
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if pa.types.is_timestamp(column.type):
            table = table.set_column(i, name, column.cast(pa.timestamp("s")))
        elif name == "amount":
            table = table.set_column(i, name, pc.round(column, 2).cast(pa.decimal128(18, 2), safe=False))
    pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="none"))
