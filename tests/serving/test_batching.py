"""Micro-batching keeps requests apart (same ids in two requests, one bad request in a batch) and
survives whatever a request or a batch does: errors of any kind, a loop that ended, a stuck batch."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time

import pytest

from models.cross_sell import NO_ITEMS
from serving import batching
from serving.batching import HistoryBatcher, HistoryJob, StuckBatch, predict_jobs
from training.loading import NO_SUGGESTIONS

AS_OF = dt.date(2025, 12, 31)


def job(amounts, customer="same-id", timestamps=None) -> HistoryJob:
    timestamps = timestamps or [f"2025-0{i + 1}-15" for i in range(len(amounts))]
    columns = {"customer_id": [customer] * len(amounts), "timestamp": timestamps, "amount": amounts}
    return HistoryJob(AS_OF, columns, None, None)


def test_requests_sharing_a_customer_id_get_their_own_predictions(state):
    model = state.current.model
    small, big = job([10.0]), job([500.0, 800.0, 650.0])
    together = predict_jobs(model, [small, big])
    alone = [predict_jobs(model, [j])[0] for j in (small, big)]
    assert together == alone
    assert together[0][0]["customer_id"] == together[1][0]["customer_id"] == "same-id"
    assert together[1][0]["predicted_clv"] > together[0][0]["predicted_clv"]


def test_a_history_says_why_there_is_no_suggestion_as_the_batch_table_does(state):
    """Seen on the apparel cohort (no item column): the batch table read "the transactions have no category or
    product column", the same customer's /predict_history "made by `clv score` from the shop's whole log", as
    if the batch had a suggestion the request missed. With an item column, the request's own reason stands."""
    model = state.current.model
    bare = job([20.0])
    with_items = HistoryJob(AS_OF, {**bare.transactions, "category": ["shoes"]}, None, None)
    reasons = [predict_jobs(model, [j])[0][0]["cross_sell_reason"] for j in (bare, with_items)]
    assert reasons == [NO_ITEMS, NO_SUGGESTIONS]


def test_a_bad_request_in_a_batch_fails_alone(state):
    model = state.current.model
    good, bad = job([20.0]), job([20.0], timestamps=["31/31/2020"])
    outcomes = predict_jobs(model, [good, bad])
    assert isinstance(outcomes[1], ValueError) and "31/31/2020" in str(outcomes[1])
    assert outcomes[0] == predict_jobs(model, [good])[0]


def test_concurrent_requests_are_batched_and_answered(state):
    batcher = HistoryBatcher(lambda: state.current.model)

    async def many():
        return await asyncio.gather(
            *(batcher.predict(job([float(10 + i)], customer=f"c{i}")) for i in range(12))
        )

    results = asyncio.run(many())
    assert [r[0]["customer_id"] for r in results] == [f"c{i}" for i in range(12)]
    with pytest.raises(ValueError):
        asyncio.run(HistoryBatcher(lambda: state.current.model).predict(job([1.0], timestamps=["never"])))


def overflowing() -> HistoryJob:
    """A job whose amount no float holds: converting it raises OverflowError, not ValueError."""
    return job([10**500])


def test_any_failure_stays_with_its_request_and_the_loop_goes_on(state):
    batcher = HistoryBatcher(lambda: state.current.model)

    async def together():
        return await asyncio.gather(
            batcher.predict(job([10.0], customer="before")),
            batcher.predict(overflowing()),
            batcher.predict(job([20.0], customer="after")),
            return_exceptions=True,
        )

    async def scenario():
        first = await asyncio.wait_for(together(), 60)
        # The same loop answers the next requests: nothing queues forever.
        later = await asyncio.wait_for(batcher.predict(job([30.0], customer="later")), 30)
        return first, later

    (before, failed, after), later = asyncio.run(scenario())
    assert isinstance(failed, OverflowError)
    assert before[0]["customer_id"] == "before" and after[0]["customer_id"] == "after"
    assert later[0]["customer_id"] == "later"


