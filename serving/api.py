"""The HTTP API (a FastAPI app the BentoML service mounts; see serving.service).

    POST /predict          {"customer_ids": [...]}                    role: app, marketer, admin
    POST /predict_history  {"as_of": ..., "transactions": [...], ...} role: app, marketer, admin
    GET  /model            the serving model and its backtest         role: app, marketer, admin
    POST /export           filters -> CSV (serving.export)            role: marketer, admin
    POST /admin/reload     pick up a new champion or score table now  role: admin

Every bad request gets a 4xx whose body is {"error": "<what is wrong and how to fix it>"}; an
unexpected failure is logged and answered with a 500 that says so without internals, and the
connection stays open for the client's next request. Authentication runs before the body is read,
so a caller without a valid key learns nothing else. /openapi.json documents the status codes,
the error body and the two ways to send a key.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter
from starlette.exceptions import HTTPException as StarletteHTTPException

from features.schema import CUSTOMERS, EVENTS, TRANSACTIONS
from serving import export
from serving.auth import ADMIN, EXPORT, PREDICT, AuthError, Keyring
from serving.batching import HistoryBatcher, HistoryJob, StuckBatch
from serving.bodies import (
    ErrorBody,
    HistoryRequest,
    HistoryResponse,
    PredictRequest,
    PredictResponse,
    ReloadResponse,
    to_columns,
)
from serving.messages import describe_validation, example
from serving.scores import ScoresUnavailable
from serving.state import ServingState
from training.loading import check_inputs
from training.registry import ModelNotFound

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

# Time per request is BentoML's own `bentoml_service_request_duration_seconds` (by endpoint and status);
# what only this service knows is how many customers it predicted.
PREDICTIONS = Counter("clv_predictions", "Customers predicted, by endpoint", ["endpoint"])


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


# On every answer of the API and the page: no MIME sniffing, no framing (clickjacking), and only the
# page's own files may run or be fetched (serving/static has no inline script or style).
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
]


class Guard:
    """ASGI middleware around the routes: API-key check by route and a body-size limit before any body
    is parsed; security headers on every answer; and the last word on unexpected errors.

    An unexpected error is answered here, as a JSON 500, instead of being re-raised: a re-raised error
    makes the HTTP server close the connection, so the client's next request on it would fail too.
    """

    def __init__(self, app, keyring: Keyring):
        self.app = app
        self.keyring = keyring

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_secured(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        try:
            await self._guarded(scope, receive, send_secured)
        except Exception:  # noqa: BLE001 - the one place that answers what nothing else handled
            log.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            if not started:
                await _error(500, "internal error; the service log has the details")(
                    scope, receive, send_secured
                )

    async def _guarded(self, scope, receive, send):
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
        except ValueError:
            await _error(400, "the Content-Length header is not a number")(scope, receive, send)
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
    async def _invalid(request: Request, exc: RequestValidationError):
        return _error(400, describe_validation(exc.errors(), request.url.path))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        # FastAPI's own refusals (unreadable body, unknown route, wrong method) in the same shape.
        message = {
            400: f"cannot read the body: it is not UTF-8 JSON text; {example(request.url.path)}",
            404: f"there is no {request.url.path}; the API is POST /predict, POST /predict_history, "
            "GET /model, POST /export, POST /admin/reload",
            405: f"{request.url.path} does not take {request.method}",
        }.get(exc.status_code, str(exc.detail))
        return _error(exc.status_code, message, headers=exc.headers)

    def serving():
        if state.current is None:
            why = (state.problem or "the service is still starting").rstrip(".")
            raise ApiError(503, f"no model is loaded: {why}. Retry in a few seconds once that is fixed")
        return state.current

    # The labelled counters once, not a label lookup (with its lock) per request.
    predicted_by_lookup, predicted_live = PREDICTIONS.labels("predict"), PREDICTIONS.labels("predict_history")
    batcher = HistoryBatcher(lambda: serving().model)
    app.state.batcher = batcher  # its health is part of readiness (serving.service)

    # async: a lookup never blocks, and running in the event loop avoids a thread hand-off per request.
    @app.post("/predict", response_model=PredictResponse, responses=_errors(400, 401, 403, 404, 413, 503))
    async def predict(body: PredictRequest):
        ids = body.customer_ids
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
        predicted_by_lookup.inc(len(found))
        # A JSONResponse skips FastAPI's recursive re-encoding: the rows are JSON-ready already.
        # No top-level model version: each row carries the version that scored it, which lags the
        # champion until the table is re-scored.
        return JSONResponse({"predictions": found, "unknown_ids": unknown})

    @app.post("/predict_history", response_model=HistoryResponse, responses=_errors(400, 401, 403, 413, 503))
    async def predict_history(body: HistoryRequest):
        rows = len(body.transactions) + len(body.events or []) + len(body.customers or [])
        _check_size(rows, limits.max_history_rows, "rows (transactions + events + customers)")
        current = serving()
        try:
            check_inputs(
                current.model,
                {"events": body.events is not None, "customers": body.customers is not None},
                "orders" if all(row.amount is None for row in body.transactions) else "currency",
                fix=lambda table: f'send "{table}" with the customers\' rows ([] when they have none)',
            )
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        as_of = body.as_of or max(row.timestamp for row in body.transactions).date()
        job = HistoryJob(
            as_of,
            to_columns(body.transactions, TRANSACTIONS),
            None if body.events is None else to_columns(body.events, EVENTS),
            None if body.customers is None else to_columns(body.customers, CUSTOMERS),
        )
        try:
            records = await batcher.predict(job)
        except ValueError as exc:
            raise ApiError(400, f"the request breaks the data contract: {exc}") from None
        except StuckBatch as exc:
            raise ApiError(503, f"{exc}; the service is recovering, retry in a few seconds") from None
        if not records:
            raise ApiError(400, f"no customer in the request has a purchase on or before as_of {as_of}")
        predicted_live.inc(len(records))
        return JSONResponse(
            {"model_version": records[0]["model_version"], "as_of": str(as_of), "predictions": records}
        )

    @app.get("/model", responses=_errors(401, 403, 503))
    def model_info() -> dict[str, Any]:
        return serving().info()

    @app.post(
        "/export",
        response_class=Response,
        responses={
            200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "the ranked list"},
            **_errors(400, 401, 403, 413, 503),
        },
    )
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

    @app.post("/admin/reload", response_model=ReloadResponse, responses=_errors(401, 403, 503))
    def reload():
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
        current = serving()
        return {"reloaded": changed, "model_version": current.model.version, "customers": len(current.scores)}

    app.openapi = lambda: _openapi(app)
    return app


ERROR_MEANINGS = {
    400: "the body is not valid; the error names the field, the row and the fix",
    401: "missing or invalid API key",
    403: "the key's role may not do this",
    404: "none of the customer ids is known",
    413: "too many ids or rows, or a body over 20 MB",
    503: "no model is loaded yet, or it cannot be loaded; retry later",
}


def _errors(*codes: int) -> dict:
    return {code: {"model": ErrorBody, "description": ERROR_MEANINGS[code]} for code in codes}


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema, with what this API really does: 400 (never 422) and API-key security."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version="1", description=app.description, routes=app.routes)
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                operation["responses"].pop("422", None)
                if (method.upper(), path) in ROUTE_RIGHTS:
                    operation["security"] = [{"bearer": []}, {"apiKey": []}]
        components = schema.setdefault("components", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(unused, None)
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer KEY"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        app.openapi_schema = schema
    return app.openapi_schema


def _serving_what(state: ServingState) -> str:
    return "nothing" if state.current is None else f"model v{state.current.model.version}"


def _without(headers: list[tuple[bytes, bytes]], name: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() != name]


def _check_size(n: int, limit: int, what: str) -> None:
    if n == 0:
        raise ApiError(400, f"{what} is empty; send at least one")
    if n > limit:
        raise ApiError(413, f"{n} {what} is more than the limit of {limit}; split the request into batches")


def _error(status: int, message: str, headers: dict | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)
