"""Micro-batching keeps requests apart: same ids in two requests, one bad request in a batch."""

from __future__ import annotations

import asyncio
import datetime as dt

import pandas as pd
import pytest

from serving.batching import HistoryBatcher, HistoryJob, predict_jobs

AS_OF = dt.date(2025, 12, 31)


def job(amounts, customer="same-id", timestamps=None) -> HistoryJob:
    timestamps = timestamps or [f"2025-0{i + 1}-15" for i in range(len(amounts))]
    frame = pd.DataFrame({"customer_id": customer, "timestamp": timestamps, "amount": amounts})
    return HistoryJob(AS_OF, frame, None, None)


def test_requests_sharing_a_customer_id_get_their_own_predictions(state):
    model = state.current.model
    small, big = job([10.0]), job([500.0, 800.0, 650.0])
    together = predict_jobs(model, [small, big])
    alone = [predict_jobs(model, [j])[0] for j in (small, big)]
    assert together == alone
    assert together[0][0]["customer_id"] == together[1][0]["customer_id"] == "same-id"
    assert together[1][0]["predicted_clv"] > together[0][0]["predicted_clv"]


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