def test_a_failure_outside_the_computation_fails_the_batch_not_the_loop(state):
    models = iter([RuntimeError("registry gone"), state.current.model])

    def model_of():
        model = next(models)
        if isinstance(model, Exception):
            raise model
        return model

    batcher = HistoryBatcher(model_of)

    async def scenario():
        with pytest.raises(RuntimeError, match="registry gone"):
            await asyncio.wait_for(batcher.predict(job([10.0])), 30)
        return await asyncio.wait_for(batcher.predict(job([10.0])), 30)

    assert asyncio.run(scenario())[0]["customer_id"] == "same-id"


def test_a_loop_that_ended_is_started_again(state):
    batcher = HistoryBatcher(lambda: state.current.model)

    async def scenario():
        await batcher.predict(job([10.0]))
        batcher._worker.cancel()
        await asyncio.sleep(0)
        return await asyncio.wait_for(batcher.predict(job([10.0])), 30)

    assert asyncio.run(scenario())[0]["customer_id"] == "same-id"


def test_a_new_event_loop_gets_a_working_batch_loop_of_its_own(state, caplog):
    # A test client runs each request in an event loop of its own, and a server may restart its loop.
    # The queue and the worker of a finished loop cannot be awaited from the next one: the worker died
    # of "bound to a different event loop", and the garbage collector reported its exception later,
    # inside whatever code was running then (once inside Python's own parser, failing a Hypothesis test).
    batcher = HistoryBatcher(lambda: state.current.model)

    async def one_request():
        answer = await asyncio.wait_for(batcher.predict(job([10.0])), 30)
        await asyncio.sleep(0.05)  # the worker goes back to waiting for the next request
        return answer, batcher._worker.done()

    with caplog.at_level("ERROR", logger="serving.batching"):
        outcomes = [asyncio.run(one_request()) for _ in range(3)]
    assert [answer[0]["customer_id"] for answer, _ in outcomes] == ["same-id"] * 3
    assert [worker_ended for _, worker_ended in outcomes] == [False] * 3
    assert caplog.records == []


def test_a_stuck_batch_is_answered_503_reported_unhealthy_and_left_behind(state, monkeypatch):
    release = threading.Event()
    real = batching.predict_jobs
    stalled = []

    def first_call_stalls(model, jobs):
        if not stalled:
            stalled.append(True)
            release.wait(30)
        return real(model, jobs)

    monkeypatch.setattr(batching, "predict_jobs", first_call_stalls)
    batcher = HistoryBatcher(lambda: state.current.model, stuck_seconds=0.5)

    async def scenario():
        with pytest.raises(StuckBatch):
            await batcher.predict(job([10.0]))
        unhealthy = batcher.healthy()
        # A fresh thread answers while the stuck one is still busy.
        answered = await asyncio.wait_for(batcher.predict(job([10.0])), 30)
        return unhealthy, answered

    try:
        unhealthy, answered = asyncio.run(scenario())
        assert unhealthy is False and answered[0]["customer_id"] == "same-id"
        assert batcher.healthy() is False
    finally:
        release.set()
    deadline = time.monotonic() + 30
    while not batcher.healthy():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_under_load_the_next_batch_gathers_the_clients_of_the_last_one(monkeypatch):
    """32 keep-alive clients made batches of 1 and 31 in turn: the first client back started a batch
    alone. After a batch of n, the next one waits (briefly) for n requests."""
    sizes = []

    def compute(model, jobs):
        sizes.append(len(jobs))
        time.sleep(0.05)
        return [[{"customer_id": "x"}] for _ in jobs]

    monkeypatch.setattr(batching, "predict_jobs", compute)
    batcher = HistoryBatcher(lambda: None)

    async def client(i: int):
        for _ in range(4):
            await batcher.predict(job([1.0], customer=f"c{i}"))
            await asyncio.sleep(0.001 * i)  # answers reach clients, and they come back, one after another

    async def clients():
        await asyncio.gather(*(client(i) for i in range(8)))

    asyncio.run(clients())
    assert sizes == [8, 8, 8, 8]
