"""The one place domain errors become HTTP answers, and how routes document them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from photocluster.api.schemas import ErrorBody
from photocluster.errors import InvalidId, InvalidThresholds, StoreError, UnknownImage

log = logging.getLogger(__name__)

#: Status of each domain error a client can cause; its message goes back as it is.
CLIENT_ERRORS: dict[type[Exception], int] = {
    InvalidThresholds: 422,
    InvalidId: 422,
    UnknownImage: 404,
}

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or invalid credentials"},
    403: {"model": ErrorBody, "description": "the path's user is not the caller"},
    422: {"model": ErrorBody, "description": "invalid parameters"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown image"}
}


async def client_error(_: Request, exc: Exception) -> Response:
    status = next(code for kind, code in CLIENT_ERRORS.items() if isinstance(exc, kind))
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def store_failed(_: Request, exc: Exception) -> Response:
    """The store's details stay in the log: the client learns only that it failed."""
    log.error("store error: %s", exc)
    return JSONResponse({"detail": "the photo library could not be read"}, status_code=503)


def install(app: FastAPI) -> None:
    for kind in CLIENT_ERRORS:
        app.add_exception_handler(kind, client_error)
    app.add_exception_handler(StoreError, store_failed)
