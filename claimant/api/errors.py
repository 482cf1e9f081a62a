"""The one JSON error format of the native API and the one place where
claimant's exceptions become HTTP statuses (``STATUS_BY_ERROR``, used by the
native API, the agents' and conductor's apps and the Placement API):

    InvalidInput 400 (422: a body FastAPI's schema refused) · Unauthorized 401
    · Forbidden 403 · NotFound 404 · Conflict 409 · StoreUnavailable,
    IdentityUnavailable, DeadlineExceeded 503 · anything else 500

Every error body is ``{"error": {"code": ..., "message": ..., "details": ...}}``;
codes are the stable strings of ``claimant.model.errors``.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claimant.api.auth import Forbidden, IdentityUnavailable, Unauthorized
from claimant.model import errors as codes
from claimant.model.errors import (
    CellUnavailable,
    ClaimantError,
    Conflict,
    DeadlineExceeded,
    InvalidInput,
    NotFound,
    NoValidHost,
    StoreUnavailable,
)

log = logging.getLogger("claimant.api")

# Most specific first: the first class an error is an instance of wins.
STATUS_BY_ERROR: tuple[tuple[type[ClaimantError], int], ...] = (
    (InvalidInput, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (StoreUnavailable, 503),
    (IdentityUnavailable, 503),
    (DeadlineExceeded, 503),
)

# Statuses Starlette raises itself (unknown route, wrong method ...).
_CODE_BY_STATUS = {
    400: codes.INVALID_INPUT,
    401: codes.UNAUTHORIZED,
    403: codes.FORBIDDEN,
    404: codes.NOT_FOUND,
    405: codes.METHOD_NOT_ALLOWED,
    409: codes.CONFLICT,
    413: codes.PAYLOAD_TOO_LARGE,
    503: codes.STORE_UNAVAILABLE,
}


def status_of(exc: ClaimantError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


async def _claimant_error(request: Request, exc: Exception) -> JSONResponse:
    err = cast(ClaimantError, exc)  # registered for ClaimantError only
    status = status_of(err)
    headers = {"WWW-Authenticate": "x-auth-token"} if status == 401 else None
    if isinstance(err, CellUnavailable):
        # Written by claimant (the cell and why), never the driver's text.
        log.warning("cell unavailable on %s %s: %s", request.method, request.url.path, err)
        return error_response(status, err.code, err.message, err.details or None)
    if isinstance(err, StoreUnavailable):
        # The store's message may quote the driver: log it, never send it.
        log.warning("store unavailable on %s %s: %s", request.method, request.url.path, err)
        return error_response(status, err.code, "the store is unavailable; retry later")
    # Every refusal says why in the log too; a failed placement is the one an
    # operator looks for, so it stands out.
    log.log(
        logging.WARNING if isinstance(err, NoValidHost | DeadlineExceeded) else logging.INFO,
        "%s %s -> %d %s: %s",
        request.method,
        request.url.path,
        status,
        err.code,
        err.message,
    )
    return error_response(status, err.code, err.message, err.details or None, headers)


def _field_errors(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ())]
        out.append({"field": ".".join(loc), "message": e.get("msg", ""), "type": e.get("type")})
    return out


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    errors = list(cast(RequestValidationError, exc).errors())
    fields = _field_errors(errors)
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(
            400, codes.INVALID_INPUT, "the request body is not valid JSON", {"fields": fields}
        )
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    log.info("%s %s -> 422 invalid_input: %s", request.method, request.url.path, summary)
    return error_response(422, codes.INVALID_INPUT, f"invalid input: {summary}", {"fields": fields})


def allowed_methods(app: Any, scope: Scope) -> list[str]:
    """Methods the routes matching this path accept (for 405's Allow header)."""
    allow: set[str] = set()
    for route in getattr(app, "routes", ()):
        methods = getattr(route, "methods", None)
        if methods is None:
            continue
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            allow |= set(methods)
    return sorted(allow)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    http_exc = cast(StarletteHTTPException, exc)
    status = http_exc.status_code
    code = _CODE_BY_STATUS.get(status, codes.INVALID_INPUT if status < 500 else "error")
    headers = dict(http_exc.headers or {})
    if status == 405:
        # Starlette names the methods of the first partial match only; the
        # route table may hold several routes for one path.
        allow = allowed_methods(request.app, request.scope)
        if allow:
            headers["Allow"] = ", ".join(allow)
        message = f"{request.method} is not allowed on {request.url.path}"
        if allow:
            message += f"; allowed: {', '.join(allow)}"
    elif status == 404:
        message = f"no such route: {request.url.path}"
    else:
        message = str(http_exc.detail)
    return error_response(status, code, message, headers=headers or None)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClaimantError, _claimant_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(CatchAllMiddleware)


class CatchAllMiddleware:
    """Any unhandled exception: log it, answer 500 ``internal_error`` with no
    traceback in the body (never leak internals to a client)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(
                500, codes.INTERNAL_ERROR, "internal error; the server log has the details"
            )
            await response(scope, receive, send)
