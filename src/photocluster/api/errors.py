"""The one place domain errors become HTTP answers, and how routes document them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from photocluster.api.openapi import documented_methods
from photocluster.api.schemas import ErrorBody
from photocluster.errors import (
    ImageNotReady,
    InvalidCursor,
    InvalidEvent,
    InvalidId,
    InvalidImage,
    InvalidThresholds,
    StorageUnavailable,
    StoreError,
    ThresholdBelowFloor,
    UnknownImage,
    UploadsNotConfigured,
)

log = logging.getLogger(__name__)

#: Status of each domain error a client can cause; its message goes back as it is.
CLIENT_ERRORS: dict[type[Exception], int] = {
    InvalidThresholds: 422,
    InvalidId: 422,
    InvalidCursor: 422,
    InvalidEvent: 422,  # a filename the upload layout cannot hold
    InvalidImage: 422,  # a file type or size the product does not accept
    UnknownImage: 404,
    ImageNotReady: 409,
    StorageUnavailable: 503,
    UploadsNotConfigured: 503,
}

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or invalid credentials"},
    403: {"model": ErrorBody, "description": "the path's user is not the caller"},
    422: {"model": ErrorBody, "description": "invalid parameters"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown image"}
}
NOT_READY: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "the image is pending or failed: no embedding"}
}
BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "the body is not JSON"}
}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "storage unavailable or not configured; retry"}
}


async def client_error(_: Request, exc: Exception) -> Response:
    status = next(code for kind, code in CLIENT_ERRORS.items() if isinstance(exc, kind))
    body: dict[str, object] = {"detail": str(exc)}
    if isinstance(exc, ThresholdBelowFloor):
        body.update(code=exc.code, floor=exc.floor)
    return JSONResponse(body, status_code=status)


async def store_failed(_: Request, exc: Exception) -> Response:
    """The store's details stay in the log: the client learns only that it failed."""
    log.error("store error: %r", exc)
    return JSONResponse({"detail": "the photo library could not be read"}, status_code=503)


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's answer, except that a 405 lists every method the path has (routes of one
    path may live in several routers; Starlette would name only the first one's)."""
    assert isinstance(exc, HTTPException)
    methods = documented_methods(request) if exc.status_code == 405 else None
    if methods:
        exc = HTTPException(405, exc.detail, headers={"Allow": ", ".join(methods)})
    return await http_exception_handler(request, exc)


def install(app: FastAPI) -> None:
    for kind in CLIENT_ERRORS:
        app.add_exception_handler(kind, client_error)
    app.add_exception_handler(StoreError, store_failed)
    # The file system failing (e.g. a folder where a user's file should be) is the store's
    # failure too: a 503 the client may retry, the details in the log.
    app.add_exception_handler(OSError, store_failed)
    app.add_exception_handler(HTTPException, http_error)
