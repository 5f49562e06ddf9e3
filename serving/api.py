"""The HTTP API (a FastAPI app the BentoML service mounts; see serving.service).

    POST /predict          {"customer_ids": [...]}                    role: app, marketer, admin
    POST /predict_history  {"as_of": ..., "transactions": [...], ...} role: app, marketer, admin
    GET  /model            the serving model and its backtest         role: app, marketer, admin
    POST /export           filters -> CSV (serving.export)            role: marketer, admin
    POST /admin/reload     pick up a new champion or score table now  role: admin

Every bad request gets a 4xx whose body is {"error": "<what is wrong and how to fix it>"}; an
unexpected failure is logged and answered with a 500 that says so without internals.
Authentication runs before the body is read, so a caller without a valid key learns nothing else.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving import export
from serving.auth import ADMIN, EXPORT, PREDICT, AuthError, Keyring
from serving.batching import HistoryBatcher, HistoryJob
from serving.messages import EXAMPLE, describe_validation
from serving.scores import ScoresUnavailable
from serving.state import ServingState
from training.score import ModelNotFound

log = logging.getLogger(__name__)

ROUTE_RIGHTS = {
    ("POST", "/predict"): PREDICT,
    ("POST", "/predict_history"): PREDICT,
    ("GET", "/model"): PREDICT,
    ("POST", "/export"): EXPORT,
    ("POST", "/admin/reload"): ADMIN,
    ("GET", "/ui/api/summary"): EXPORT,
}
MAX_BODY_BYTES = 20 * 1024 * 1024

PREDICTIONS = Counter("clv_predictions", "Customers predicted, by endpoint", ["endpoint"])
LATENCY = Histogram(
    "clv_request_latency_seconds",
    "Time to answer, by endpoint",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_ids: list[str | int] = Field(description="customer ids as in the score table")


class HistoryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    as_of: dt.date | None = Field(None, description="cut-off date; default: the last transaction's date")
    transactions: list[dict[str, Any]] = Field(description="rows of the transactions contract")
    events: list[dict[str, Any]] | None = None
    customers: list[dict[str, Any]] | None = None


class Guard:
    """ASGI middleware: API-key check by route, and a body-size limit, before any body is parsed."""

    def __init__(self, app, keyring: Keyring):
        self.app = app
        self.keyring = keyring

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        right = ROUTE_RIGHTS.get((scope["method"], scope["path"].rstrip("/") or "/"))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            if right is not None:
                self.keyring.authorize(headers, right)
            if int(headers.get("content-length") or 0) > MAX_BODY_BYTES:
                raise AuthError(413, TOO_LARGE)
        except AuthError as exc:
            await _error(exc.status, exc.message)(scope, receive, send)
            return
        if right is not None and scope["method"] == "POST":
            if "content-length" not in headers:
                # A chunked body has no length to check up front, so count while reading it.
                body = await _read_body(receive)
                if body is None:
                    await _error(413, TOO_LARGE)(scope, receive, send)
                    return
                receive = _replay(body, receive)
            if "json" not in headers.get("content-type", ""):
                # `curl -d '{...}'` labels JSON as a form; every POST body here is JSON, so read it as such.
                scope = {
                    **scope,
                    "headers": [
                        *_without(scope["headers"], b"content-type"),
                        (b"content-type", b"application/json"),
                    ],
                }
        await self.app(scope, receive, send)


TOO_LARGE = f"request body is larger than {MAX_BODY_BYTES // 2**20} MB; send fewer rows"


async def _read_body(receive) -> bytes | None:
    """The whole request body, or None once it passes MAX_BODY_BYTES."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""  # the client went away; the route answers a body nobody reads
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive):
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed():
        # After the body, waiting on the real channel is how the app learns of a disconnect.
        return pending.pop() if pending else await receive()

    return replayed


