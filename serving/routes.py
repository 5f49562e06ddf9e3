"""The HTTP API's routes: a FastAPI router that `serving.api.create_app` builds the app around.

    POST /predict          {"customer_ids": [...]}                    role: app, marketer, admin
    POST /predict_history  {"as_of": ..., "transactions": [...], ...} role: app, marketer, admin
    GET  /model            the serving model and its backtest         role: app, marketer, admin
    POST /export           filters -> CSV (serving.export)            role: marketer, admin
    POST /campaigns        {"campaign": name} -> that list as CSV,    role: marketer, admin
                           {} -> counts and value of every list (serving.campaigns)
    GET  /economics        CLV:CAC, payback, profit CLV per channel   role: marketer, admin
                           and monthly cohort, cohort curves; with
                           ?retention_lift=N the model's retention
                           what-if (serving.economics)
    POST /admin/reload     pick up a new champion or score table now  role: admin

A route declares the right it needs with `needs(...)` (serving.auth), which is also the caller's role
as a dependency; the app checks the key against it before the body is read (`serving.api.Guard`). What
a route works on comes from dependencies too: `Current`, the model and score table being served (503
while there is none), `State` for reloading, `Batcher` for micro-batched history requests. Every error
is an `ApiError`, answered as {"error": "<what is wrong and how to fix it>"}.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from features.schema import CUSTOMERS, EVENTS, TRANSACTIONS
from serving import campaigns, economics, export
from serving.auth import ADMIN, EXPORT, PREDICT
from serving.batching import HistoryBatcher, HistoryJob, StuckBatch
from serving.bodies import (
    CampaignRequest,
    ErrorBody,
    HistoryRequest,
    HistoryResponse,
    PredictRequest,
    PredictResponse,
    ReloadResponse,
    to_columns,
)
from serving.scores import ScoresUnavailable
from serving.state import Serving, ServingState
from training.loading import check_inputs, model_label
from training.registry import ModelNotFound

log = logging.getLogger(__name__)

# Time per request is BentoML's own `bentoml_service_request_duration_seconds` (by endpoint and status);
# what only this service knows is how many customers it predicted.
PREDICTIONS = Counter("clv_predictions", "Customers predicted, by endpoint", ["endpoint"])
# The labelled counters once, not a label lookup (with its lock) per request.
_BY_LOOKUP, _LIVE = PREDICTIONS.labels("predict"), PREDICTIONS.labels("predict_history")


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


ERROR_MEANINGS = {
    400: "the body or a query parameter is not valid; the error names the field, the row and the fix",
    401: "missing or invalid API key",
    403: "the key's role may not do this",
    404: "none of the customer ids is known",
    413: "too many ids or rows, or a body over 20 MB",
    503: "no model is loaded yet, or it cannot be loaded; retry later",
}


def errors(*codes: int) -> dict:
    """The documented error answers of a route (OpenAPI `responses`)."""
    return {code: {"model": ErrorBody, "description": ERROR_MEANINGS[code]} for code in codes}


Body = TypeVar("Body", bound=BaseModel)
# Bodies a route reads itself (`read_body`); serving.api documents their schemas as FastAPI would.
SELF_READ_BODIES: tuple[type[BaseModel], ...] = (HistoryRequest,)


def json_body(model: type[BaseModel]) -> dict:
    """The OpenAPI request body of a route that reads a `model` with `read_body`."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def read_body(request: Request, model: type[Body]) -> Body:
    """The request's JSON body as a `model`, parsed and validated by pydantic in one pass. FastAPI would
    parse it with the json module first and validate the Python objects after: 0.3 of the 1.0 ms a
    history of 185 rows took. Raises RequestValidationError, as FastAPI does (serving.api words it)."""
    raw = await request.body()
    if not raw.strip():
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if exc.errors()[0]["type"] != "json_invalid":
            raise RequestValidationError(exc.errors(include_url=False)) from None
    # Read as FastAPI's other routes read a body (json.loads): UTF-16 and -32, and UTF-8 after a byte-order
    # mark, are JSON text too; a body in no Unicode encoding gets their answer (serving.api).
    try:
        text = raw.decode(json.detect_encoding(raw))
    except UnicodeDecodeError:
        raise HTTPException(400) from None
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def needs(right: str) -> Callable[[Request], Awaitable[str]]:
    """A route's dependency on the caller's role, which must have `right`. The app has checked the key
    before reading the body and recorded the role (`serving.api.Guard`); `right` tells it what to check."""

    async def role(request: Request) -> str:
        return request.scope["state"]["role"]

    role.right = right  # type: ignore[attr-defined]
    return role


def right_of(dependency: Callable) -> str | None:
    """The right a dependency made by `needs` asks for (None for other dependencies)."""
    return getattr(dependency, "right", None)


# The dependencies are coroutines: FastAPI runs plain functions in a thread, a hand-off per request.
async def serving_state(request: Request) -> ServingState:
    return request.app.state.serving


State = Annotated[ServingState, Depends(serving_state)]


