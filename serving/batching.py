"""Micro-batching for `POST /predict_history`.

Computing features and predictions has a fixed cost per call (the predictor's pandas work and the
boosters' calls, about 20 ms) that dwarfs the cost per customer. Requests that arrive while a
batch is being computed wait for it to finish and then go together as the next batch, so under load
each customer costs a fraction of a call and nobody waits for a timer when the service is idle.

Under load, the clients of one batch send their next requests within milliseconds of each other,
while their answers go out. Starting the next batch with the first of them alone would split them
into a batch of one and a batch of the rest, each paying the fixed cost (seen at 32 clients: batches
of 1 and 31 alternating, 95 and 72 ms). So after a batch of n requests, the next one waits up to
`GATHER_SECONDS` for n requests to be there; after a batch of one (an idle service) it waits for
nothing.

Customers of different requests never mix: ids are prefixed with the request's position in the batch
before the shared computation and restored after it. A batch in which any request breaks the data
contract (or fails in any other way) is redone request by request, so only that request gets the
error; nothing a request sends can stop the loop (see HistoryBatcher).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd
import xgboost

from features.copurchase import ITEM_COLUMNS
from features.request import compute_features_for_columns
from serving.bodies import Columns
from serving.scores import json_records
from training.cross_sell import suggestions
from training.loading import LoadedModel, score_features

log = logging.getLogger(__name__)

_SEP = "\x1f"  # cannot occur in ids that came through JSON text as typed by people
MAX_BATCH_ROWS = 20_000
# Long enough for the event loop to read a few dozen requests, short against a batch (~50 ms).
GATHER_SECONDS = 0.02
# A batch of the largest requests takes a few seconds; one still running after this is stuck. Below
# the server's request timeout (serving.service), so its requests get an answer.
STUCK_SECONDS = 30.0


@dataclass
class HistoryJob:
    """One request's history: {column: values} per contract table (`serving.bodies.to_columns`)."""

    as_of: dt.date
    transactions: Columns
    events: Columns | None
    customers: Columns | None

    def key(self) -> tuple:
        """Jobs with the same key can share one computation (same cut-off, tables and columns)."""
        return (self.as_of, *(None if t is None else tuple(sorted(t)) for t in self._tables()))

    def rows(self) -> int:
        return sum(_length(t) for t in self._tables() if t is not None)

    def _tables(self) -> tuple[Columns | None, ...]:
        return self.transactions, self.events, self.customers


class StuckBatch(RuntimeError):
    """A batch ran past its deadline; its requests are answered 503 and the worker starts afresh."""


class HistoryBatcher:
    """Queues history jobs and computes them in batches, one batch at a time, in a worker thread.

    Failures stay with their request: a job that breaks the data contract gets its ValueError, any
    other error in a batch goes to the requests of that batch only, and the loop goes on. Should the
    loop task end anyway (cancelled, a bug), the next request starts a new one; a request from another
    event loop gets a queue and a loop task of that event loop. A batch that runs longer than
    `stuck_seconds` is abandoned (a thread cannot be stopped): its requests get StuckBatch, later
    batches run in a fresh thread, and `healthy()` is False until the abandoned thread finishes, which
    turns `/readyz` into 503 (serving.service).
    """

    def __init__(self, model_of, stuck_seconds: float = STUCK_SECONDS):
        self._model_of = model_of  # () -> LoadedModel currently served
        self.stuck_seconds = stuck_seconds
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop of _queue, _arrived and _worker
        self._queue: asyncio.Queue | None = None
        self._arrived: asyncio.Event | None = None  # set when a job is queued
        self._last_batch = 1
        self._worker: asyncio.Task | None = None
        self._executor = _executor()
        self._abandoned: list[concurrent.futures.Future] = []

    def healthy(self) -> bool:
        """False while a batch that ran past its deadline is still running."""
        self._abandoned = [f for f in self._abandoned if not f.done()]
        return not self._abandoned

    async def predict(self, job: HistoryJob) -> list[dict]:
        """Predictions for the job's customers; raises ValueError when it breaks the data contract,
        StuckBatch when its batch ran past the deadline, or whatever else failed while computing it."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # The queue, the event and the worker of another loop (a test client's per-request loop, a
            # restarted server) cannot be awaited from this one; a loop cancels its tasks as it closes.
            self._loop, self._worker = loop, None
            self._queue, self._arrived = asyncio.Queue(), asyncio.Event()
        if self._worker is None or self._worker.done():
            if self._worker is not None:
                log.error(
                    "the history batch loop had stopped (%r); starting a new one", _ending(self._worker)
                )
            self._worker = asyncio.create_task(self._run())
        future = loop.create_future()
        self._queue.put_nowait((job, future))
        self._arrived.set()
        return await future

    async def _gather(self) -> None:
        """Wait (at most GATHER_SECONDS) until as many requests as in the last batch are queued."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GATHER_SECONDS
        while self._queue.qsize() < self._last_batch and (left := deadline - loop.time()) > 0:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    async def _run(self) -> None:
        while True:
            if self._queue.empty():
                self._arrived.clear()
                await self._arrived.wait()
            batch = []
            try:
                await self._gather()
                batch = [self._queue.get_nowait()]
                rows = batch[0][0].rows()
                while not self._queue.empty() and rows < MAX_BATCH_ROWS:
                    batch.append(self._queue.get_nowait())
                    rows += batch[-1][0].rows()
                self._last_batch = len(batch)
                groups: dict[tuple, list] = {}
                for item in batch:
                    groups.setdefault(item[0].key(), []).append(item)
                for items in groups.values():
                    await self._answer(items)
            except Exception as exc:  # noqa: BLE001 - a bug here must fail this batch, not the loop
                log.exception("history batch failed")
                _resolve(batch, [exc] * len(batch))
            finally:
                # Cancelled (the loop is shutting down): nobody may be left waiting.
                for _, future in batch:
                    future.cancel()

    async def _answer(self, items: list) -> None:
        try:
            running = self._executor.submit(predict_jobs, self._model_of(), [job for job, _ in items])
            outcomes = await asyncio.wait_for(asyncio.wrap_future(running), self.stuck_seconds)
        except TimeoutError:
            log.error(
                "a history batch of %d requests ran past %.0f s; answering 503 and continuing in a new thread",
                len(items),
                self.stuck_seconds,
            )
            self._abandoned.append(running)
            self._executor.shutdown(wait=False)
            self._executor = _executor()
            outcomes = [StuckBatch(f"the computation took longer than {self.stuck_seconds:.0f} s")] * len(
                items
            )
        except Exception as exc:  # noqa: BLE001 - whatever it is, it belongs to these requests only
            outcomes = [exc] * len(items)
        _resolve(items, outcomes)


