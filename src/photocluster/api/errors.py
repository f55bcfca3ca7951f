"""The one error format of the API, and the one place errors become HTTP answers.

Every 4xx and 5xx body is ``{"error": {"code": "snake_case", "message": "...", "details":
[...]}}``: ``code`` is stable (apps branch on it), ``message`` is for people, ``details``
(optional) says which parameter is wrong or carries figures such as the graph's floor.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from photocluster.api.contract import STATUS_OF
from photocluster.api.openapi import documented_methods
from photocluster.errors import (
    ImageNotReady,
    InvalidCursor,
    InvalidDecision,
    InvalidEvent,
    InvalidId,
    InvalidImage,
    InvalidThresholds,
    LibraryFull,
    StorageUnavailable,
    StoreError,
    ThresholdBelowFloor,
    TooManyDecisions,
    UnknownImage,
    UploadsNotConfigured,
    UploadsThrottled,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than success, raised by the API's own layers (auth, parameters)."""

    def __init__(
        self,
        code: str,
        message: str,
        details: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = STATUS_OF[code], code, message
        self.details, self.headers = details, headers


class NotModified(Exception):
    """The client's cached copy (``If-None-Match``) is current: answer 304."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__("not modified")
        self.headers = headers


#: The code of each domain error a client can cause (the most specific kind first; None:
#: the error's own code); its status is the code's (contract.STATUS_OF). Its message goes
#: back as it is.
CLIENT_ERRORS: dict[type[Exception], str | None] = {
    ThresholdBelowFloor: None,
    InvalidThresholds: "invalid_thresholds",
    InvalidId: "invalid_id",
    InvalidCursor: "invalid_cursor",
    InvalidDecision: "invalid_decision",
    TooManyDecisions: "too_many_decisions",
    InvalidEvent: "invalid_filename",  # a filename the upload layout cannot hold
    InvalidImage: None,  # a file type or size the product does not accept
    UnknownImage: "unknown_image",
    ImageNotReady: "image_not_ready",
    LibraryFull: None,
    UploadsThrottled: "throttled",
    StorageUnavailable: "storage_unavailable",
    UploadsNotConfigured: "uploads_not_configured",
}
#: Codes of the answers FastAPI and Starlette give themselves.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(
    code: str,
    message: str,
    details: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    status: int | None = None,
) -> JSONResponse:
    """The one error body; its status is the code's (``status`` only for the answers
    Starlette gives itself, whose codes are HTTP_CODES)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = list(details)
    return JSONResponse({"error": error}, status_code=status or STATUS_OF[code], headers=headers)


async def api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.code, exc.message, exc.details, exc.headers)


async def client_error(_: Request, exc: Exception) -> Response:
    named = next(code for kind, code in CLIENT_ERRORS.items() if isinstance(exc, kind))
    code = named or str(getattr(exc, "code", "error"))
    details, headers = None, None
    if isinstance(exc, UploadsThrottled):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    if isinstance(exc, ThresholdBelowFloor):
        details = [{"type": exc.code, "message": str(exc), "floor": exc.floor}]
    elif isinstance(exc, UnknownImage) and exc.image_ids:
        details = [{"type": "unknown_image", "image_id": i} for i in exc.image_ids]
    return error_response(code, str(exc), details, headers)


async def store_failed(_: Request, exc: Exception) -> Response:
    """The store's details stay in the log: the client learns only that it failed."""
    log.error("store error: %r", exc)
    return error_response("store_unavailable", "the photo library could not be read")


async def internal_error(_: Request, exc: Exception) -> Response:
    log.error("unhandled error: %r", exc)
    return error_response("internal_error", "an unexpected error; it has been logged")


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's answers in the API's format; a 405 lists every method the path has
    (routes of one path may live in several routers: Starlette would name the first's)."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(documented_methods(request))
    if exc.status_code == 400 and exc.detail == _UNPARSED_BODY:  # JSON nested too deep, say
        return error_response(
            "malformed_json", "the request body is nested deeper than the API reads"
        )
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(code, str(exc.detail), headers=headers, status=exc.status_code)


#: FastAPI's 400 for a body its parser gave up on (not a JSONDecodeError: a RecursionError).
_UNPARSED_BODY = "There was an error parsing the body"


async def invalid_request(_: Request, exc: Exception) -> Response:
    """Validation errors: which parameter, and why, one detail each."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response("malformed_json", "the request body is not valid JSON")
    details = [
        {"loc": list(e.get("loc", ())), "message": str(e.get("msg", "")), "type": e.get("type")}
        for e in errors
    ]
    first = details[0] if details else {"loc": [], "message": "invalid request"}
    where = " ".join(str(part) for part in first["loc"])
    message = f"{where}: {first['message']}" if where else str(first["message"])
    return error_response("invalid_request", message, details)


async def not_modified(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotModified)
    return Response(status_code=304, headers=dict(exc.headers))


def install(app: FastAPI) -> None:
    for kind in CLIENT_ERRORS:
        app.add_exception_handler(kind, client_error)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(NotModified, not_modified)
    app.add_exception_handler(StoreError, store_failed)
    # The file system failing (e.g. a folder where a user's file should be) is the store's
    # failure too: a 503 the client may retry, the details in the log.
    app.add_exception_handler(OSError, store_failed)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, internal_error)