def served(state: ServingState) -> Serving:
    """What `state` serves now; a 503 that says why while nothing is loaded. Routes that check their
    request first call it themselves, so a bad request is a 4xx whether or not a model is loaded."""
    if state.current is None:
        why = (state.problem or "the service is still starting").rstrip(".")
        raise ApiError(503, f"no model is loaded: {why}. Retry in a few seconds once that is fixed")
    return state.current


async def current(state: State) -> Serving:
    return served(state)


async def history_batcher(request: Request) -> HistoryBatcher:
    return request.app.state.batcher


Current = Annotated[Serving, Depends(current)]
Batcher = Annotated[HistoryBatcher, Depends(history_batcher)]


_QUERY_PARAMETERS: dict[tuple[str, tuple[str, ...]], frozenset[str]] = {}


def _declared_query(route: APIRoute) -> frozenset[str]:
    """The query parameters `route` reads, its own and its dependencies'; worked out once per path and
    methods (a route is not hashable)."""
    key = (route.path, tuple(sorted(route.methods)))
    if key not in _QUERY_PARAMETERS:
        names: set[str] = set()
        pending = [route.dependant]
        while pending:
            dependant = pending.pop()
            names.update(param.alias for param in dependant.query_params)
            pending.extend(dependant.dependencies)
        _QUERY_PARAMETERS[key] = frozenset(names)
    return _QUERY_PARAMETERS[key]


async def known_query(request: Request) -> None:
    """Refuse a query parameter the route does not take, or one given twice, as a body's unknown field is
    refused: `GET /economics?retention_lif=5` answered without the what-if it asked for, and
    `?retention_lift=5&retention_lift=6` used 6, each without a word."""
    route = request.scope.get("route")
    declared = _declared_query(route) if isinstance(route, APIRoute) else frozenset()
    takes = f"it takes {', '.join(sorted(declared))}" if declared else "it takes none"
    where = f"{request.method} {request.url.path}"
    for name in request.query_params:
        if name not in declared:
            raise ApiError(400, f"{where} has no query parameter {name[:40]!r}; {takes}")
        if len(given := request.query_params.getlist(name)) > 1:
            raise ApiError(400, f"{where}: {name} is given {len(given)} times; give it once")


router = APIRouter(dependencies=[Depends(known_query)])


# async: a lookup never blocks, and running in the event loop avoids a thread hand-off per request.
@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=errors(400, 401, 403, 404, 413, 503),
    dependencies=[Depends(needs(PREDICT))],
)
async def predict(body: PredictRequest, state: State):
    ids = body.customer_ids
    check_size(len(ids), state.settings.serve.max_batch, "customer_ids")
    serving = served(state)
    found, unknown = serving.scores.lookup(ids)
    if not found:
        raise ApiError(
            404,
            f"none of the {len(ids)} customer ids is in the score table (scored as of "
            f"{', '.join(serving.scores.as_of)}); for new customers use POST /predict_history",
            unknown_ids=unknown,
        )
    _BY_LOOKUP.inc(len(found))
    # A JSONResponse skips FastAPI's recursive re-encoding: the rows are JSON-ready already.
    # No top-level model version: each row carries the version that scored it, which lags the
    # champion until the table is re-scored.
    return JSONResponse({"predictions": found, "unknown_ids": unknown})


@router.post(
    "/predict_history",
    response_model=HistoryResponse,
    responses=errors(400, 401, 403, 413, 503),
    dependencies=[Depends(needs(PREDICT))],
    openapi_extra=json_body(HistoryRequest),
)
async def predict_history(request: Request, state: State, batcher: Batcher):
    body = await read_body(request, HistoryRequest)
    rows = len(body.transactions) + len(body.events or []) + len(body.customers or [])
    check_size(rows, state.settings.serve.max_history_rows, "rows (transactions + events + customers)")
    serving = served(state)
    tables = {
        "transactions": to_columns(body.transactions, TRANSACTIONS),
        "events": None if body.events is None else to_columns(body.events, EVENTS),
        "customers": None if body.customers is None else to_columns(body.customers, CUSTOMERS),
    }
    try:
        check_inputs(
            serving.model,
            {"events": body.events is not None, "customers": body.customers is not None},
            "orders" if all(row.amount is None for row in body.transactions) else "currency",
            # A table sent empty ([]: the customers have none) lacks no column: there is no row to read.
            {name: columns.keys() for name, columns in tables.items() if columns and columns["customer_id"]},
            fix=lambda table: f'send "{table}" with the customers\' rows ([] when they have none)',
        )
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    as_of = body.as_of or max(row.timestamp for row in body.transactions).date()
    job = HistoryJob(as_of, tables["transactions"], tables["events"], tables["customers"])
    try:
        records = await batcher.predict(job)
    except ValueError as exc:
        raise ApiError(400, f"the request breaks the data contract: {exc}") from None
    except StuckBatch as exc:
        raise ApiError(503, f"{exc}; the service is recovering, retry in a few seconds") from None
    if not records:
        first = min(row.timestamp for row in body.transactions).date()
        raise ApiError(
            400,
            f"no customer in the request has a purchase on or before as_of {as_of} (its transactions run "
            f"from {first}). Fix: send an as_of on or after a purchase, or leave it out (the last "
            "transaction's date)",
        )
    _LIVE.inc(len(records))
    # Said, as /predict says its unknown_ids: an app cannot tell a customer dropped from one not sent.
    scored = {record["customer_id"] for record in records}
    left_out = sorted(set(tables["transactions"]["customer_id"]) - scored)
    return JSONResponse(
        {
            "model_version": records[0]["model_version"],
            "as_of": str(as_of),
            "predictions": records,
            "left_out": left_out,
        }
    )


