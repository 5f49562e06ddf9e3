"""The HTTP app the BentoML service serves (serving.service): the API's routes (serving.routes) and the
marketer page's (serving.page), behind one gate.

Every bad request gets a 4xx whose body is {"error": "<what is wrong and how to fix it>"}; an
unexpected failure is logged and answered with a 500 that says so without internals, and the
connection stays open for the client's next request. Authentication runs before the body is read,
so a caller without a valid key learns nothing else. /openapi.json documents the status codes,
the error body and the two ways to send a key.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving import page, routes
from serving.auth import AuthError, Keyring
from serving.batching import HistoryBatcher
from serving.keepalive import ConnectionShare, KeepAliveLimit
from serving.messages import describe_validation, example
from serving.routes import ApiError
from serving.state import ServingState

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 20 * 1024 * 1024
TOO_LARGE = f"request body is larger than {MAX_BODY_BYTES // 2**20} MB; send fewer rows"

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


def create_app(state: ServingState, keyring: Keyring, share: ConnectionShare | None = None) -> FastAPI:
    """The app serving `state` to the holders of `keyring`'s keys; `share`: this worker's part in
    spreading connections over the server's workers (serving.keepalive), None for a lone app."""
    app = FastAPI(
        title="CLV service",
        description="Predicted customer lifetime value, churn risk and next best action.",
        docs_url=None,
        redoc_url=None,
    )
    for router in (routes.router, page.router):
        app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=page.STATIC), name="ui-static")
    rights = route_rights(routes.router, page.router)
    app.add_middleware(Guard, keyring=keyring, rights=rights)
    # Spreads keep-alive clients over the workers (serving.keepalive).
    app.add_middleware(KeepAliveLimit, share=share)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.state.serving = state
    # Its health is part of readiness (serving.service).
    app.state.batcher = HistoryBatcher(lambda: routes.served(state).model)
    app.openapi = lambda: _openapi(app, rights)
    return app


def route_rights(*routers: APIRouter) -> dict[tuple[str, str], str]:
    """(method, path) -> the right its route needs (`serving.routes.needs`), for every route that needs one."""
    rights = {}
    for route in (route for router in routers for route in router.routes):
        if isinstance(route, APIRoute):
            for dependency in route.dependant.dependencies:
                if (right := routes.right_of(dependency.call)) is not None:
                    rights.update({(method, route.path): right for method in route.methods})
    return rights


class Guard:
    """ASGI middleware around the routes: API-key check by route and a body-size limit before any body
    is parsed; security headers on every answer; and the last word on unexpected errors.

    The caller's role goes to the request's state, where the routes' `needs` dependency reads it. An
    unexpected error is answered here, as a JSON 500, instead of being re-raised: a re-raised error
    makes the HTTP server close the connection, so the client's next request on it would fail too.
    """

    def __init__(self, app, keyring: Keyring, rights: dict[tuple[str, str], str]):
        self.app = app
        self.keyring = keyring
        self.rights = rights

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
        right = self.rights.get((scope["method"], scope["path"].rstrip("/") or "/"))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            if right is not None:
                scope.setdefault("state", {})["role"] = self.keyring.authorize(headers, right)
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


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return _error(exc.status, exc.message, **exc.extra)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    return _error(400, describe_validation(exc.errors(), request.url.path))


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    # FastAPI's own refusals (unreadable body, unknown route, wrong method) in the same shape. Its 400 is
    # any failure to parse; a body nested past the parser's depth is JSON text all the same, and
    # /predict_history (pydantic's parser) words it so.
    unreadable = (
        "malformed JSON body (recursion limit exceeded: nested too deeply)"
        if isinstance(exc.__cause__, RecursionError)
        else "cannot read the body: it is not UTF-8 JSON text"
    )
    message = {
        400: f"{unreadable}; {example(request.url.path)}",
        404: f"there is no {request.url.path}; the API is POST /predict, POST /predict_history, "
        "GET /model, POST /export, POST /campaigns, GET /economics, POST /admin/reload",
        405: f"{request.url.path} does not take {request.method}",
    }.get(exc.status_code, str(exc.detail))
    return _error(exc.status_code, message, headers=exc.headers)


def _openapi(app: FastAPI, rights: dict[tuple[str, str], str]) -> dict:
    """FastAPI's schema, with what this API really does: 400 (never 422) and API-key security."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version="1", description=app.description, routes=app.routes)
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                operation["responses"].pop("422", None)
                if (method.upper(), path) in rights:
                    operation["security"] = [{"bearer": []}, {"apiKey": []}]
        components = schema.setdefault("components", {})
        for model in routes.SELF_READ_BODIES:
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.setdefault("schemas", {}).update({**body.pop("$defs", {}), model.__name__: body})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(unused, None)
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer KEY"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        app.openapi_schema = schema
    return app.openapi_schema


def _without(headers: list[tuple[bytes, bytes]], name: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() != name]


def _error(status: int, message: str, headers: dict | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)