def create_app(state: ServingState, keyring: Keyring) -> FastAPI:
    limits = state.settings.serve
    app = FastAPI(
        title="CLV service",
        description="Predicted customer lifetime value, churn risk and next best action.",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(Guard, keyring=keyring)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return _error(exc.status, exc.message, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        return _error(400, describe_validation(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        # FastAPI's own refusals (unreadable body, unknown route, wrong method) in the same shape.
        message = {
            400: f"cannot read the body: it is not UTF-8 JSON text; {EXAMPLE}",
            404: f"there is no {request.url.path}; the API is POST /predict, POST /predict_history, "
            "GET /model, POST /export, POST /admin/reload",
            405: f"{request.url.path} does not take {request.method}",
        }.get(exc.status_code, str(exc.detail))
        return _error(exc.status_code, message, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("unexpected error")
        return _error(500, "internal error; the service log has the details")

    def serving():
        if state.current is None:
            raise ApiError(503, "no model is loaded yet (the service log says why); retry in a few seconds")
        return state.current

    batcher = HistoryBatcher(lambda: serving().model)

    # async: a lookup never blocks, and running in the event loop avoids a thread hand-off per request.
    @app.post("/predict")
    async def predict(body: PredictRequest):
        started = time.perf_counter()
        ids = [str(i) for i in body.customer_ids]
        _check_size(len(ids), limits.max_batch, "customer_ids")
        current = serving()
        found, unknown = current.scores.lookup(ids)
        if not found:
            raise ApiError(
                404,
                f"none of the {len(ids)} customer ids is in the score table (scored as of "
                f"{', '.join(current.scores.as_of)}); for new customers use POST /predict_history",
                unknown_ids=unknown,
            )
        PREDICTIONS.labels("predict").inc(len(found))
        LATENCY.labels("predict").observe(time.perf_counter() - started)
        # A JSONResponse skips FastAPI's recursive re-encoding: the rows are JSON-ready already.
        # No top-level model version: each row carries the version that scored it, which lags the
        # champion until the table is re-scored.
        return JSONResponse({"predictions": found, "unknown_ids": unknown})

    @app.post("/predict_history")
    async def predict_history(body: HistoryRequest):
        started = time.perf_counter()
        if not body.transactions:
            raise ApiError(
                400, "transactions is empty; send at least one row with customer_id, timestamp, amount"
            )
        rows = len(body.transactions) + len(body.events or []) + len(body.customers or [])
        _check_size(rows, limits.max_history_rows, "rows (transactions + events + customers)")
        serving()
        transactions = pd.DataFrame(body.transactions)
        as_of = body.as_of or _last_date(transactions)
        job = HistoryJob(
            as_of,
            transactions,
            pd.DataFrame(body.events) if body.events is not None else None,
            pd.DataFrame(body.customers) if body.customers is not None else None,
        )
        for name, frame in (
            ("transactions", job.transactions),
            ("events", job.events),
            ("customers", job.customers),
        ):
            _reject_infinite(name, frame)
        try:
            records = await batcher.predict(job)
        except ValueError as exc:
            raise ApiError(400, f"the request breaks the data contract: {exc}") from None
        if not records:
            raise ApiError(400, f"no customer in the request has a purchase on or before as_of {as_of}")
        PREDICTIONS.labels("predict_history").inc(len(records))
        LATENCY.labels("predict_history").observe(time.perf_counter() - started)
        return JSONResponse(
            {"model_version": records[0]["model_version"], "as_of": str(as_of), "predictions": records}
        )

    @app.get("/model")
    def model_info():
        return serving().info()

    @app.post("/export")
    def export_list(spec: export.ExportFilter):
        current = serving()
        selected = export.apply_filter(current.scores.frame, spec)
        return Response(
            export.to_csv(selected),
            media_type="text/csv",
            headers={
                "Content-Disposition": 'attachment; filename="clv-export.csv"',
                "X-Rows": str(len(selected)),
            },
        )

    @app.post("/admin/reload")
    def reload():
        try:
            changed = state.reload_if_changed()
        except (ModelNotFound, ScoresUnavailable) as exc:
            still = "nothing" if state.current is None else f"model v{state.current.model.version}"
            raise ApiError(503, f"reload failed, still serving {still}: {exc}") from None
        current = serving()
        return {"reloaded": changed, "model_version": current.model.version, "customers": len(current.scores)}

    return app


def _without(headers: list[tuple[bytes, bytes]], name: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() != name]


def _check_size(n: int, limit: int, what: str) -> None:
    if n == 0:
        raise ApiError(400, f"{what} is empty; send at least one")
    if n > limit:
        raise ApiError(413, f"{n} {what} is more than the limit of {limit}; split the request into batches")


def _reject_infinite(name: str, frame: pd.DataFrame | None) -> None:
    """Python's JSON parser turns Infinity and numbers like 1e400 into infinity, which no table holds."""
    if frame is None:
        return
    for column in frame.select_dtypes("floating").columns:
        infinite = np.isinf(frame[column].to_numpy())
        if infinite.any():
            row = int(infinite.argmax())
            raise ApiError(
                400,
                f"{name}.{column}, row {row + 1}: {frame[column].iloc[row]} is not a finite number; "
                "send a number between -1.7e308 and 1.7e308",
            )


def _last_date(transactions: pd.DataFrame) -> dt.date:
    """The default cut-off: the last transaction's date (unreadable values are reported by the feature code)."""
    if "timestamp" not in transactions.columns:
        raise ApiError(400, "transactions lack the required column timestamp")
    stamps = pd.to_datetime(transactions["timestamp"], utc=True, format="mixed", errors="coerce")
    return stamps.max().date() if stamps.notna().any() else dt.date.today()


def _error(status: int, message: str, headers: dict | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)