@router.get("/model", responses=errors(400, 401, 403, 503), dependencies=[Depends(needs(PREDICT))])
def model_info(serving: Current) -> dict[str, Any]:
    return serving.info()


@router.post(
    "/export",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "the ranked list"},
        **errors(400, 401, 403, 413, 503),
    },
    dependencies=[Depends(needs(EXPORT))],
)
def export_list(spec: export.ExportFilter, state: State):
    selected = export.apply_filter(served(state).scores.frame, spec)
    return Response(
        export.to_csv(selected),
        media_type="text/csv",
        headers={
            "Content-Disposition": 'attachment; filename="clv-export.csv"',
            "X-Rows": str(len(selected)),
        },
    )


def per_scores(name: str, compute: Callable, state: ServingState) -> Any:
    """`compute(score frame, settings)` for the score table being served, computed once per table (the
    key holds its path and modification time, so a reload or a re-score recomputes it); a LookupError
    is a 404 (no such input), a ValueError a 503 (the table cannot give it)."""
    scores = served(state).scores
    key = (str(scores.path), scores.mtime, len(scores))
    if state.derived.get(name, (None,))[0] != key:
        try:
            state.derived[name] = (key, compute(scores.frame, state.settings))
        except LookupError as exc:
            raise ApiError(404, str(exc)) from None
        except ValueError as exc:
            raise ApiError(503, str(exc)) from None
    return state.derived[name][1]


_NO_LIST = {404: {"model": ErrorBody, "description": "that list or its input does not exist for this shop"}}


@router.post(
    "/campaigns",
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "the list (with a campaign), else JSON: rows and value per list, and notes",
        },
        **errors(400, 401, 403, 413, 503),
        **_NO_LIST,
    },
    dependencies=[Depends(needs(EXPORT))],
)
def campaign_lists(body: CampaignRequest, state: State):
    result = per_scores("campaigns", campaigns.service_lists, state)
    if body.campaign is None:
        return JSONResponse(campaigns.summary(result))
    if body.campaign not in result.lists:
        why = "; ".join(n for n in result.notes if body.campaign in n) or "its input is missing"
        raise ApiError(404, f"there is no {body.campaign} list: {why}")
    frame = result.lists[body.campaign]
    return Response(
        campaigns.as_csv(frame),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="clv-{body.campaign}.csv"',
            "X-Rows": str(len(frame)),
        },
    )


@router.get(
    "/economics", responses={**errors(400, 401, 403, 503), **_NO_LIST}, dependencies=[Depends(needs(EXPORT))]
)
def acquisition(
    state: State,
    retention_lift: Annotated[
        float | None,
        Query(
            ge=-100,
            le=100,
            allow_inf_nan=False,
            description="Retention up this many percentage points (-100 to 100): adds `retention_what_if`, "
            "total predicted value and profit before and after, customer by customer (models.retention).",
        ),
    ] = None,
) -> JSONResponse:
    body = per_scores("economics", economics.service_economics, state)
    if retention_lift is not None:
        # Cheap (two columns of the score table), so per request rather than cached per lift.
        body = {
            **body,
            "retention_what_if": economics.what_if(
                served(state).scores.frame, retention_lift, state.settings
            ),
        }
    return JSONResponse(body)


@router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    responses=errors(400, 401, 403, 503),
    dependencies=[Depends(needs(ADMIN))],
)
def reload(state: State):
    # Every worker picks the signal up within a second or two (serving.service).
    state.reload_signal.send()
    try:
        changed = state.reload_if_changed()
    except (ModelNotFound, ScoresUnavailable) as exc:
        raise ApiError(503, f"reload failed, still serving {_serving_what(state)}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a model that cannot be loaded may fail in any way
        log.exception("reload failed")
        raise ApiError(
            503,
            f"reload failed, still serving {_serving_what(state)}: the new model or score table cannot "
            f"be loaded ({type(exc).__name__}; the service log has the details). Fix: promote a model "
            "that loads (`clv rollback` moves the champion back) or re-score.",
        ) from None
    serving = served(state)
    return {"reloaded": changed, "model_version": serving.model.version, "customers": len(serving.scores)}


def check_size(n: int, limit: int, what: str) -> None:
    if n == 0:
        raise ApiError(400, f"{what} is empty; send at least one")
    if n > limit:
        raise ApiError(413, f"{n} {what} is more than the limit of {limit}; split the request into batches")


def _serving_what(state: ServingState) -> str:
    return "nothing" if state.current is None else model_label(state.current.model.version)