def _resolve(items: list, outcomes: list) -> None:
    for (_, future), outcome in zip(items, outcomes, strict=True):
        if not future.done():
            (future.set_exception if isinstance(outcome, BaseException) else future.set_result)(outcome)


def _ending(task: asyncio.Task) -> BaseException | str:
    return "cancelled" if task.cancelled() else task.exception() or "returned"


def _executor() -> ThreadPoolExecutor:
    # Batches run one at a time anyway; one thread, configured once (below), is all they need.
    return ThreadPoolExecutor(1, "clv-history", initializer=_single_threaded_boosters)


def _single_threaded_boosters() -> None:
    # The service already runs requests in parallel (workers, batches); XGBoost's own threads only
    # fight them for the cores, and under load they spin: a batch took 3x longer with two threads.
    # XGBoost's global configuration is per thread, hence set here, in the thread that predicts.
    xgboost.set_config(nthread=1)


def predict_jobs(model: LoadedModel, jobs: list[HistoryJob]) -> list[list[dict] | Exception]:
    """One computation for jobs sharing a key; per-job results (or errors) in the same order.

    When the shared computation fails, each job is redone alone, so only the one at fault fails.
    """
    try:
        return _split(_score(model, jobs), len(jobs))
    except Exception as exc:  # noqa: BLE001 - sorted out job by job below
        if len(jobs) == 1:
            return [exc]
    outcomes: list[list[dict] | Exception] = []
    for job in jobs:
        try:
            outcomes.append(_split(_score(model, [job]), 1)[0])
        except Exception as exc:  # noqa: BLE001 - this job's own failure, handed to its request
            outcomes.append(exc)
    return outcomes


def _score(model: LoadedModel, jobs: list[HistoryJob]) -> pd.DataFrame:
    features = compute_features_for_columns(
        _stack([j.transactions for j in jobs]),
        jobs[0].as_of,
        _stack([j.events for j in jobs]),
        _stack([j.customers for j in jobs]),
    )
    if features.empty:
        return features
    # Without an item column the batch table's reason is "the transactions have no category or product
    # column"; the request's own reason ("made by `clv score` from the shop's whole log") read there as if
    # the batch had a suggestion the request missed (seen: the apparel cohort).
    items = any(column in jobs[0].transactions for column in ITEM_COLUMNS)
    table = score_features(model, features, None if items else suggestions(None, features["customer_id"]))
    table["as_of"] = table["as_of"].astype(str)
    table["next_order_date"] = table["next_order_date"].map(str, na_action="ignore")
    return table


def _stack(tables: list[Columns | None]) -> Columns | None:
    """The jobs' rows as one table, each customer id prefixed with its job's position.

    Jobs of one computation share their columns (`HistoryJob.key`).
    """
    present = [(i, t) for i, t in enumerate(tables) if t is not None]
    if not present:
        return None
    stacked = {c: [v for _, t in present for v in t[c]] for c in present[0][1]}
    if "customer_id" in stacked:
        # A missing id stays missing, so the data contract reports it instead of a made-up "None".
        stacked["customer_id"] = [
            None if v is None else f"{i}{_SEP}{v}" for i, t in present for v in t["customer_id"]
        ]
    return stacked


def _length(table: Columns) -> int:
    return len(next(iter(table.values()), ()))


def _split(table: pd.DataFrame, n_jobs: int) -> list[list[dict]]:
    out: list[list[dict]] = [[] for _ in range(n_jobs)]
    if table.empty:
        return out
    for record in json_records(table):
        index, _, customer_id = record["customer_id"].partition(_SEP)
        record["customer_id"] = customer_id
        out[int(index)].append(record)
    return out
