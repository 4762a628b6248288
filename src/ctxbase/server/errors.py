"""The one JSON error shape of the API: ``{"error": {"code", "message", "details"}}``.

Every failure leaves through here, including unknown routes, bad JSON and unexpected
exceptions, which are logged with their traceback and answered without it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ctxbase.errors import AuthenticationError, CtxbaseError, RateLimitedError
from ctxbase.store.base import invalid_input

log = logging.getLogger("ctxbase.server")

_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "version_conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CtxbaseError, _ctxbase_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)


async def _ctxbase_error(_request: Request, error: CtxbaseError) -> JSONResponse:
    return ctxbase_error_response(error)


def ctxbase_error_response(error: CtxbaseError) -> JSONResponse:
    """The answer to ``error``, also for middleware outside the exception handlers."""
    if error.http_status >= 500:
        log.error("%s: %s", error.code, error)
    body = error.to_dict()
    headers = {}
    if isinstance(error, RateLimitedError):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    elif isinstance(error, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer realm="ctxbase"'
    return JSONResponse(body, status_code=error.http_status, headers=headers)


async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
    code = _CODES_BY_STATUS.get(error.status_code, "error")
    message = (
        error.detail if isinstance(error.detail, str) else HTTPStatus(error.status_code).phrase
    )
    return error_response(error.status_code, code, message, headers=error.headers)


async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
    errors = [{"loc": (), "msg": "", "type": None, **e} for e in error.errors()]
    invalid = invalid_input(errors)
    if any(p["type"] == "json_invalid" for p in invalid.details):
        return error_response(
            400, "invalid_json", "The request body is not valid JSON", invalid.details
        )
    return error_response(422, "invalid_input", invalid.message, invalid.details)


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("Unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "An unexpected error occurred; it was logged")
